import { resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { buildFileHash, writePartial } from './distribute/partial.js';
import { loadBuildFile, selectVariants } from './config/load.js';
import { ConfigError, type BuildFile, type ConfigProblem, type VariantSpec } from './config/model.js';
import { isValidTag, parseReference, formatRepository } from './oci/reference.js';
import { formatPlatform, hostPlatform, parsePlatform } from './oci/platform.js';
import { resolvePlatformSources } from './config/platform-sources.js';
import { assembleVariant, createdTime } from './build/assemble.js';
import { contextFromEnv, type GitContext } from './github/context.js';
import { computeVersion, mergeFlavor, parseFlavor, parseFlavorOverrides, resolveTagRules, type Flavor } from './github/tags.js';
import { ociLabels } from './github/labels.js';
import type { Platform } from './oci/types.js';
import { BlobStore } from './layer/blobstore.js';
import { compressionProblem, DEFAULT_ZSTD_LEVEL, type LayerCompression } from './layer/compress.js';
import { RegistryClient } from './registry/client.js';
import { credentialsFrom, type Credentials } from './registry/credentials.js';
import { DaemonlessBuilder } from './build/builder.js';
import { elevateIfNeeded } from './run/privilege.js';
import type { BuiltImage, BuiltVariant } from './build/image.js';
import { RegistryPublisher, type PublishStats, type PublishTarget } from './output/publisher.js';
import { DigestMapRecorder, type DigestMap } from './output/digest-map.js';
import { writeOciLayout } from './output/oci-layout.js';
import { writeDockerArchive } from './output/docker-archive.js';
import { BufferedLogger } from './output/buffered-logger.js';
import type { OutputSpec } from './output/targets.js';
import { formatMs, type Logger } from './log.js';
import { dockerfileBuildFile, type DockerfileInputs } from './dockerfile/inputs.js';

/** Everything one run needs, already parsed; the CLI and the action each build one. */
export interface PipelineInputs {
  config: string;
  /** Variants to build (plus what they need through `from`); empty means all. */
  variants: string[];
  push: boolean;
  /**
   * docker/metadata-action tag rules (a plain name is `type=raw,value=name`); `${variant}` is
   * replaced by each variant's name. Variants add their own `tags:` rules from the build file.
   */
  tags: string[];
  /** metadata-action flavor lines; a variant's `flavor:` lines override them. */
  flavor?: string[];
  /** The Git/GitHub context tag rules and labels read (empty off GitHub). */
  git?: GitContext;
  /** Add metadata-action's org.opencontainers.image.* labels and annotations (on GitHub). */
  githubLabels?: boolean;
  /** Repository per variant, overriding the build file (the action's `images` input). */
  images?: Record<string, string>;
  /** Repository for variants that have none (the action: ghcr.io/<owner>/<repo>-<variant>). */
  defaultImage?: (variant: string) => string;
  outputs: OutputSpec[];
  /** Where to write the digest map JSON; undefined to skip the file. */
  digestMap?: string;
  /** Explicit credentials by registry host; they win over ~/.docker/config.json. */
  credentials: Record<string, Credentials>;
  /** Read ~/.docker/config.json (or $DOCKER_CONFIG) for other registries. */
  dockerConfig: boolean;
  /**
   * Platforms to build (os/arch[/variant]). A variant that declares platforms builds those of
   * them listed here (all of them when this is empty); any other variant builds these (the
   * machine's platform when empty).
   */
  platforms: string[];
  sourceDateEpoch?: number;
  gzipLevel: number;
  /** Layer compression: gzip (at gzipLevel, the default) or zstd (at zstdLevel, default 3). */
  compression?: 'gzip' | 'zstd';
  zstdLevel?: number;
  /** Local blob store (cache) directory. */
  workDir: string;
  /** Reuse layers from the layer cache in workDir (false: --no-cache / cache: false). Default true. */
  cache?: boolean;
  /** Environment for ${NAME} overrides of build-file args. */
  env: Record<string, string | undefined>;
  /**
   * One job of a distributed build: multi-platform variants are pushed by digest only (the
   * merge job makes their index and tags), and a partial digest map is written here.
   */
  distribute?: { partialMap: string };
  /** Build a Dockerfile (its target stage) instead of the build file `config`. */
  dockerfile?: DockerfileInputs;
}

export interface PipelineResult {
  digestMap: DigestMap;
  digests: Record<string, string>;
  variants: BuiltVariant[];
  stats?: PublishStats;
  digestMapPath?: string;
}

export interface Plan {
  buildFile: BuildFile;
  /** Variants to build, dependencies first (variants with none of the requested platforms left out). */
  variants: VariantSpec[];
  /** Platforms each variant builds, in the order declared. */
  platforms: Map<string, Platform[]>;
  /** Variants whose result is an index (they declare platforms, or build several). */
  asIndex: Set<string>;
  /** Tags per variant (names only). */
  tags: Map<string, string[]>;
}

/** The compression new layers get, from the inputs. */
export function layerCompressionOf(inputs: Pick<PipelineInputs, 'compression' | 'gzipLevel' | 'zstdLevel'>): LayerCompression {
  return inputs.compression === 'zstd'
    ? { algorithm: 'zstd', level: inputs.zstdLevel ?? DEFAULT_ZSTD_LEVEL }
    : { algorithm: inputs.compression ?? 'gzip', level: inputs.gzipLevel };
}

/** Phase 1, no network and no writes: the whole build file and every input are checked. */
export async function plan(inputs: PipelineInputs): Promise<Plan> {
  const df = inputs.dockerfile ? await dockerfileBuildFile(inputs.dockerfile, inputs) : undefined;
  const buildFile = df?.buildFile ?? await loadBuildFile(resolve(inputs.config), { env: inputs.env });
  const selected = selectVariants(buildFile, df ? [df.target] : inputs.variants);
  const problems: ConfigProblem[] = [];
  const requested: string[] = [];
  for (const p of inputs.platforms) {
    try { requested.push(formatPlatform(parsePlatform(p))); } catch (e) { problems.push({ file: 'inputs', field: 'platforms', message: (e as Error).message, hint: 'e.g. linux/amd64,linux/arm64' }); }
  }
  const compression = layerCompressionOf(inputs);
  const badCompression = compressionProblem(compression, { algorithm: 'compression', level: compression.algorithm === 'zstd' ? 'zstd-level' : 'gzip-level' });
  if (badCompression) problems.push({ file: 'inputs', field: 'compression', message: badCompression, hint: 'compression: gzip (gzip-level 0-9) or zstd (zstd-level 1-19)' });
  const { platforms, asIndex, skipped } = choosePlatforms(buildFile, selected, requested, problems);
  const variants = selected.filter((v) => !skipped.has(v.name));
  if (!problems.length) problems.push(...await resolvePlatformSources(buildFile, variants, (v) => (platforms.get(v.name) ?? []).map(formatPlatform)));
  const tags = new Map<string, string[]>();
  const git = inputs.git ?? contextFromEnv({});
  const now = new Date();
  let globalFlavor: Flavor | undefined;
  try { globalFlavor = parseFlavor(inputs.flavor ?? []); } catch (e) { problems.push({ file: 'inputs', field: 'flavor', message: (e as Error).message }); }
  const explicitLabels = new Map<string, Record<string, string>>();
  for (const v of variants) {
    const image = inputs.images?.[v.name] ?? v.image ?? inputs.defaultImage?.(v.name);
    if (image !== undefined) {
      try { parseReference(image, { repositoryOnly: true }); v.image = image; } catch (e) { problems.push({ file: 'inputs', field: 'images', message: `variant ${v.name}: ${(e as Error).message}`, hint: 'give a lowercase repository without tag, e.g. ghcr.io/acme/app' }); }
    }
    let names: string[] = [];
    let version: string | undefined;
    try {
      const rules = resolveTagRules(inputs.tags.map((t) => t.replaceAll('${variant}', v.name)), v.tags ?? []);
      const computed = computeVersion(rules, mergeFlavor(globalFlavor ?? parseFlavor([]), parseFlavorOverrides(v.flavor ?? [])), git, now);
      names = computed.tags;
      version = computed.main;
    } catch (e) {
      problems.push({ file: 'inputs', field: 'tags', message: `variant ${v.name}: ${(e as Error).message}` });
    }
    for (const t of names) {
      if (!isValidTag(t)) problems.push({ file: 'inputs', field: 'tags', message: `tag "${t}" (variant ${v.name}) is invalid`, hint: 'tags use letters, digits, _ . - only, at most 128 characters, and may not start with . or -' });
    }
    tags.set(v.name, names);
    // Labels the build file sets on this variant or on those it starts from (variants come
    // dependencies first): generated labels must not override them.
    const own = { ...(v.from ? explicitLabels.get(v.from) : undefined), ...v.labels };
    explicitLabels.set(v.name, own);
    if (inputs.githubLabels) {
      // metadata-action's labels go under the build file's own, in the config and as annotations.
      const gh = ociLabels(git, version, createdTime(inputs.sourceDateEpoch));
      v.labels = { ...gh, ...own };
      v.annotations = { ...gh, ...v.annotations };
    }
    if ((inputs.push || inputs.distribute) && !v.image && !v.stage) {
      problems.push({ file: buildFile.file, line: v.pos.line, column: v.pos.column, field: `variants.${v.name}.image`, message: `variant ${v.name} has no image to push to`, hint: `set variants.${v.name}.image or defaults.image (e.g. ghcr.io/OWNER/NAME)` });
    }
  }
  if (inputs.distribute && !inputs.push) problems.push({ file: 'inputs', field: 'push', message: 'a distributed build must push (the merge job assembles what the build jobs pushed)', hint: 'set push: true, or drop distribute' });
  if (problems.length) throw new ConfigError(problems);
  return { buildFile, variants, platforms, asIndex, tags };
}

/**
 * Which platforms each variant builds. A `from` variant inherits its parent's declared
 * platforms and may only narrow them; a variant left with none of the requested platforms
 * is skipped (in a matrix job per platform, another job builds it).
 */
function choosePlatforms(bf: BuildFile, variants: VariantSpec[], requested: string[], problems: ConfigProblem[]) {
  const byName = new Map(bf.variants.map((v) => [v.name, v]));
  const declared = (v: VariantSpec | undefined): string[] | undefined => (v ? v.platforms ?? (v.from ? declared(byName.get(v.from)) : undefined) : undefined);
  const fallback = requested.length ? requested : [formatPlatform(hostPlatform())];
  const platforms = new Map<string, Platform[]>();
  const asIndex = new Set<string>();
  const skipped = new Set<string>();
  for (const v of variants) {
    const own = declared(v);
    const parentOwn = v.from ? declared(byName.get(v.from)) : undefined;
    if (v.platforms && parentOwn) {
      const extra = v.platforms.filter((p) => !parentOwn.includes(p));
      if (extra.length) problems.push({ file: bf.file, line: v.pos.line, column: v.pos.column, field: `variants.${v.name}.platforms`, message: `${extra.join(', ')} not built by ${v.from}, which this variant starts from`, hint: `add them to variants.${v.from}.platforms or remove them here` });
    }
    const list = own ? (requested.length ? own.filter((p) => requested.includes(p)) : own) : fallback;
    if (list.length === 0) { skipped.add(v.name); continue; }
    platforms.set(v.name, list.map(parsePlatform));
    if (own || list.length > 1) asIndex.add(v.name);
  }
  // A variant whose parent is skipped cannot be built either.
  for (const v of variants) if (v.from && skipped.has(v.from)) skipped.add(v.name);
  return { platforms, asIndex, skipped };
}

export async function runPipeline(inputs: PipelineInputs, logger: Logger): Promise<PipelineResult> {
  const t0 = Date.now();
  const p = await logger.group('validate', async () => {
    const r = await plan(inputs);
    const plats = [...new Set([...r.platforms.values()].flat().map(formatPlatform))];
    logger.info(`validate: ${r.buildFile.file}: ${r.variants.length} variant(s) [${r.variants.map((v) => v.name).join(', ')}] for ${plats.join(', ')} in ${formatMs(Date.now() - t0)}`);
    return r;
  });
  // run: and copy: from: steps need root: as root, go on; else run again with sudo, or stop here.
  await elevateIfNeeded(p.variants, [inputs.workDir, inputs.digestMap, ...inputs.outputs.map((o) => (o.kind === 'oci' ? o.dir : o.file)), inputs.distribute?.partialMap], logger);
  const store = new BlobStore(resolve(inputs.workDir, 'blobs'));
  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: inputs.credentials, dockerConfigPath: inputs.dockerConfig ? undefined : null }),
    logger,
  });
  try {
    const perVariant = new Map(p.variants.map((v) => [v.name, new BufferedLogger()]));
    const builder = new DaemonlessBuilder(client, store, {
      cacheDir: inputs.cache === false ? undefined : resolve(inputs.workDir),
      sourceDateEpoch: inputs.sourceDateEpoch,
      gzipLevel: inputs.gzipLevel,
      compression: layerCompressionOf(inputs),
      logger,
      variantLogger: (name) => perVariant.get(name) ?? logger,
    });
    let built: Map<string, BuiltImage[]>;
    try {
      built = await builder.build(p.buildFile, p.variants, (v) => p.platforms.get(v.name) ?? []);
    } finally {
      for (const v of p.variants) {
        const buf = perVariant.get(v.name)!;
        await logger.group(`variant ${v.name}`, async () => buf.flushTo(logger));
      }
    }
    await builder.producer().save();
    const ps = builder.producer().stats;
    logger.info(`layers: ${ps.built} built, ${ps.cached} from the layer cache${inputs.cache === false ? ' (off)' : ''}, ${ps.shared} shared between variants`);
    // Stages (stage: true) are built for the variants that use them, and go nowhere.
    const shipped = p.variants.filter((v) => !v.stage);
    const results = shipped.map((v) => assembleVariant(v.name, built.get(v.name)!, p.asIndex.has(v.name), v.annotations));
    const byName = new Map(results.map((r) => [r.variant, r]));
    const recorder = new DigestMapRecorder();
    let stats: PublishStats | undefined;
    if (inputs.push) {
      const targets: PublishTarget[] = shipped.map((v) => {
        const ref = parseReference(v.image!, { repositoryOnly: true });
        const r = byName.get(v.name)!;
        const repo = { registry: ref.registry, repository: ref.repository };
        // Distributed: the platform manifests go up by digest; the merge job makes the index and tags.
        if (inputs.distribute && r.index) return { variant: { ...r, index: undefined, top: r.images[0]!.manifestDescriptor, topBytes: r.images[0]!.manifestBytes }, repo, tags: [] };
        return { variant: r, repo, tags: p.tags.get(v.name) ?? [] };
      });
      const publisher = new RegistryPublisher(client, store, builder.fetcher, logger);
      stats = await logger.group('push', () => publisher.publish(targets));
    }
    for (const v of shipped) {
      const r = byName.get(v.name)!;
      const image = v.image ? formatRepository(parseReference(v.image, { repositoryOnly: true })) : v.name;
      recorder.record(v.name, {
        image,
        digest: r.top.digest,
        mediaType: r.top.mediaType,
        ref: `${image}@${r.top.digest}`,
        tags: (p.tags.get(v.name) ?? []).map((t) => `${image}:${t}`),
        size: r.totalSize,
        pushed: inputs.push,
        ...(r.index ? { platforms: Object.fromEntries(r.images.map((i) => [formatPlatform(i.platform), { digest: i.manifestDescriptor.digest, size: i.manifestDescriptor.size }])) } : {}),
      });
    }
    if (inputs.outputs.length) {
      await logger.group('outputs', async () => {
        for (const out of inputs.outputs) {
          const t = Date.now();
          if (out.kind === 'oci') {
            await writeOciLayout(resolve(out.dir), results, store, builder.fetcher);
            logger.info(`output: OCI layout ${out.dir} (${results.length} variant(s), ref names = variant names) in ${formatMs(Date.now() - t)}`);
          } else {
            await writeDockerArchive(resolve(out.file), results, recorder.toJSON(), store, builder.fetcher);
            logger.info(`output: docker archive ${out.file} (${results.length} image(s)) in ${formatMs(Date.now() - t)}`);
          }
        }
      });
    }
    if (inputs.distribute) {
      await writePartial(resolve(inputs.distribute.partialMap), {
        kind: 'oci-build-partial',
        version: 1,
        buildFile: buildFileHash(await readFile(p.buildFile.file, 'utf8')),
        job: p.variants.map((v) => `${v.name}[${(p.platforms.get(v.name) ?? []).map(formatPlatform).join(',')}]`).join(' '),
        variants: Object.fromEntries(results.map((r) => [r.variant, r.index
          ? { kind: 'platforms' as const, image: recorder.toJSON()[r.variant]!.image, platforms: Object.fromEntries(r.images.map((i) => [formatPlatform(i.platform), { digest: i.manifestDescriptor.digest, size: i.manifestDescriptor.size, mediaType: i.manifestDescriptor.mediaType, totalSize: i.totalSize }])) }
          : { kind: 'entry' as const, entry: recorder.toJSON()[r.variant]! }])),
      });
      logger.info(`partial digest map: ${resolve(inputs.distribute.partialMap)}`);
    }
    let digestMapPath: string | undefined;
    if (inputs.digestMap) {
      digestMapPath = resolve(inputs.digestMap);
      await recorder.write(digestMapPath);
      logger.info(`digest map: ${digestMapPath}`);
    }
    logger.info(`done: ${results.length} variant(s), ${results.reduce((n, r) => n + r.images.length, 0)} image(s) in ${formatMs(Date.now() - t0)}`);
    return { digestMap: recorder.toJSON(), digests: recorder.digests(), variants: results, stats, digestMapPath };
  } finally {
    await client.close();
  }
}
