import './runtime.js';
import { parseSecretFlag } from './dockerfile/secrets.js';
import { parseArgs } from 'node:util';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { plan, runPipeline, type PipelineInputs } from './pipeline.js';
import { parseOutput } from './output/sinks.js';
import { describeStep, StepError } from './build/steps.js';
import { IoError, otherIoError } from './errors/io.js';
import { ConfigError, type VariantSpec } from './config/model.js';
import { runMerge, MergeError } from './distribute/merge.js';
import { contextFromEnv, loadEventPayload } from './github/context.js';
import { parseReference, formatRepository } from './oci/reference.js';
import { formatPlatform } from './oci/platform.js';
import type { Credentials } from './registry/credentials.js';
import { parseProvenance, parseSbom } from './attest/options.js';
import type { Logger } from './log.js';
import { RanAsRoot } from './run/privilege.js';
import { parseCacheRegistry } from './cache/registry-cache.js';
import { PULL_USAGE, pullCommand } from './pull/command.js';
import { loggerThrough, progressFor } from './progress/index.js';
import { explain } from './plan/explain.js';
import { PrereqError } from './plan/prereq.js';
import { formatExplained } from './plan/explain-why.js';
import { DOCKERFILE_USAGE, dockerfileCommand } from './export/command.js';

const USAGE = `oci-build: build OCI images for a matrix of variants without a Docker daemon

Usage:
  oci-build build --config FILE [--variant V]... [--push] [--tag T]... [--output oci:DIR|docker-archive:FILE]...
                  [--digest-map FILE] [--platform os/arch[,...]]... [--cache-dir DIR] [--no-cache] [--cache-registry auto|false|REF] [--gzip-level N] [--compression gzip|zstd] [--zstd-level N]
                  [--isolation runc|chroot] [--provenance true|false|mode=max] [--sbom true|false] [--verbose]
  oci-build plan  --config FILE [--variant V]... [--tag T]... [--explain [--json]]   --explain: cached or rebuilt, and why, per layer
  build and plan also take: [--target V] [--base [VARIANT=]REF]... [--rebuild-from VARIANT[:STEP]]
  oci-build build -f|--file Dockerfile [--build-arg K=V]... [--target STAGE] [-t REPO[:TAG]]... [--secret id=ID,src=FILE|env=VAR]... [--push] [CONTEXT]
                  build a Dockerfile's target stage (CONTEXT defaults to the Dockerfile's directory)
  oci-build build ... --push --distribute PARTIAL.json   one job of a distributed build (per platform or component)
  oci-build merge --config FILE --partial PARTIAL.json... [--tag T]... [--digest-map FILE]
                  assemble the indexes from the jobs' manifests, tag once, write the combined digest map
${PULL_USAGE}
${DOCKERFILE_USAGE}

Credentials come from ~/.docker/config.json (or $DOCKER_CONFIG), and from
OCI_BUILD_REGISTRY, OCI_BUILD_USERNAME and OCI_BUILD_PASSWORD for one registry host.
--cache-registry: the layer cache's records in the registry (auto: tag buildcache in each pushed repository,
read when pushing; REF: one repository[:tag] for all; false: off).
SOURCE_DATE_EPOCH sets the timestamps in layers and configs (default: 0).
Exit codes: 0 success, 1 build or push failure, 2 bad usage or build file.`;

function stderrLogger(verbose: boolean): Logger {
  return {
    info: (m) => process.stderr.write(`${m}\n`),
    warn: (m) => process.stderr.write(`warning: ${m}\n`),
    debug: (m) => {
      if (verbose) process.stderr.write(`debug: ${m}\n`);
    },
    group: async (_name, fn) => fn(),
  };
}

function sourceDateEpoch(env: NodeJS.ProcessEnv): number | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`SOURCE_DATE_EPOCH must be a whole number of seconds, got "${v}"`);
  return Number(v);
}

class UsageError extends Error {}

/** --build-arg K=V (a bare K takes the value from the environment, as docker build does). */
function buildArgs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    if (eq === 0) throw new UsageError(`--build-arg "${a}" has no name`);
    if (eq < 0) {
      const v = process.env[a];
      if (v !== undefined) out[a] = v;
    } else out[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  if (command === 'pull') return await pullCommand(rest, process.env, USAGE);
  if (command === 'dockerfile') return await dockerfileCommand(rest, process.env, USAGE);
  // `oci-build build --help` (any subcommand, anywhere in its arguments) is a request for help, not an unknown option.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // biome-ignore lint/suspicious/noImplicitAnyLet: typed by the assignment from parseArgs below, whose option types TypeScript infers
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string', short: 'c', default: 'oci-build.yml' },
        variant: { type: 'string', multiple: true, default: [] },
        push: { type: 'boolean', default: false },
        tag: { type: 'string', short: 't', multiple: true, default: [] },
        output: { type: 'string', short: 'o', multiple: true, default: [] },
        'digest-map': { type: 'string' },
        platform: { type: 'string', multiple: true, default: [] },
        'cache-dir': { type: 'string' },
        'gzip-level': { type: 'string', default: '1' },
        compression: { type: 'string', default: 'gzip' },
        'zstd-level': { type: 'string' },
        isolation: { type: 'string' },
        verbose: { type: 'boolean', short: 'v', default: false },
        'no-cache': { type: 'boolean', default: false },
        'cache-registry': { type: 'string', default: 'auto' },
        distribute: { type: 'string' },
        partial: { type: 'string', multiple: true, default: [] },
        provenance: { type: 'string', default: 'true' },
        sbom: { type: 'string', default: 'true' },
        explain: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        target: { type: 'string' },
        base: { type: 'string', multiple: true, default: [] },
        'rebuild-from': { type: 'string' },
        file: { type: 'string', short: 'f' },
        'build-arg': { type: 'string', multiple: true, default: [] },
        secret: { type: 'string', multiple: true, default: [] },
      },
      strict: true,
      allowPositionals: true,
    }));
  } catch (err) {
    process.stderr.write(`oci-build: ${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const logger = stderrLogger(values.verbose ?? false);
  let workDir = '';
  try {
    const level = Number(values['gzip-level']);
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new UsageError(`--gzip-level must be 0-9, got "${values['gzip-level']}"`);
    const compression = values.compression;
    if (compression !== 'gzip' && compression !== 'zstd') throw new UsageError(`--compression must be gzip or zstd, got "${compression}"`);
    const zstdLevel = values['zstd-level'] === undefined ? undefined : Number(values['zstd-level']);
    if (zstdLevel !== undefined && (!Number.isInteger(zstdLevel) || zstdLevel < 1 || zstdLevel > 19))
      throw new UsageError(`--zstd-level must be 1-19, got "${values['zstd-level']}"`);
    const isolation = values.isolation ?? 'auto';
    if (isolation !== 'auto' && isolation !== 'runc' && isolation !== 'chroot')
      throw new UsageError(`--isolation must be runc or chroot (default: runc when installed, else chroot), got "${isolation}"`);
    const credentials: Record<string, Credentials> = {};
    const env = process.env;
    if (env.OCI_BUILD_REGISTRY && env.OCI_BUILD_USERNAME && env.OCI_BUILD_PASSWORD) {
      credentials[env.OCI_BUILD_REGISTRY] = { username: env.OCI_BUILD_USERNAME, password: env.OCI_BUILD_PASSWORD };
    }
    const inputs: PipelineInputs = {
      config: values.config ?? 'oci-build.yml',
      variants: (values.variant ?? [])
        .flatMap((v) => v.split(','))
        .map((v) => v.trim())
        .filter(Boolean),
      push: values.push ?? false,
      tags: values.tag ?? [],
      outputs: (values.output ?? []).map((o) => {
        try {
          return parseOutput(o);
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
      }),
      digestMap: values['digest-map'],
      credentials,
      dockerConfig: true,
      platforms: (values.platform ?? [])
        .flatMap((x) => x.split(','))
        .map((x) => x.trim())
        .filter(Boolean),
      sourceDateEpoch: sourceDateEpoch(env),
      gzipLevel: level,
      compression,
      ...(zstdLevel !== undefined ? { zstdLevel } : {}),
      cache: !values['no-cache'],
      cacheRegistry: (() => {
        try {
          return parseCacheRegistry(values['cache-registry'] ?? 'auto');
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
      })(),
      isolation,
      workDir: values['cache-dir'] ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'oci-build'),
      env,
      git: contextFromEnv(env, loadEventPayload(env)),
      ...(values.distribute ? { distribute: { partialMap: values.distribute } } : {}),
      provenance: (() => {
        try {
          return parseProvenance(values.provenance ?? 'true');
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
      })(),
      sbom: (() => {
        try {
          return parseSbom(values.sbom ?? 'true');
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
      })(),
      // With -f, --target names the Dockerfile's stage (given to the Dockerfile front end below).
      ...(values.target && !values.file ? { target: values.target } : {}),
      base: values.base ?? [],
      ...(values['rebuild-from'] ? { rebuildFrom: values['rebuild-from'] } : {}),
    };
    if (positionals.length > (values.file ? 1 : 0))
      throw new UsageError(
        `unexpected argument "${positionals[values.file ? 1 : 0]}"${values.file ? '' : ' (a build context needs -f Dockerfile)'}`,
      );
    try {
      inputs.secrets = new Map((values.secret ?? []).map((spec) => parseSecretFlag(spec)));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (values.file) {
      // docker build's -t takes whole references: they name the target's image and tags.
      inputs.dockerfile = {
        file: values.file,
        ...(positionals[0] ? { context: positionals[0] } : {}),
        buildArgs: buildArgs(values['build-arg'] ?? []),
        ...(values.target ? { target: values.target } : {}),
        refs: inputs.tags,
        secretIds: [...inputs.secrets.keys()],
        note: (m) => logger.info(m),
      };
      inputs.tags = [];
    }
    workDir = resolve(inputs.workDir);
    if (command === 'merge') {
      const result = await runMerge({ ...inputs, push: true }, values.partial ?? [], logger);
      process.stdout.write(`${JSON.stringify(result.digestMap, null, 2)}\n`);
      return 0;
    }
    if (command === 'plan' && values.explain) {
      const x = await explain(inputs);
      process.stdout.write(values.json ? `${JSON.stringify(x, null, 2)}\n` : formatExplained(x));
      return 0;
    }
    if (command === 'plan') {
      process.stdout.write(await formatPlan(inputs));
      return 0;
    }
    if (command !== 'build') throw new UsageError(`unknown command "${command}"`);
    // Live progress on a terminal, a line per finished transfer otherwise; log lines go through it.
    const progress = progressFor(process.stderr, env);
    const result = await runPipeline(inputs, loggerThrough(progress, values.verbose ?? false), progress).finally(() => progress.stop());
    // --verbose: the digest map, where every layer came from and what the SBOM read, for scripts and tests.
    const shown = values.verbose
      ? { digestMap: result.digestMap, layers: result.layers, ...(result.sbom ? { sbom: result.sbom } : {}), rootfs: result.rootfs }
      : result.digestMap;
    process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    return 0;
  } catch (err) {
    // The build ran in a child as root (sudo): its exit code is this run's.
    if (err instanceof RanAsRoot) return err.exitCode;
    if (err instanceof ConfigError || err instanceof MergeError || err instanceof PrereqError) {
      process.stderr.write(`oci-build: ${err.message}\n`);
      return 2;
    }
    // A system error from elsewhere (ENOSPC fetching a base into the cache) gets its path and fix.
    const io = workDir && !(err instanceof IoError) ? otherIoError(err, workDir) : err;
    // Bad input found while building (an unreadable or special source file) is bad input too.
    if (io instanceof IoError || io instanceof StepError) {
      process.stderr.write(`oci-build: ${io.message}\n`);
      return io instanceof IoError ? io.exitCode : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`oci-build: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    process.stderr.write(`oci-build: error: ${(err as Error).message ?? err}\n`);
    if (values.verbose && (err as Error).stack) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

/** What `build` would do, without network or writes: variants, bases, steps (one layer each), settings. */
async function formatPlan(inputs: PipelineInputs): Promise<string> {
  const p = await plan(inputs);
  const lines: string[] = [`build file: ${p.buildFile.file}`];
  for (const v of p.variants) {
    const image = v.image ? formatRepository(parseReference(v.image, { repositoryOnly: true })) : '(none: not pushable)';
    lines.push(
      '',
      `variant ${v.name}`,
      `  image: ${image}`,
      `  ${v.from ? `from: ${v.from}` : `base: ${v.base}${p.baseOverridden.has(v.name) ? ` (--base; the build file says ${p.baseOverridden.get(v.name)})` : ''}`}`,
      `  platforms: ${(p.platforms.get(v.name) ?? []).map(formatPlatform).join(', ')}${p.asIndex.has(v.name) ? ' (an OCI index)' : ''}`,
    );
    const tags = p.tags.get(v.name) ?? [];
    if (tags.length) lines.push(`  tags: ${tags.join(', ')}`);
    v.steps.forEach((s, i) => {
      const extra = [
        s.kind === 'copy' && s.from === undefined ? `${s.sources.reduce((n, src) => n + src.matches.length, 0)} source path(s)` : '',
        'mode' in s && s.mode !== undefined ? `mode ${s.mode.toString(8).padStart(4, '0')}` : '',
        'owner' in s && s.owner ? `owner ${s.owner}` : '',
      ]
        .filter(Boolean)
        .join(', ');
      lines.push(`  layer ${i + 1}: ${describeStep(s)}${extra ? ` (${extra})` : ''}`);
    });
    if (v.entrypoint) lines.push(`  entrypoint: ${JSON.stringify(v.entrypoint)}`);
    if (v.cmd) lines.push(`  cmd: ${JSON.stringify(v.cmd)}`);
    if (Object.keys(v.env).length)
      lines.push(
        `  env: ${Object.entries(v.env)
          .map(([k, x]) => `${k}=${x}`)
          .join(' ')}`,
      );
    if (v.user) lines.push(`  user: ${v.user}`);
    if (v.workdir) lines.push(`  workdir: ${v.workdir}`);
    if (v.fixedPlatform) lines.push(`  built for ${v.fixedPlatform} only (FROM --platform), whatever platform uses it`);
    lines.push(...perPlatformLines(v));
  }
  return `${lines.join('\n')}\n`;
}

/** Where a variant differs per platform (a Dockerfile converted per platform): each such platform's start and layers. */
function perPlatformLines(v: VariantSpec): string[] {
  return Object.entries(v.perPlatform ?? {}).flatMap(([platform, own]) => [
    `  for ${platform}: ${own.from ? `from: ${own.from}` : `base: ${own.base}`}`,
    ...own.steps.map((s, i) => `    layer ${i + 1}: ${describeStep(s)}`),
  ]);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`oci-build: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
