import * as core from '@actions/core';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { runPipeline, type PipelineInputs } from './pipeline.js';
import { RanAsRoot } from './run/privilege.js';
import { secretsFromInputs } from './dockerfile/secrets.js';
import { parseOutput, type OutputSpec } from './output/sinks.js';
import { ConfigError } from './config/model.js';
import type { Credentials } from './registry/credentials.js';
import { contextFromEnv, loadEventPayload, type GitContext } from './github/context.js';
import { parsePushMode, shouldPush, type PushMode } from './github/push-policy.js';
import { defaultImage } from './github/image-names.js';
import { explainRegistryError } from './github/ghcr-errors.js';
import { renderSummary, writeSummary, type SummaryRow } from './github/summary.js';
import { defaultArtifactName, uploadDigestMapArtifact } from './github/artifact.js';
import { formatPlatform } from './oci/platform.js';
import { runMerge, MergeError } from './distribute/merge.js';
import { downloadPartials } from './distribute/artifacts.js';
import { cacheKeys, restoreLayerCache, saveLayerCache } from './github/actions-cache.js';
import type { DigestMap } from './output/digest-map.js';
import { parseProvenance, parseSbom } from './attest/options.js';
import type { Logger } from './log.js';
import { parseCacheRegistry, type CacheRegistrySetting } from './cache/registry-cache.js';
import { progressForLog } from './progress/index.js';
import {
  buildPushMetadata,
  dropInPipeline,
  dropInWanted,
  isBuildxOutputs,
  readBuildPushInputs,
  type BuildPushInputs,
} from './github/build-push-inputs.js';

/** The action's inputs, read once into one object and checked before any I/O. */
export interface ActionInputs {
  mode: 'build' | 'merge';
  config: string;
  variants: string[];
  push: PushMode;
  tags: string[];
  flavor: string[];
  images: Record<string, string>;
  registry: string;
  registryUsername: string;
  registryPassword: string;
  registryAuth: { registry: string; username: string; password: string }[];
  digestMap: string;
  outputs: OutputSpec[];
  platforms: string[];
  gzipLevel: number;
  compression: 'gzip' | 'zstd';
  zstdLevel: number;
  distribute: boolean;
  partialPattern: string;
  artifactName: string;
  artifactRetentionDays?: number;
  summary: boolean;
  cache: boolean;
  cacheRegistry: CacheRegistrySetting;
  isolation: 'auto' | 'runc' | 'chroot';
  /** Base overrides, VARIANT=REF per line (or one REF when one variant has a base). */
  base: string[];
  provenance: false | 'min' | 'max';
  sbom: boolean;
  githubToken: string;
}

const lines = (s: string) =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter((x) => x && !x.startsWith('#'));
const list = (s: string) =>
  s
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);

function bool(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off', ''].includes(v)) return false;
  throw new Error(`input ${name}: "${value}" is not true or false`);
}

/** `images`: one `variant=repository` per line, or one template with ${variant} for all. */
function parseImages(text: string): Record<string, string> | ((variant: string) => string) {
  const ls = lines(text);
  if (ls.length === 1 && !ls[0]!.includes('=')) {
    const template = ls[0]!;
    return (variant: string) => template.replaceAll('${variant}', variant);
  }
  const out: Record<string, string> = {};
  for (const l of ls) {
    const i = l.indexOf('=');
    if (i <= 0) throw new Error(`input images: "${l}" is not variant=repository (or give one repository template with \${variant})`);
    out[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return out;
}

const authSchema = z.array(z.object({ registry: z.string().min(1), username: z.string().min(1), password: z.string().min(1) }).strict());

function parseRegistryAuth(text: string): ActionInputs['registryAuth'] {
  if (!text.trim()) return [];
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new Error(`input registry-auth is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  const r = authSchema.safeParse(doc);
  // Never echo the value: it holds passwords.
  if (!r.success)
    throw new Error(
      `input registry-auth must be a YAML list of {registry, username, password}: ${r.error.issues.map((i) => `[${i.path.join('.')}] ${i.message}`).join('; ')}`,
    );
  return r.data;
}

const inputsSchema = z
  .object({
    mode: z.enum(['build', 'merge']),
    config: z.string().min(1, 'config: give the path of the build file, e.g. oci-build.yml'),
    variants: z.array(z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'variants: names are lowercase letters, digits, _ . -')),
    gzipLevel: z.number().int().min(0, 'gzip-level: 0-9').max(9, 'gzip-level: 0-9'),
    compression: z.enum(['gzip', 'zstd'], { message: 'compression: gzip or zstd' }),
    zstdLevel: z.number().int().min(1, 'zstd-level: 1-19').max(19, 'zstd-level: 1-19'),
    artifactRetentionDays: z.number().int().min(1).max(90).optional(),
    isolation: z.enum(['auto', 'runc', 'chroot'], { message: 'isolation: runc, chroot, or auto (runc when installed, else chroot)' }),
  })
  .passthrough();

export function readInputs(): { inputs: ActionInputs; imageTemplate?: (v: string) => string } {
  // Mask secrets before anything can log them, even a validation error.
  const password = core.getInput('registry-password');
  if (password) core.setSecret(password);
  if (core.getInput('github-token')) core.setSecret(core.getInput('github-token'));
  const registryAuth = parseRegistryAuth(core.getInput('registry-auth'));
  for (const a of registryAuth) core.setSecret(a.password);
  const images = parseImages(core.getInput('images'));
  const retention = core.getInput('artifact-retention-days');
  const inputs: ActionInputs = {
    mode: (core.getInput('mode') || 'build') as ActionInputs['mode'],
    config: core.getInput('config') || 'oci-build.yml',
    variants: list(core.getInput('variants')),
    push: parsePushMode(core.getInput('push') || 'auto'),
    tags: lines(core.getInput('tags')),
    flavor: lines(core.getInput('flavor')),
    images: typeof images === 'function' ? {} : images,
    registry: core.getInput('registry') || 'ghcr.io',
    registryUsername: core.getInput('registry-username'),
    registryPassword: password,
    registryAuth,
    digestMap: core.getInput('digest-map') || 'image-digests.json',
    // buildx's `type=...,dest=` form is build-push-action's: the drop-in mode reads it (build-push-inputs.ts).
    outputs: isBuildxOutputs(core.getInput('outputs')) ? [] : list(core.getInput('outputs')).map(parseOutput),
    platforms: list(core.getInput('platforms')),
    gzipLevel: Number(core.getInput('gzip-level') || '1'),
    compression: (core.getInput('compression') || 'gzip') as ActionInputs['compression'],
    zstdLevel: Number(core.getInput('zstd-level') || '3'),
    distribute: bool('distribute', core.getInput('distribute')),
    partialPattern: core.getInput('partial-pattern') || 'oci-build-partial-*',
    artifactName: core.getInput('artifact-name'),
    artifactRetentionDays: retention ? Number(retention) : undefined,
    summary: bool('summary', core.getInput('summary') || 'true'),
    cache: bool('cache', core.getInput('cache') || 'true'),
    cacheRegistry: parseCacheRegistry(core.getInput('cache-registry') || 'auto'),
    isolation: (core.getInput('isolation') || 'auto') as ActionInputs['isolation'],
    base: lines(core.getInput('base')),
    provenance: parseProvenance(core.getInput('provenance') || 'true'),
    sbom: parseSbom(core.getInput('sbom') || 'true'),
    githubToken: core.getInput('github-token'),
  };
  const checked = inputsSchema.safeParse(inputs);
  if (!checked.success)
    throw new Error(`invalid inputs: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return { inputs, imageTemplate: typeof images === 'function' ? images : undefined };
}

export const coreLogger: Logger = {
  info: (m) => core.info(m),
  warn: (m) => core.warning(m),
  debug: (m) => core.debug(m),
  group: (name, fn) => core.group(name, fn),
};

/**
 * SOURCE_DATE_EPOCH, or the commit's time: rebuilding a commit then gives the same digests,
 * and `created` says when the source was written rather than 1970.
 */
function sourceDateEpoch(env: NodeJS.ProcessEnv, git: GitContext): number | undefined {
  const epoch = env.SOURCE_DATE_EPOCH;
  if (epoch) {
    if (!/^\d+$/.test(epoch)) throw new Error(`SOURCE_DATE_EPOCH must be a whole number of seconds, got "${epoch}"`);
    return Number(epoch);
  }
  try {
    const out = execFileSync('git', ['log', '-1', '--format=%ct'], {
      cwd: env.GITHUB_WORKSPACE || process.cwd(),
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
    if (/^\d+$/.test(out)) return Number(out);
  } catch {
    /* not a git checkout */
  }
  if (git.commitDate) {
    const t = Date.parse(git.commitDate);
    if (!Number.isNaN(t)) return Math.floor(t / 1000);
  }
  return undefined;
}

export function pipelineInputs(
  a: ActionInputs,
  env: NodeJS.ProcessEnv,
  git: GitContext,
  push: boolean,
  imageTemplate?: (v: string) => string,
): PipelineInputs {
  // Each set of credentials goes to the one registry it was given for, never elsewhere.
  const credentials: Record<string, Credentials> = {};
  if (a.registryUsername && a.registryPassword) credentials[a.registry] = { username: a.registryUsername, password: a.registryPassword };
  for (const r of a.registryAuth) credentials[r.registry] = { username: r.username, password: r.password };
  return {
    config: a.config,
    variants: a.variants,
    push,
    tags: a.tags,
    flavor: a.flavor,
    git,
    githubLabels: Boolean(git.repository),
    images: a.images,
    defaultImage: imageTemplate ?? (git.repository ? (v: string) => defaultImage(git, v) : undefined),
    outputs: a.outputs,
    digestMap: a.digestMap,
    credentials,
    dockerConfig: true,
    platforms: a.platforms,
    sourceDateEpoch: sourceDateEpoch(env, git),
    gzipLevel: a.gzipLevel,
    compression: a.compression,
    zstdLevel: a.zstdLevel,
    cache: a.cache,
    cacheRegistry: a.cacheRegistry,
    isolation: a.isolation,
    base: a.base,
    provenance: a.provenance,
    sbom: a.sbom,
    // On the Actions runtime, attestations are signed as GitHub artifact attestations when the job may.
    ...(a.githubToken && env.GITHUB_ACTIONS === 'true' ? { signing: { token: a.githubToken, upload: true } } : {}),
    workDir: join(env.RUNNER_TEMP || tmpdir(), 'oci-build'),
    env,
  };
}

interface Outputs {
  digests: Record<string, string>;
  metadata: DigestMap;
  digestMapPath?: string;
  artifactId?: number;
  pushed: boolean;
  /** build-push-action's outputs (drop-in mode): its `metadata` shape replaces ours. */
  buildPush?: { digest: string; imageid: string; metadata: Record<string, unknown> };
}

/** Outputs are set here and only here. */
function setOutputs(o: Outputs): void {
  core.setOutput('digests', JSON.stringify(o.digests));
  core.setOutput('metadata', JSON.stringify(o.buildPush?.metadata ?? o.metadata));
  core.setOutput('digest', o.buildPush?.digest ?? '');
  core.setOutput('imageid', o.buildPush?.imageid ?? '');
  core.setOutput('digest-map', o.digestMapPath ?? '');
  core.setOutput('artifact-id', o.artifactId === undefined ? '' : String(o.artifactId));
  core.setOutput('pushed', String(o.pushed));
}

export async function run(): Promise<void> {
  const started = Date.now();
  try {
    const { inputs, imageTemplate } = readInputs();
    const git = contextFromEnv(process.env, loadEventPayload(process.env));
    const dropIn = readDropIn(inputs);
    const decision =
      inputs.mode === 'merge'
        ? { push: true, reason: 'merge always pushes the indexes and tags' }
        : shouldPush(dropIn ? parsePushMode(dropIn.push) : inputs.push, git);
    core.info(`push: ${decision.push} (${decision.reason})`);
    const common = pipelineInputs(inputs, process.env, git, decision.push, imageTemplate);
    const pi = dropIn ? dropInPipeline(common, dropIn, git) : withBuildFileSecrets(common);
    const jobTag = [...inputs.variants].sort().join('+') || 'all';
    const platformTag = inputs.platforms.map((p) => p.replaceAll('/', '-')).join('+');
    let out: Outputs;
    if (inputs.mode === 'merge') {
      await mkdir(pi.workDir, { recursive: true });
      const dir = await mkdtemp(join(pi.workDir, 'partials-'));
      const files = await core.group('download partial digest maps', () => downloadPartials(inputs.partialPattern, dir, coreLogger));
      const r = await runMerge(pi, files, coreLogger);
      out = { digests: r.digests, metadata: r.digestMap, digestMapPath: r.digestMapPath, pushed: true };
    } else {
      const partialMap = inputs.distribute ? resolve(pi.workDir, `partial-${process.pid}.json`) : undefined;
      // The layer cache persists across workflow runs through the Actions cache.
      const keys = pi.cache ? await cacheKeys(resolve(pi.config), inputs.variants, inputs.platforms, git.sha) : undefined;
      const restored = keys ? await core.group('restore layer cache', () => restoreLayerCache(pi.workDir, keys, coreLogger)) : undefined;
      const r = await runPipeline({ ...pi, ...(partialMap ? { distribute: { partialMap } } : {}) }, coreLogger, progressForLog(coreLogger));
      if (keys) await core.group('save layer cache', () => saveLayerCache(pi.workDir, keys.key, restored, coreLogger));
      out = { digests: r.digests, metadata: r.digestMap, digestMapPath: r.digestMapPath, pushed: decision.push };
      if (dropIn) out.buildPush = buildPushOutputs(r);
      if (partialMap) {
        // The merge job finds these by pattern; the name differs for every job of the matrix.
        const name = `oci-build-partial-${git.job ?? 'job'}-${jobTag}${platformTag ? `-${platformTag}` : ''}`;
        const id = await uploadDigestMapArtifact(partialMap, name, inputs.artifactRetentionDays, { logger: coreLogger });
        if (id === undefined) core.warning("the partial digest map was not uploaded: a merge job will not find this job's images");
      }
      if (inputs.summary) {
        const rows: SummaryRow[] = r.variants.map((bv) => {
          const e = r.digestMap[bv.variant]!;
          // Layers this build made (or took from its cache) against those of the base or `from` variant.
          const own = r.layers.filter((l) => l.variant === bv.variant && l.origin !== 'base' && l.origin !== 'from').length;
          const total = bv.images.reduce((n, i) => n + i.layers.length, 0);
          return {
            variant: bv.variant,
            image: e.image,
            digest: e.digest,
            ref: e.ref,
            tags: e.tags,
            platforms: bv.images.map((i) => formatPlatform(i.platform)),
            size: e.size,
            layersPushed: own,
            layersReused: total - own,
            durationMs: Date.now() - started,
            pushed: e.pushed,
            ...(e.attestations ? { attestations: e.attestations } : {}),
          };
        });
        await writeSummary(renderSummary(rows, r.digestMap));
      }
    }
    if (out.digestMapPath && inputs.artifactName !== '') {
      const name =
        inputs.artifactName === 'auto' || !inputs.artifactName
          ? defaultArtifactName(
              inputs.variants,
              git,
              [inputs.mode === 'merge' ? 'merged' : '', platformTag].filter(Boolean).join('-') || undefined,
            )
          : inputs.artifactName;
      out.artifactId = await uploadDigestMapArtifact(out.digestMapPath, name, inputs.artifactRetentionDays, { logger: coreLogger });
    }
    setOutputs(out);
  } catch (err) {
    // The build ran in a child as root (sudo), which set the outputs: end with its exit code.
    if (err instanceof RanAsRoot) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError) {
      // One annotation per problem, pointing at the build file line.
      for (const p of err.problems) {
        core.error(`${p.field ? `${p.field}: ` : ''}${p.message}${p.hint ? ` (fix: ${p.hint})` : ''}`, {
          title: 'oci-build: build file',
          file: p.file,
          startLine: p.line,
          startColumn: p.column,
        });
      }
    }
    let message = (err as Error).message ?? String(err);
    const registryError = findRegistryError(err);
    const remedy = registryError ? explainRegistryError(registryError) : undefined;
    if (remedy) message += `\n${remedy}`;
    if (err instanceof MergeError) message = err.message;
    core.setFailed(message);
  }
}

/** Masks every line of a secret (or of the `secrets` input) with the runner: a key is printed a line at a time. */
function maskEachLine(text: string): void {
  for (const l of text.split('\n')) if (l.trim()) core.setSecret(l.trim());
}

/**
 * The `secrets`, `secret-files` and `secret-envs` inputs for a build file's RUN
 * --mount=type=secret steps (its Dockerfile variants), as in the drop-in mode; every line of
 * every value is masked before anything else is logged.
 */
function withBuildFileSecrets(pi: PipelineInputs): PipelineInputs {
  maskEachLine(core.getInput('secrets'));
  const secrets = secretsFromInputs({
    secrets: core.getInput('secrets'),
    secretFiles: core.getInput('secret-files'),
    secretEnvs: core.getInput('secret-envs'),
  });
  for (const v of secrets.values()) maskEachLine(v.toString('utf8'));
  return secrets.size ? { ...pi, secrets } : pi;
}

/** build-push-action's inputs when the action builds one Dockerfile (src/github/build-push-inputs.ts). */
function readDropIn(inputs: ActionInputs): BuildPushInputs | undefined {
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
  if (inputs.mode !== 'build' || !dropInWanted(core.getInput, workspace)) {
    if (isBuildxOutputs(core.getInput('outputs')))
      throw new Error(
        "input outputs: type=... is build-push-action's form, read only when building a Dockerfile (file or context); with a build file give oci:DIR, oci-archive:FILE or docker-archive:FILE",
      );
    return undefined;
  }
  // Masked before anything else is logged.
  maskEachLine(core.getInput('secrets'));
  const d = readBuildPushInputs(core.getInput, workspace);
  for (const v of d.secrets.values()) maskEachLine(v.toString('utf8'));
  core.info(`building ${d.file} (context ${d.context}) with docker/build-push-action's inputs`);
  for (const w of d.warnings) core.warning(w);
  return d;
}

function buildPushOutputs(r: Awaited<ReturnType<typeof runPipeline>>): Outputs['buildPush'] {
  const bv = r.variants[0];
  const e = bv ? r.digestMap[bv.variant] : undefined;
  if (!bv || !e) return undefined;
  const config = bv.images.length === 1 ? bv.images[0]!.configDescriptor.digest : undefined;
  return {
    digest: e.digest,
    imageid: config ?? e.digest,
    metadata: buildPushMetadata(e, config, { mediaType: bv.tagged.mediaType, digest: bv.tagged.digest, size: bv.tagged.size }),
  };
}

/** The registry error behind a publish or build failure, if any (for GHCR remedies). */
function findRegistryError(err: unknown): { status?: number; codes: string[]; message: string; registry: string } | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const r = e as { codes?: unknown; registry?: unknown; message?: unknown; status?: unknown };
    if (Array.isArray(r.codes) && typeof r.registry === 'string') {
      return {
        status: typeof r.status === 'number' ? r.status : undefined,
        codes: r.codes as string[],
        message: String(r.message),
        registry: r.registry,
      };
    }
  }
  return undefined;
}
