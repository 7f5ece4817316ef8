/**
 * The pipeline's way into the front end: a Dockerfile build (the CLI's -f, --build-arg,
 * --target, -t, CONTEXT) as a BuildFile whose target variant carries the image and tags.
 * Base images' configs are read from their registries (BuildKit needs them too: ENV PATH=$PATH
 * and relative WORKDIRs build on the base's values).
 */
import { rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, type BuildFile } from '../config/model.js';
import { formatRepository, parseReference } from '../oci/reference.js';
import { hostPlatform, parsePlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import { RegistryClient } from '../registry/client.js';
import { credentialsFrom, type Credentials } from '../registry/credentials.js';
import { resolveBase } from '../build/base.js';
import { loadDockerfile } from './index.js';

export interface DockerfileInputs {
  file: string;
  /** Default: the Dockerfile's directory. */
  context?: string;
  buildArgs: Record<string, string>;
  target?: string;
  /** Image references (`repo[:tag]`) for the result, as docker build -t takes them. */
  refs: string[];
  /** Where notes go (an ignored `# syntax=`, what .dockerignore left out). */
  note?: (message: string) => void;
  /** The ids of the secrets given to the build (their values go to the builder only). */
  secretIds?: string[];
  /** Labels and annotations for the target (build-push-action's inputs). */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The target's repository when `refs` name none (tags then come from the tag rules). */
  image?: string;
}

export interface DockerfilePlan {
  buildFile: BuildFile;
  target: string;
}

export async function dockerfileBuildFile(
  d: DockerfileInputs,
  opts: { platforms: string[]; credentials: Record<string, Credentials>; dockerConfig: boolean },
): Promise<DockerfilePlan> {
  let platforms: Platform[];
  try {
    platforms = opts.platforms.length ? opts.platforms.map(parsePlatform) : [hostPlatform()];
  } catch (e) {
    throw new ConfigError([{ file: 'inputs', field: 'platforms', message: (e as Error).message, hint: 'e.g. linux/amd64,linux/arm64' }]);
  }
  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: opts.credentials, dockerConfigPath: opts.dockerConfig ? undefined : null }),
  });
  try {
    const loaded = await loadDockerfile({
      file: d.file,
      context: resolve(d.context ?? dirname(resolve(d.file))),
      buildArgs: d.buildArgs,
      ...(d.target !== undefined ? { target: d.target } : {}),
      platforms,
      buildPlatform: hostPlatform(),
      imageConfig: async (ref, platform) => (await resolveBase(client, ref, platform)).config.config,
      ...(d.note ? { note: d.note } : {}),
      secrets: new Set(d.secretIds ?? []),
    });
    // The filtered context copy lives as long as this process (the build reads it to the end).
    if (loaded.context !== resolve(d.context ?? dirname(resolve(d.file))))
      process.once('exit', () => rmSync(loaded.context, { recursive: true, force: true }));
    const target = loaded.buildFile.variants.find((v) => v.name === loaded.target)!;
    const repos = new Set<string>();
    const tags: string[] = [];
    for (const r of d.refs) {
      let ref: ReturnType<typeof parseReference>;
      try {
        ref = parseReference(r);
      } catch (e) {
        throw new ConfigError([{ file: 'inputs', field: 'tag', message: (e as Error).message, hint: 'give -t registry/repository[:tag]' }]);
      }
      if (ref.digest)
        throw new ConfigError([
          { file: 'inputs', field: 'tag', message: `-t ${r}: a digest cannot be pushed to`, hint: 'give -t registry/repository[:tag]' },
        ]);
      repos.add(formatRepository(ref));
      tags.push(ref.tag ?? 'latest');
    }
    if (repos.size > 1)
      throw new ConfigError([
        {
          file: 'inputs',
          field: 'tag',
          message: `-t names several repositories (${[...repos].join(', ')})`,
          hint: 'give tags of one repository per build',
        },
      ]);
    if (repos.size) {
      target.image = [...repos][0]!;
      target.tags = tags;
    } else if (d.image) target.image = d.image;
    // (A LABEL may differ per platform: the inputs' labels go over each platform's.)
    for (const spec of [target, ...Object.values(target.perPlatform ?? {})]) Object.assign(spec.labels, d.labels ?? {});
    Object.assign(target.annotations, d.annotations ?? {});
    return { buildFile: loaded.buildFile, target: loaded.target };
  } finally {
    await client.close();
  }
}
