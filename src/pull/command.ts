import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePlatform } from '../oci/platform.js';
import { parseOutput, type OutputSpec } from '../output/sinks.js';
import type { Credentials } from '../registry/credentials.js';
import { loggerThrough, progressFor } from '../progress/index.js';
import { PullError, PullUsageError } from './errors.js';
import { runPull } from './pull.js';
import type { PlatformChoice } from './resolve.js';
import { targetFromReference, targetsFromDigestMap } from './targets.js';

export const PULL_USAGE = `  oci-build pull REF|--digest-map FILE [--variant V]... --output oci:DIR|oci-archive:FILE|docker-archive:FILE...
                  [--platform os/arch|all] [--cache-dir DIR] [--verbose]
                  fetch images (by digest from a digest map), verified, into an OCI layout or an archive`;

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      'digest-map': { type: 'string' },
      variant: { type: 'string', multiple: true, default: [] },
      output: { type: 'string', short: 'o', multiple: true, default: [] },
      platform: { type: 'string' },
      'cache-dir': { type: 'string' },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

/** `oci-build pull`: returns the exit code (0 done, 1 the pull failed, 2 bad usage). */
export async function pullCommand(args: string[], env: NodeJS.ProcessEnv, usage: string): Promise<number> {
  const bad = (msg: string) => {
    process.stderr.write(`oci-build: ${msg}\n\n${usage}\n`);
    return 2;
  };
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (e) {
    return bad((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const variants = values.variant
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  if ((positionals.length === 1) === (values['digest-map'] !== undefined) || positionals.length > 1)
    return bad('pull takes one image reference, or --digest-map FILE');
  if (variants.length && !values['digest-map']) return bad('--variant picks variants of a --digest-map');
  if (!values.output.length) return bad('pull needs --output (oci:DIR, oci-archive:FILE or docker-archive:FILE)');
  let outputs: OutputSpec[];
  let platform: PlatformChoice;
  try {
    outputs = values.output.map(parseOutput);
    platform = values.platform === 'all' ? 'all' : values.platform ? parsePlatform(values.platform) : undefined;
  } catch (e) {
    return bad((e as Error).message);
  }
  const progress = progressFor(process.stderr, env);
  const logger = loggerThrough(progress, values.verbose);
  try {
    const targets = values['digest-map']
      ? await targetsFromDigestMap(values['digest-map'], variants)
      : [targetFromReference(positionals[0]!)];
    const { entries } = await runPull(
      {
        targets,
        outputs,
        platform,
        credentials: credentialsFromEnv(env),
        workDir: values['cache-dir'] ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'oci-build'),
      },
      logger,
      progress,
    );
    progress.stop();
    process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
    return 0;
  } catch (err) {
    progress.stop();
    if (err instanceof PullUsageError) return bad(err.message);
    const shown = err instanceof PullError ? err.message : `pull failed: ${(err as Error).message ?? err}`;
    process.stderr.write(`oci-build: error: ${shown}\n`);
    if (values.verbose && (err as Error).stack) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

/** OCI_BUILD_REGISTRY / _USERNAME / _PASSWORD, as for build (the Docker config is read too). */
function credentialsFromEnv(env: NodeJS.ProcessEnv): Record<string, Credentials> {
  if (!env.OCI_BUILD_REGISTRY || !env.OCI_BUILD_USERNAME || !env.OCI_BUILD_PASSWORD) return {};
  return { [env.OCI_BUILD_REGISTRY]: { username: env.OCI_BUILD_USERNAME, password: env.OCI_BUILD_PASSWORD } };
}
