/**
 * A build file's Dockerfile variants (`dockerfile:`) converted into the model: each becomes the
 * variants of the stages its target needs (`<variant>.<stage>`, build stages) and the target
 * itself under the variant's name, with the build file's image, tags, flavor, platforms, labels,
 * annotations and stage. A named context `variant:NAME` lets a FROM or COPY --from use another
 * variant of the build file, so a matrix shares a base built once. The loaded model is left as
 * it is: the result is a new BuildFile.
 */
import { rmSync } from 'node:fs';
import { relative } from 'node:path';
import { dependencies, selectVariants } from '../config/graph.js';
import { ConfigError, type BuildFile, type ConfigProblem, type DockerfileSource, type VariantSpec } from '../config/model.js';
import type { ContainerConfig, Platform } from '../oci/types.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../oci/platform.js';
import { mapPlatformSpecs, specFor } from '../config/per-platform.js';
import { RegistryClient } from '../registry/client.js';
import { credentialsFrom, type Credentials } from '../registry/credentials.js';
import { resolveBase } from '../build/base.js';
import type { NamedContext } from './convert.js';
import { loadDockerfile } from './index.js';

export interface ExpandOptions {
  /** The run's platforms (a Dockerfile variant without `platforms:` builds these). */
  platforms: string[];
  credentials: Record<string, Credentials>;
  dockerConfig: boolean;
  note?: (message: string) => void;
  /** The secrets given to the build (only their ids are read: RUN --mount=type=secret,required). */
  secrets?: ReadonlyMap<string, unknown>;
}

export const hasDockerfileVariants = (bf: BuildFile) => bf.variants.some((v) => v.dockerfile);

/** The model with every Dockerfile variant converted; the model given is not changed. */
export async function expandDockerfileVariants(bf: BuildFile, opts: ExpandOptions): Promise<BuildFile> {
  if (!hasDockerfileVariants(bf)) return bf;
  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: opts.credentials, dockerConfigPath: opts.dockerConfig ? undefined : null }),
  });
  const problems: ConfigProblem[] = [];
  const converted = new Map<string, VariantSpec[]>();
  const byName = new Map(bf.variants.map((v) => [v.name, v]));
  const configs = new Map<string, Promise<ContainerConfig | undefined>>();
  const imageConfig = async (ref: string, platform: Platform) => (await resolveBase(client, ref, platform)).config.config;
  /** A variant's runtime config for a platform as the model gives it: its base's (or parent's), then its own settings. */
  const configOf = (name: string, platform: Platform): Promise<ContainerConfig | undefined> => {
    const key = `${name}|${formatPlatform(platform)}`;
    let p = configs.get(key);
    if (!p) {
      const found = [...converted.values()].flat().find((v) => v.name === name) ?? byName.get(name)!;
      const spec = specFor(found, formatPlatform(platform));
      p = (async () => {
        const parent = spec.from
          ? await configOf(spec.from, platform)
          : spec.base && spec.base !== 'scratch'
            ? await imageConfig(spec.base, platform)
            : undefined;
        return overlay(parent, spec);
      })();
      configs.set(key, p);
    }
    return p;
  };
  try {
    // All at once (each resolves its bases and reads its context), a variant after the Dockerfile
    // variants it needs, so a Dockerfile variant FROM another one sees it converted.
    const order = selectVariants(bf, []).filter((v) => v.dockerfile);
    const found = new Map<string, ConfigProblem[]>();
    const conversions = new Map<string, Promise<void>>();
    // `waiting`: the variants whose conversion created this one; in a cycle (the graph checks
    // report it) they are not waited for, so no conversion waits on itself.
    const convert = (v: VariantSpec, waiting: ReadonlySet<string> = new Set()): Promise<void> => {
      let p = conversions.get(v.name);
      if (!p) {
        const chain = new Set([...waiting, v.name]);
        p = (async () => {
          const deps = dockerfileDependencies(v, byName).filter((d) => !chain.has(d.name));
          await Promise.all(deps.map((d) => convert(d, chain)));
          try {
            const platforms = conversionPlatforms(v, opts.platforms);
            converted.set(v.name, await convertVariant(v, v.dockerfile!, platforms, opts, imageConfig, configOf));
          } catch (e) {
            if (e instanceof ConfigError) found.set(v.name, e.problems);
            else throw e;
          }
        })();
        conversions.set(v.name, p);
      }
      return p;
    };
    await Promise.all(order.map((v) => convert(v)));
    // In the file's dependency order, whichever finished first.
    for (const v of order) problems.push(...(found.get(v.name) ?? []));
    const variants = bf.variants.flatMap((v) => converted.get(v.name) ?? (v.dockerfile ? [] : [v]));
    problems.push(...nameClashes(bf, variants));
    if (problems.length) throw new ConfigError(problems);
    return { ...bf, variants };
  } finally {
    await client.close();
  }
}

/**
 * The Dockerfile variants `v` needs (through `from`, copies, mounts and named contexts, across
 * variants of the build file that are not Dockerfiles), without `v` itself: a cycle is the graph
 * checks' to report, not a conversion that waits on itself.
 */
function dockerfileDependencies(v: VariantSpec, byName: ReadonlyMap<string, VariantSpec>): VariantSpec[] {
  const seen = new Set<string>([v.name]);
  const out: VariantSpec[] = [];
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const d = byName.get(name);
    if (!d) return;
    if (d.dockerfile) out.push(d);
    for (const n of dependencies(d)) visit(n);
  };
  for (const n of dependencies(v)) visit(n);
  return out;
}

async function convertVariant(
  v: VariantSpec,
  df: DockerfileSource,
  platforms: Platform[],
  opts: ExpandOptions,
  imageConfig: (ref: string, p: Platform) => Promise<ContainerConfig | undefined>,
  configOf: (name: string, p: Platform) => Promise<ContainerConfig | undefined>,
): Promise<VariantSpec[]> {
  // A named context's config is the first platform's (a variant's Env and WorkingDir seldom differ per platform).
  const contexts = new Map<string, NamedContext>();
  for (const [name, c] of Object.entries(df.contexts))
    contexts.set(name, 'variant' in c ? { variant: c.variant, config: await configOf(c.variant, platforms[0]!) } : c);
  const loaded = await loadDockerfile({
    file: df.file,
    context: df.context,
    buildArgs: df.args,
    ...(df.target !== undefined ? { target: df.target } : {}),
    ...(df.targetPos ? { targetAt: { ...df.targetPos, field: `variants.${v.name}.target` } } : {}),
    platforms,
    buildPlatform: hostPlatform(),
    imageConfig,
    prefix: `${v.name}.`,
    contexts,
    secrets: new Set(opts.secrets?.keys() ?? []),
    ...(opts.note ? { note: opts.note } : {}),
  });
  // The filtered context copy (.dockerignore) lives as long as this process: the build reads it.
  if (loaded.context !== df.context) process.once('exit', () => rmSync(loaded.context, { recursive: true, force: true }));
  const rename = (n: string | undefined) => (n === loaded.target ? v.name : n);
  return loaded.buildFile.variants.map((s) => {
    const renamed: VariantSpec = mapPlatformSpecs(s, (p) => ({
      ...(p.from !== undefined ? { from: rename(p.from)! } : {}),
      steps: p.steps.map((st) => (st.kind === 'copy' && st.from !== undefined ? { ...st, from: rename(st.from)! } : st)),
    }));
    if (s.name !== loaded.target) return renamed;
    // The target: the build file's settings for what is shipped, the Dockerfile's for what is built.
    return {
      ...mapPlatformSpecs(renamed, (p) => ({ labels: { ...p.labels, ...v.labels } })),
      name: v.name,
      annotations: { ...s.annotations, ...v.annotations },
      ...(v.image !== undefined ? { image: v.image } : {}),
      ...(v.tags ? { tags: v.tags } : {}),
      ...(v.flavor ? { flavor: v.flavor } : {}),
      ...(v.platforms ? { platforms: v.platforms } : {}),
      stage: v.stage === true,
      dockerfile: df,
      pos: v.pos,
    };
  });
}

/**
 * The platforms a Dockerfile variant is converted for: its own (those of them the run asks for,
 * when it asks for some of them), else the run's, else the machine's.
 */
function conversionPlatforms(v: VariantSpec, requested: string[]): Platform[] {
  const wanted = requested.flatMap((p) => {
    try {
      return [formatPlatform(parsePlatform(p))];
    } catch {
      return []; // the plan reports it
    }
  });
  const own = v.platforms?.filter((p) => !wanted.length || wanted.includes(p));
  const list = own?.length ? own : (v.platforms ?? wanted);
  return list.length ? list.map(parsePlatform) : [hostPlatform()];
}

/** A stage variant (`app.builder`) must not take the name of a variant the build file declares. */
function nameClashes(bf: BuildFile, variants: VariantSpec[]): ConfigProblem[] {
  const seen = new Map<string, VariantSpec>();
  const out: ConfigProblem[] = [];
  for (const v of variants) {
    const other = seen.get(v.name);
    if (other)
      out.push({
        file: bf.file,
        line: other.pos.line,
        column: other.pos.column,
        field: `variants.${v.name}`,
        message: `variant ${v.name} clashes with a Dockerfile stage's variant (${relative(bf.context, v.pos.file) || v.pos.file}:${v.pos.line})`,
        hint: 'rename the variant or the stage',
      });
    seen.set(v.name, v);
  }
  return out;
}

/** A parent's config with a variant's env, user, workdir and ONBUILD triggers on top. */
function overlay(parent: ContainerConfig | undefined, v: VariantSpec): ContainerConfig {
  const env = new Map<string, string>();
  for (const e of parent?.Env ?? []) {
    const i = e.indexOf('=');
    env.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  for (const [k, val] of Object.entries(v.env)) env.set(k, val);
  const out: ContainerConfig = { ...parent, Env: [...env].map(([k, val]) => `${k}=${val}`) };
  if (v.user !== undefined) out.User = v.user;
  if (v.workdir !== undefined) out.WorkingDir = v.workdir;
  const onBuild = v.onBuild ?? (parent as { OnBuild?: string[] } | undefined)?.OnBuild;
  if (onBuild) (out as { OnBuild?: string[] }).OnBuild = onBuild;
  return out;
}
