import { resolve } from 'node:path';
import { loadBuildFile, selectVariants } from './config/load.js';
import { ConfigError, type BuildFile, type ConfigProblem, type VariantSpec } from './config/model.js';
import { isValidTag, parseReference, formatRepository } from './oci/reference.js';
import { hostPlatform, parsePlatform } from './oci/platform.js';
import type { Platform } from './oci/types.js';
import { BlobStore } from './layer/blobstore.js';
import { RegistryClient } from './registry/client.js';
import { credentialsFrom, type Credentials } from './registry/credentials.js';
import { DaemonlessBuilder } from './build/builder.js';
import type { BuiltImage } from './build/image.js';
import { RegistryPublisher, type PublishStats, type PublishTarget } from './output/publisher.js';
import { DigestMapRecorder, type DigestMap } from './output/digest-map.js';
import { writeOciLayout } from './output/oci-layout.js';
import { writeDockerArchive } from './output/docker-archive.js';
import { BufferedLogger } from './output/buffered-logger.js';
import type { OutputSpec } from './output/targets.js';
import { formatMs, type Logger } from './log.js';

/** Everything one run needs, already parsed; the CLI and the action each build one. */
export interface PipelineInputs {
  config: string;
  /** Variants to build (plus what they need through `from`); empty means all. */
  variants: string[];
  push: boolean;
  /** Tag names; `${variant}` is replaced by each variant's name. */
  tags: string[];
  outputs: OutputSpec[];
  /** Where to write the digest map JSON; undefined to skip the file. */
  digestMap?: string;
  /** Explicit credentials by registry host; they win over ~/.docker/config.json. */
  credentials: Record<string, Credentials>;
  /** Read ~/.docker/config.json (or $DOCKER_CONFIG) for other registries. */
  dockerConfig: boolean;
  platform?: string;
  sourceDateEpoch?: number;
  gzipLevel: number;
  /** Local blob store (cache) directory. */
  workDir: string;
  /** Environment for ${NAME} overrides of build-file args. */
  env: Record<string, string | undefined>;
}

export interface PipelineResult {
  digestMap: DigestMap;
  digests: Record<string, string>;
  images: BuiltImage[];
  stats?: PublishStats;
  digestMapPath?: string;
}

export interface Plan {
  buildFile: BuildFile;
  variants: VariantSpec[];
  platform: Platform;
  /** Tags per variant (names only). */
  tags: Map<string, string[]>;
}

/** Phase 1, no network and no writes: the whole build file and every input are checked. */
export async function plan(inputs: PipelineInputs): Promise<Plan> {
  const buildFile = await loadBuildFile(resolve(inputs.config), { env: inputs.env });
  const variants = selectVariants(buildFile, inputs.variants);
  const problems: ConfigProblem[] = [];
  let platform = hostPlatform();
  if (inputs.platform) {
    try { platform = parsePlatform(inputs.platform); } catch (e) { problems.push({ file: 'inputs', field: 'platform', message: (e as Error).message }); }
  }
  const tags = new Map<string, string[]>();
  for (const v of variants) {
    const names = [...new Set(inputs.tags.map((t) => t.replaceAll('${variant}', v.name).trim()).filter(Boolean))];
    for (const t of names) {
      if (!isValidTag(t)) problems.push({ file: 'inputs', field: 'tags', message: `tag "${t}" (variant ${v.name}) is invalid`, hint: 'tags use letters, digits, _ . - only, at most 128 characters, and may not start with . or -' });
    }
    tags.set(v.name, names);
    if (inputs.push && !v.image) {
      problems.push({ file: buildFile.file, line: v.pos.line, column: v.pos.column, field: `variants.${v.name}.image`, message: `variant ${v.name} has no image to push to`, hint: `set variants.${v.name}.image or defaults.image (e.g. ghcr.io/OWNER/NAME)` });
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return { buildFile, variants, platform, tags };
}

export async function runPipeline(inputs: PipelineInputs, logger: Logger): Promise<PipelineResult> {
  const t0 = Date.now();
  const p = await logger.group('validate', async () => {
    const r = await plan(inputs);
    logger.info(`validate: ${r.buildFile.file}: ${r.variants.length} variant(s) [${r.variants.map((v) => v.name).join(', ')}] for ${r.platform.os}/${r.platform.architecture} in ${formatMs(Date.now() - t0)}`);
    return r;
  });
  const store = new BlobStore(resolve(inputs.workDir, 'blobs'));
  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: inputs.credentials, dockerConfigPath: inputs.dockerConfig ? undefined : null }),
    logger,
  });
  try {
    const perVariant = new Map(p.variants.map((v) => [v.name, new BufferedLogger()]));
    const builder = new DaemonlessBuilder(client, store, {
      platform: p.platform,
      sourceDateEpoch: inputs.sourceDateEpoch,
      gzipLevel: inputs.gzipLevel,
      logger,
      variantLogger: (name) => perVariant.get(name) ?? logger,
    });
    let built: Map<string, BuiltImage>;
    try {
      built = await builder.build(p.buildFile, p.variants);
    } finally {
      for (const v of p.variants) {
        const buf = perVariant.get(v.name)!;
        await logger.group(`variant ${v.name}`, async () => buf.flushTo(logger));
      }
    }
    const images = p.variants.map((v) => built.get(v.name)!);
    const recorder = new DigestMapRecorder();
    let stats: PublishStats | undefined;
    if (inputs.push) {
      const targets: PublishTarget[] = p.variants.map((v) => {
        const ref = parseReference(v.image!, { repositoryOnly: true });
        return { image: built.get(v.name)!, repo: { registry: ref.registry, repository: ref.repository }, tags: p.tags.get(v.name) ?? [] };
      });
      const publisher = new RegistryPublisher(client, store, builder.fetcher, logger);
      stats = await logger.group('push', () => publisher.publish(targets));
    }
    for (const v of p.variants) {
      const img = built.get(v.name)!;
      const image = v.image ? formatRepository(parseReference(v.image, { repositoryOnly: true })) : v.name;
      recorder.record(v.name, {
        image,
        digest: img.manifestDescriptor.digest,
        ref: `${image}@${img.manifestDescriptor.digest}`,
        tags: (p.tags.get(v.name) ?? []).map((t) => `${image}:${t}`),
        size: img.totalSize,
        pushed: inputs.push,
      });
    }
    if (inputs.outputs.length) {
      await logger.group('outputs', async () => {
        for (const out of inputs.outputs) {
          const t = Date.now();
          if (out.kind === 'oci') {
            await writeOciLayout(resolve(out.dir), images, store, builder.fetcher);
            logger.info(`output: OCI layout ${out.dir} (${images.length} image(s), ref names = variant names) in ${formatMs(Date.now() - t)}`);
          } else {
            await writeDockerArchive(resolve(out.file), images, recorder.toJSON(), store, builder.fetcher);
            logger.info(`output: docker archive ${out.file} (${images.length} image(s)) in ${formatMs(Date.now() - t)}`);
          }
        }
      });
    }
    let digestMapPath: string | undefined;
    if (inputs.digestMap) {
      digestMapPath = resolve(inputs.digestMap);
      await recorder.write(digestMapPath);
      logger.info(`digest map: ${digestMapPath}`);
    }
    logger.info(`done: ${images.length} image(s) in ${formatMs(Date.now() - t0)}`);
    return { digestMap: recorder.toJSON(), digests: recorder.digests(), images, stats, digestMapPath };
  } finally {
    await client.close();
  }
}
