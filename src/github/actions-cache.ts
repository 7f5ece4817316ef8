import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/** The part of @actions/cache used here (tests pass a fake). */
export interface CacheService {
  isFeatureAvailable(): boolean;
  restoreCache(paths: string[], key: string, restoreKeys?: string[]): Promise<string | undefined>;
  saveCache(paths: string[], key: string): Promise<number>;
}

/**
 * What is kept between workflow runs: layer blobs, the layer records, source-file hashes and
 * base scans, the key journal (what plan --explain compares with), and RUN --mount=type=cache directories. Not the extracted root file systems (large, and cheap to make again).
 */
export function cachePaths(workDir: string): string[] {
  return ['blobs/sha256', 'layers', 'files.idx', 'scans', 'keys', 'run-cache'].map((p) => join(workDir, p));
}

/**
 * Cache keys: the build file and what is built select the cache; the commit makes each run's
 * save new. Restore falls back to the newest cache of the same build file, then of any.
 */
export async function cacheKeys(
  configPath: string,
  variants: string[],
  platforms: string[],
  sha: string,
): Promise<{ key: string; restoreKeys: string[] }> {
  let text = '';
  try {
    text = await readFile(configPath, 'utf8');
  } catch {
    /* reported by the build */
  }
  const scope = createHash('sha256')
    .update(text)
    .update('\0')
    .update([...variants].sort().join(','))
    .update('\0')
    .update([...platforms].sort().join(','))
    .digest('hex')
    .slice(0, 16);
  const prefix = `oci-build-v1-${process.platform}-${process.arch}-`;
  return { key: `${prefix}${scope}-${sha || Date.now()}`, restoreKeys: [`${prefix}${scope}-`, prefix] };
}

async function service(): Promise<CacheService> {
  return (await import('@actions/cache')) as unknown as CacheService;
}

/** Restores the layer cache; never fails the build (a miss or an unavailable service only logs). */
export async function restoreLayerCache(
  workDir: string,
  keys: { key: string; restoreKeys: string[] },
  logger: Logger,
  svc?: CacheService,
): Promise<string | undefined> {
  try {
    const s = svc ?? (await service());
    if (!s.isFeatureAvailable()) {
      logger.info('layer cache: the Actions cache service is not available here; building with the local cache only');
      return undefined;
    }
    const hit = await s.restoreCache(cachePaths(workDir), keys.key, keys.restoreKeys);
    // undefined is a miss or a failure @actions/cache already warned about (it does not throw).
    logger.info(
      hit ? `layer cache: restored ${hit}` : 'layer cache: nothing restored (no cache for these keys yet, or see the warning above)',
    );
    return hit;
  } catch (e) {
    logger.warn(`layer cache: restore failed, building without it: ${(e as Error).message}`);
    return undefined;
  }
}

/** Saves the layer cache after a successful build; a failure is a warning. */
export async function saveLayerCache(
  workDir: string,
  key: string,
  restored: string | undefined,
  logger: Logger,
  svc?: CacheService,
): Promise<void> {
  if (restored === key) return; // this exact cache is already stored
  try {
    const s = svc ?? (await service());
    if (!s.isFeatureAvailable()) return;
    // @actions/cache reports most failures (a key another job is saving, the storage
    // unreachable) by logging them itself and returning -1 instead of throwing.
    const id = await s.saveCache(cachePaths(workDir), key);
    if (id === -1) logger.warn(`layer cache: not saved: the Actions cache did not take ${key} (see above); the next run builds without it`);
    else logger.info(`layer cache: saved ${key}`);
  } catch (e) {
    logger.warn(`layer cache: not saved: ${(e as Error).message}`);
  }
}
