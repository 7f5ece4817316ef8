import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CopyStep } from '../config/model.js';
import { isObject, writeAtomic } from './atomic.js';
import { type CachedLayer, hashKey, type LayerCache } from './layer-cache.js';

/**
 * A `copy: from:` (COPY --from) layer is keyed by the files it copies, and those exist only in
 * the source variant's root file system: computing the key means materializing that file system
 * (hundreds of MiB for a compiler image), even when the layer then comes from the cache. An alias
 * is a cheaper second key for the same layer: the source's layer diffIDs (which fix its files
 * exactly), the layers below the copy (which fix the directories it creates and the owners it
 * resolves), the platform and the step's own fields. It is recorded beside the content key when
 * that is computed the slow way; on a later build a hit skips the source's file system. A miss
 * falls back to the content key, so a rebuilt source with identical files still hits.
 */

/** What decides a copy-from layer without reading the source's files. */
export function copyFromAliasParts(
  step: CopyStep,
  at: { platform: string; below: readonly string[]; source: readonly string[] },
): Record<string, unknown> {
  // Every field of the step but where it is written: globs, destination, owner, mode, excludes,
  // parents, Docker's rules... (a field added later is part of the alias without a change here).
  const { pos: _pos, createdBy: _createdBy, ...fields } = step;
  return { copyFromAlias: 1, step: fields, platform: at.platform, below: [...at.below], source: [...at.source] };
}

interface AliasRecord {
  version: 1;
  alias: string;
  /** The content key's parts (hashKey of them is the key): the layer record and `plan --explain` use them. */
  parts: Record<string, unknown>;
}

function aliasPath(cache: LayerCache, alias: string): string {
  return join(cache.dir, 'aliases', `${alias}.json`);
}

/** Records `alias` for the layer under the content key `hashKey(parts)`. */
export async function putAlias(cache: LayerCache, alias: string, parts: Record<string, unknown>): Promise<void> {
  const rec: AliasRecord = { version: 1, alias, parts };
  await writeAtomic(aliasPath(cache, alias), `${JSON.stringify(rec)}\n`);
}

/** The layer an alias names, through its content key's record (so a lost blob is a miss), or undefined. */
export async function getAlias(
  cache: LayerCache,
  alias: string,
): Promise<{ layer: CachedLayer; parts: Record<string, unknown> } | undefined> {
  let rec: unknown;
  try {
    rec = JSON.parse(await readFile(aliasPath(cache, alias), 'utf8'));
  } catch {
    return undefined; // none yet, or unreadable: the content key decides
  }
  if (!isObject(rec) || rec.version !== 1 || rec.alias !== alias || !isObject(rec.parts)) return undefined;
  const parts = rec.parts as Record<string, unknown>;
  const layer = await cache.get(hashKey(parts));
  return layer ? { layer, parts } : undefined;
}
