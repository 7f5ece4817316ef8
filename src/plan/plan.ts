import { resolve } from 'node:path';
import { loadModel } from '../config/frontend.js';
import { selectVariants } from '../config/graph.js';
import { ConfigError, type BuildFile, type ConfigProblem, type VariantSpec } from '../config/model.js';
import { resolvePlatformSources } from '../config/platform-sources.js';
import { mapPlatformSpecs, platformSpecs, specFor } from '../config/per-platform.js';
import { isValidTag, parseReference } from '../oci/reference.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import { createdTime } from '../build/assemble.js';
import { contextFromEnv, shortShaLengthFromEnv, type GitContext } from '../github/context.js';
import { computeVersion, mergeFlavor, parseFlavor, parseFlavorOverrides, resolveTagRules, type Flavor } from '../tags/index.js';
import { ociLabels } from '../github/labels.js';
import { compressionProblem, DEFAULT_ZSTD_LEVEL, type LayerCompression } from '../layer/compress.js';
import type { Credentials } from '../registry/credentials.js';
import type { CacheRegistrySetting } from '../cache/registry-cache.js';
import type { OutputSpec } from '../output/sinks.js';
import { baseOverrides, rebuildFromOf } from './overrides.js';
import { dockerfileBuildFile, type DockerfileInputs } from '../dockerfile/inputs.js';
import { expandDockerfileVariants } from '../dockerfile/variants.js';

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
  /** The layer cache's records in the registry (cache-registry: auto|false|REF). Default auto. */
  cacheRegistry?: CacheRegistrySetting;
  /** How run: steps are isolated: runc, chroot, or auto (runc when installed). Default auto. */
  isolation?: 'auto' | 'runc' | 'chroot';
  /** SLSA provenance for every image (max: with the build file and arg values); SBOM per platform. Default off here; the CLI and the action turn them on. */
  provenance?: false | 'min' | 'max';
  sbom?: boolean;
  /** Sign attestations as GitHub artifact attestations (the action on the Actions runtime). */
  signing?: { token: string; upload: boolean };
  /** Environment for ${NAME} overrides of build-file args. */
  env: Record<string, string | undefined>;
  /**
   * One job of a distributed build: multi-platform variants are pushed by digest only (the
   * merge job makes their index and tags), and a partial digest map is written here.
   */
  distribute?: { partialMap: string };
  /** Build this variant (and what it needs) and stop: it is written to the outputs even when it is a stage. */
  target?: string;
  /** Base overrides: VARIANT=REF, or REF alone when one variant has a base. */
  base?: string[];
  /** VARIANT or VARIANT:STEP (1-based): ignore the layer cache from there on (and for variants built from it). */
  rebuildFrom?: string;
  /** Build a Dockerfile (its target stage) instead of the build file `config`. */
  dockerfile?: DockerfileInputs;
  /** RUN --mount=type=secret values by id (never logged or stored). */
  secrets?: Map<string, Buffer>;
}

/** What a run will do, resolved from the model and the inputs; the model itself is left as loaded. */
export interface Plan {
  buildFile: BuildFile;
  /**
   * Variants to build, dependencies first (variants with none of the requested platforms left
   * out): copies of the model's, with `image`, `labels` and `annotations` resolved from the
   * inputs and copy steps' per-platform sources filled in.
   */
  variants: VariantSpec[];
  /** Platforms each variant builds, in the order declared. */
  platforms: Map<string, Platform[]>;
  /** Variants whose result is an index (they declare platforms, or build several). */
  asIndex: Set<string>;
  /** Tags per variant (names only). */
  tags: Map<string, string[]>;
  /** Variants whose base was overridden (--base), and the base the build file gives. */
  baseOverridden: Map<string, string>;
  /** --rebuild-from: variant -> the first step (0-based) built without the layer cache. */
  rebuildFrom: Map<string, number>;
}

/** The compression new layers get, from the inputs. */
export function layerCompressionOf(inputs: Pick<PipelineInputs, 'compression' | 'gzipLevel' | 'zstdLevel'>): LayerCompression {
  return inputs.compression === 'zstd'
    ? { algorithm: 'zstd', level: inputs.zstdLevel ?? DEFAULT_ZSTD_LEVEL }
    : { algorithm: inputs.compression ?? 'gzip', level: inputs.gzipLevel };
}

/**
 * Phase 1, no network and no writes: the whole build file and every input are checked. `warn`
 * hears what the tag rules skip or read unusually (a tag that is not semver, an unquoted date format).
 */
export async function plan(inputs: PipelineInputs, warn?: (message: string) => void): Promise<Plan> {
  // A Dockerfile needs its base images' configs (ENV PATH=$PATH, relative WORKDIR) and the CLI's
  // build args, target and -t references, so it is loaded here rather than by file name.
  const df = inputs.dockerfile ? await dockerfileBuildFile(inputs.dockerfile, inputs) : undefined;
  // The build file's Dockerfile variants are converted here for the same reason (a new model; the loaded one is kept).
  const buildFile =
    df?.buildFile ??
    (await expandDockerfileVariants(await loadModel(resolve(inputs.config), { env: inputs.env }), {
      ...inputs,
      ...(warn ? { note: warn } : {}),
    }));
  const problems: ConfigProblem[] = [];
  if (inputs.target && inputs.variants.length)
    problems.push({
      file: 'inputs',
      field: 'target',
      message: `target ${inputs.target} and variants ${inputs.variants.join(', ')} both given`,
      hint: 'give one: --target builds that variant and what it needs, and stops',
    });
  const selected = selectVariants(buildFile, df ? [df.target] : inputs.target ? [inputs.target] : inputs.variants);
  const overrides = baseOverrides(buildFile, inputs.base ?? [], problems);
  const requested: string[] = [];
  for (const p of inputs.platforms) {
    try {
      requested.push(formatPlatform(parsePlatform(p)));
    } catch (e) {
      problems.push({ file: 'inputs', field: 'platforms', message: (e as Error).message, hint: 'e.g. linux/amd64,linux/arm64' });
    }
  }
  const compression = layerCompressionOf(inputs);
  const badCompression = compressionProblem(compression, {
    algorithm: 'compression',
    level: compression.algorithm === 'zstd' ? 'zstd-level' : 'gzip-level',
  });
  if (badCompression)
    problems.push({
      file: 'inputs',
      field: 'compression',
      message: badCompression,
      hint: 'compression: gzip (gzip-level 0-9) or zstd (zstd-level 1-19)',
    });
  const { platforms, asIndex, skipped } = choosePlatforms(buildFile, selected, requested, problems);
  let variants = selected.filter((v) => !skipped.has(v.name));
  if (!problems.length) {
    const sources = await resolvePlatformSources(buildFile, variants, (v) => (platforms.get(v.name) ?? []).map(formatPlatform));
    problems.push(...sources.problems);
    variants = sources.variants;
  }
  const tags = new Map<string, string[]>();
  const git = inputs.git ?? contextFromEnv({});
  const now = new Date();
  let globalFlavor: Flavor | undefined;
  try {
    globalFlavor = parseFlavor(inputs.flavor ?? []);
  } catch (e) {
    problems.push({ file: 'inputs', field: 'flavor', message: (e as Error).message });
  }
  let shortShaLength: number | undefined;
  try {
    shortShaLength = shortShaLengthFromEnv(inputs.env);
  } catch (e) {
    problems.push({ file: 'env', field: 'DOCKER_METADATA_SHORT_SHA_LENGTH', message: (e as Error).message });
  }
  const explicitLabels = new Map<string, Record<string, string>>();
  const baseOverridden = new Map<string, string>();
  const resolved: VariantSpec[] = [];
  for (const spec of variants) {
    const v: VariantSpec = { ...spec };
    resolved.push(v);
    const base = overrides.get(v.name);
    if (base !== undefined) {
      baseOverridden.set(v.name, v.base ?? 'scratch');
      v.base = base;
    }
    // The target is the result of this run, written to the outputs even when it is a stage.
    if (v.name === inputs.target) v.stage = false;
    const image = inputs.images?.[v.name] ?? v.image ?? inputs.defaultImage?.(v.name);
    if (image !== undefined) {
      try {
        parseReference(image, { repositoryOnly: true });
        v.image = image;
      } catch (e) {
        problems.push({
          file: 'inputs',
          field: 'images',
          message: `variant ${v.name}: ${(e as Error).message}`,
          hint: 'give a lowercase repository without tag, e.g. ghcr.io/acme/app',
        });
      }
    }
    let names: string[] = [];
    let version: string | undefined;
    try {
      const rules = resolveTagRules(
        inputs.tags.map((t) => t.replaceAll('${variant}', v.name)),
        v.tags ?? [],
      );
      const computed = computeVersion(rules, mergeFlavor(globalFlavor ?? parseFlavor([]), parseFlavorOverrides(v.flavor ?? [])), git, now, {
        shortShaLength,
        warn: warn && ((m) => warn(`variant ${v.name}: ${m}`)),
      });
      names = computed.tags;
      version = computed.main;
    } catch (e) {
      problems.push({ file: 'inputs', field: 'tags', message: `variant ${v.name}: ${(e as Error).message}` });
    }
    for (const t of names) {
      if (!isValidTag(t))
        problems.push({
          file: 'inputs',
          field: 'tags',
          message: `tag "${t}" (variant ${v.name}) is invalid`,
          hint: 'tags use letters, digits, _ . - only, at most 128 characters, and may not start with . or -',
        });
    }
    tags.set(v.name, names);
    // Labels the build file sets on this variant or on those it starts from (variants come
    // dependencies first): generated labels must not override them.
    const own = { ...(v.from ? explicitLabels.get(v.from) : undefined), ...v.labels };
    explicitLabels.set(v.name, own);
    if (inputs.githubLabels) {
      // metadata-action's labels go under the build file's own, in the config and as annotations.
      const gh = ociLabels(git, version, createdTime(inputs.sourceDateEpoch));
      // (For each platform's definition: a Dockerfile's LABEL may differ per platform.)
      const labelled = mapPlatformSpecs(v, (s) => ({
        labels: { ...gh, ...(s.from ? explicitLabels.get(s.from) : undefined), ...s.labels },
      }));
      v.labels = labelled.labels;
      if (labelled.perPlatform) v.perPlatform = labelled.perPlatform;
      v.annotations = { ...gh, ...v.annotations };
    }
    if ((inputs.push || inputs.distribute) && !v.image && !v.stage) {
      problems.push({
        file: buildFile.file,
        line: v.pos.line,
        column: v.pos.column,
        field: `variants.${v.name}.image`,
        message: `variant ${v.name} has no image to push to`,
        hint: `set variants.${v.name}.image or defaults.image (e.g. ghcr.io/OWNER/NAME)`,
      });
    }
  }
  if (inputs.distribute && !inputs.push)
    problems.push({
      file: 'inputs',
      field: 'push',
      message: 'a distributed build must push (the merge job assembles what the build jobs pushed)',
      hint: 'set push: true, or drop distribute',
    });
  const rebuildFrom = rebuildFromOf(resolved, inputs.rebuildFrom, problems);
  if (problems.length) throw new ConfigError(problems);
  return { buildFile, variants: resolved, platforms, asIndex, tags, baseOverridden, rebuildFrom };
}

/**
 * Which platforms each variant builds. A `from` variant inherits its parent's declared
 * platforms and may only narrow them; a variant left with none of the requested platforms
 * is skipped (in a matrix job per platform, another job builds it).
 */
function choosePlatforms(bf: BuildFile, variants: VariantSpec[], requested: string[], problems: ConfigProblem[]) {
  const byName = new Map(bf.variants.map((v) => [v.name, v]));
  const declared = (v: VariantSpec | undefined): string[] | undefined =>
    v ? (v.platforms ?? (v.from ? declared(byName.get(v.from)) : undefined)) : undefined;
  const fallback = requested.length ? requested : [formatPlatform(hostPlatform())];
  const platforms = new Map<string, Platform[]>();
  const asIndex = new Set<string>();
  const skipped = new Set<string>();
  for (const v of variants) {
    // A Dockerfile stage with FROM --platform: built for that platform only, whoever uses it.
    if (v.fixedPlatform) {
      platforms.set(v.name, [parsePlatform(v.fixedPlatform)]);
      continue;
    }
    const own = declared(v);
    if (v.platforms) {
      // Per platform, since a Dockerfile variant may start from another stage on each.
      const extra = v.platforms.filter((p) => {
        const parent = byName.get(specFor(v, p).from ?? '');
        const parentOwn = parent && !parent.fixedPlatform ? declared(parent) : undefined;
        return parentOwn !== undefined && !parentOwn.includes(p);
      });
      if (extra.length)
        problems.push({
          file: bf.file,
          line: v.pos.line,
          column: v.pos.column,
          field: `variants.${v.name}.platforms`,
          message: `${extra.join(', ')} not built by ${v.from}, which this variant starts from`,
          hint: `add them to variants.${v.from}.platforms or remove them here`,
        });
    }
    const list = own ? (requested.length ? own.filter((p) => requested.includes(p)) : own) : fallback;
    if (list.length === 0) {
      skipped.add(v.name);
      continue;
    }
    platforms.set(v.name, list.map(parsePlatform));
    if (own || list.length > 1) asIndex.add(v.name);
  }
  // A variant whose parent is skipped cannot be built either.
  for (const v of variants) if (platformSpecs(v).some((s) => s.from !== undefined && skipped.has(s.from))) skipped.add(v.name);
  return { platforms, asIndex, skipped };
}
