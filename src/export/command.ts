import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/model.js';
import { resolveBase } from '../build/base.js';
import { hostPlatform } from '../oci/platform.js';
import { plan } from '../plan/plan.js';
import { RegistryClient } from '../registry/client.js';
import { credentialsFrom, type Credentials } from '../registry/credentials.js';
import { EXPORT_DIR, ExportError, exportDockerfile, type StartConfig } from './dockerfile.js';

export const DOCKERFILE_USAGE = `  oci-build dockerfile --config FILE [--variant V] [--base [VARIANT=]REF]... [-o FILE]
                  write a Dockerfile equivalent to the variant (its stages included) for docker build / buildah bud`;

function parse(args: string[]) {
  return parseArgs({
    args,
    strict: true,
    options: {
      config: { type: 'string', short: 'c', default: 'oci-build.yml' },
      variant: { type: 'string', multiple: true, default: [] },
      base: { type: 'string', multiple: true, default: [] },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

function credentialsFromEnv(env: NodeJS.ProcessEnv): Record<string, Credentials> {
  if (!env.OCI_BUILD_REGISTRY || !env.OCI_BUILD_USERNAME || !env.OCI_BUILD_PASSWORD) return {};
  return { [env.OCI_BUILD_REGISTRY]: { username: env.OCI_BUILD_USERNAME, password: env.OCI_BUILD_PASSWORD } };
}

/** `oci-build dockerfile`: 0 written, 1 a base image could not be read, 2 bad usage or not expressible. */
export async function dockerfileCommand(args: string[], env: NodeJS.ProcessEnv, usage: string): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(args));
  } catch (e) {
    process.stderr.write(`oci-build: ${(e as Error).message}\n\n${usage}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const client = new RegistryClient({ credentials: credentialsFrom({ explicit: credentialsFromEnv(env) }) });
  try {
    const p = await plan({
      config: values.config,
      variants: values.variant.flatMap((v) => v.split(',')).filter(Boolean),
      push: false,
      tags: [],
      outputs: [],
      credentials: {},
      dockerConfig: false,
      platforms: [],
      gzipLevel: 1,
      workDir: '',
      env,
      base: values.base,
    });
    // A base's User and WorkingDir are read only when a run: step's user or workdir must be put back.
    const baseConfig = async (ref: string): Promise<StartConfig> => {
      const base = await resolveBase(client, ref, hostPlatform());
      return { user: base.config.config?.User ?? '', workdir: base.config.config?.WorkingDir ?? '' };
    };
    const x = await exportDockerfile(p.variants, { buildFile: relative(process.cwd(), p.buildFile.file) || p.buildFile.file, baseConfig });
    const context = p.buildFile.context;
    for (const f of x.files) {
      const at = join(context, f.path);
      await mkdir(dirname(at), { recursive: true });
      await writeFile(at, f.content, { mode: 0o644 });
    }
    if (values.output) await writeFile(resolve(values.output), x.text);
    else process.stdout.write(x.text);
    if (x.files.length)
      process.stderr.write(
        `oci-build: wrote ${x.files.length} file(s) under ${join(context, EXPORT_DIR)}/ for the file: steps (the Dockerfile's COPY reads them; keep them with the Dockerfile)\n`,
      );
    const shipped = p.variants.filter((v) => !v.stage).map((v) => v.name);
    process.stderr.write(
      `oci-build: stages ${x.stages.join(', ')}; build in ${context}${shipped.length > 1 ? ` with --target ${shipped.join('|')} (default: the last)` : ''}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof ExportError) {
      process.stderr.write(`oci-build: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`oci-build: error: ${(err as Error).message ?? err}\n`);
    return 1;
  } finally {
    await client.close();
  }
}
