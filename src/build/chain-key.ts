import type { CopyStep, DirStep, FileStep } from '../config/model.js';
import { type KeyEntry, type LayerKeyOptions, stepKeyParts } from '../cache/layer-cache.js';
import type { LayerEntry } from '../layer/types.js';
import type { Digest } from '../oci/digest.js';

/**
 * A second key for a copy, file or dir layer that needs no file system below it: the diffIDs of
 * every layer below (which fix that file system, its directories and its users exactly), the
 * platform, and the step's probe (src/build/step-probe.ts: its entries on an empty file system,
 * with every file's content hash). The real entries are settle(probe, file system below), so
 * equal chain keys give equal layers. A fresh runner computes it from the base's config and the
 * registry record alone, without downloading the base; the content key (which a changed base
 * with the same directories still hits) is the fallback on a miss.
 *
 * Bump CHAIN_KEY_FORMAT when step-probe's settle rules or stepEntries' treatment of the file
 * system below change: every chain key changes, so none made by the old rules is reused.
 */
export const CHAIN_KEY_FORMAT = 1;

export function chainKeyParts(
  step: CopyStep | FileStep | DirStep,
  probe: readonly LayerEntry[],
  contentOf: (e: LayerEntry) => Digest | undefined,
  at: { platform: string; below: readonly string[] },
  opts: LayerKeyOptions,
): Record<string, unknown> {
  const entries: KeyEntry[] = probe.map((e) => {
    if (e.type !== 'file') return e;
    const contentHash = contentOf(e);
    return contentHash ? { ...e, contentHash } : e;
  });
  return { chainKey: CHAIN_KEY_FORMAT, platform: at.platform, below: [...at.below], probe: stepKeyParts(step, entries, opts) };
}

/** The content hashes a layer's key parts name, by image path (stepKeyParts' `entries`). */
export function contentsOf(keyParts: Record<string, unknown> | undefined): Map<string, Digest> {
  const out = new Map<string, Digest>();
  const list = keyParts?.entries;
  if (!Array.isArray(list)) return out;
  for (const e of list as { path?: unknown; content?: unknown }[])
    if (typeof e.path === 'string' && typeof e.content === 'string') out.set(e.path, e.content as Digest);
  return out;
}
