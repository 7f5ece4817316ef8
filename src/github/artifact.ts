import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import type { GitContext } from '../github/context.js';
import type { Logger } from '../log.js';

/** The part of @actions/artifact's client used here (tests pass a fake). */
export interface ArtifactClientLike {
  uploadArtifact(
    name: string,
    files: string[],
    rootDirectory: string,
    options?: { retentionDays?: number },
  ): Promise<{ id?: number; size?: number }>;
}

export interface ArtifactDeps {
  /** Defaults to @actions/artifact's DefaultArtifactClient, after checking the service is there. */
  client?: ArtifactClientLike;
  /** The project's logger: the action passes its @actions/core one, the core never calls @actions/core. */
  logger: Pick<Logger, 'info' | 'warn'>;
  /** Defaults to process.env; read for ACTIONS_RUNTIME_TOKEN / ACTIONS_RESULTS_URL. */
  env?: Record<string, string | undefined>;
}

/** Characters @actions/artifact refuses in a name (NTFS and path separators). */
const INVALID_NAME = /[":<>|*?\r\n\\/]/;

/**
 * Uploads the digest map file as a workflow artifact, for a later job (e.g. one merging the
 * maps of a matrix) to download. Returns the artifact id, or undefined: when `name` is empty
 * (disabled), or, with a warning and never an exception, when the artifact service is missing
 * (off GitHub, or ACTIONS_RUNTIME_TOKEN / ACTIONS_RESULTS_URL not passed to the step), on GHES,
 * or when the upload fails. A missing artifact never fails a build that pushed its images.
 */
export async function uploadDigestMapArtifact(
  file: string,
  name: string,
  retentionDays: number | undefined,
  deps: ArtifactDeps,
): Promise<number | undefined> {
  const logger = deps.logger;
  const env = deps.env ?? process.env;
  if (!name) return undefined;
  const skip = (why: string) => {
    logger.warn(`digest map artifact "${name}" not uploaded: ${why}`);
    return undefined;
  };
  if (INVALID_NAME.test(name)) return skip('the name may not contain " : < > | * ? \\ / or line breaks (choose another artifact name)');
  let retention = retentionDays;
  if (retention !== undefined && (!Number.isInteger(retention) || retention < 0 || retention > 90)) {
    logger.warn(`artifact retention of ${retention} days is not a whole number from 1 to 90; using the repository default`);
    retention = undefined;
  }
  if (retention === 0) retention = undefined;
  const path = resolve(file);
  try {
    const st = await stat(path);
    if (!st.isFile()) return skip(`${path} is not a file`);
  } catch {
    return skip(`${path} does not exist (was the digest map written?)`);
  }
  let client = deps.client;
  if (!client) {
    const missing = ['ACTIONS_RUNTIME_TOKEN', 'ACTIONS_RESULTS_URL'].filter((k) => !env[k]);
    if (missing.length) {
      return skip(
        `the artifact service is not available here (${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set: this is not a GitHub Actions job step, or a wrapper did not pass them on)`,
      );
    }
    try {
      const { DefaultArtifactClient } = await import('@actions/artifact');
      client = new DefaultArtifactClient();
    } catch (e) {
      return skip(`@actions/artifact could not be loaded: ${(e as Error).message}`);
    }
  }
  try {
    const res = await client.uploadArtifact(name, [path], dirname(path), retention === undefined ? {} : { retentionDays: retention });
    if (res.id === undefined) return skip('the artifact service returned no artifact id');
    logger.info(
      `digest map artifact "${name}" uploaded (${basename(path)}, id ${res.id}${res.size !== undefined ? `, ${res.size} bytes` : ''})`,
    );
    return res.id;
  } catch (e) {
    const msg = (e as Error)?.message ?? String(e);
    const hint = /conflict|already exists/i.test(msg)
      ? ' (another job of this run already uploaded an artifact with this name: give each matrix job its own name)'
      : '';
    return skip(`${msg}${hint}`);
  }
}

/** Longest default name; longer ones are cut and get a hash of the whole. */
export const MAX_ARTIFACT_NAME = 100;

/**
 * A default artifact name that differs between the jobs of one run: `digest-map-<job>-<variants>`
 * with the variants sorted and joined by `+` (`all` when every variant is built), plus `extra`
 * (e.g. the platform, for a matrix over platforms building the same variants). Characters
 * artifacts refuse become `-`. Names over {@link MAX_ARTIFACT_NAME} characters keep their start and
 * end in an 8-hex-digit SHA-256 of the full name, so they stay distinct. A later job can download
 * them all with `pattern: digest-map-*` and `merge-multiple: true`. (The run attempt is not part of
 * the name: a re-run replaces its own job's artifact.)
 */
export function defaultArtifactName(variants: readonly string[], ctx: Pick<GitContext, 'job'>, extra?: string): string {
  const set = [...new Set(variants.map((v) => v.trim()).filter(Boolean))].sort();
  const parts = ['digest-map', ctx.job, set.length ? set.join('+') : 'all', extra].filter((p): p is string => !!p);
  const full = parts.join('-').replace(/[":<>|*?\r\n\\/\s]+/g, '-');
  if (full.length <= MAX_ARTIFACT_NAME) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  return `${full.slice(0, MAX_ARTIFACT_NAME - hash.length - 1).replace(/[-+]+$/, '')}-${hash}`;
}
