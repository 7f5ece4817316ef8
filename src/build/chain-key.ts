import { createHash } from 'node:crypto';
import type { CopyStep, DirStep, FileStep } from '../config/model.js';
import { canonicalJson, type LayerKeyOptions, stepKeyParts } from '../cache/layer-cache.js';
import type { LayerEntry } from '../layer/types.js';
import type { Digest } from '../oci/digest.js';

/**
 * A second key for a copy, file or dir layer that needs no file system below it: the diffIDs of
 * every layer below (which fix that file system, its directories and its users exactly), the
 * platform, the step, and the step's probe (src/build/step-probe.ts: its entries on an empty
 * file system, with every file's content hash). The real entries are settle(probe, file system
 * below), so equal chain keys give equal layers. A fresh runner computes it from the base's
 * config and the registry record alone, without downloading the base; the content key (which a
 * changed base with the same directories still hits) is the fallback on a miss.
 *
 * The probe is hashed as a stream of one line per entry in its own (the walk's, sorted) order:
 * a canonical JSON of 100,000 entries costs a second, these lines a tenth of that.
 *
 * Bump CHAIN_KEY_FORMAT when step-probe's settle rules or stepEntries' treatment of the file
 * system below change: every chain key changes, so none made by the old rules is reused.
 */
export const CHAIN_KEY_FORMAT = 1;

/** The chain key (hex), or undefined when a copied file's content hash is not known. */
export function chainKey(
  step: CopyStep | FileStep | DirStep,
  probe: readonly LayerEntry[],
  contentOf: (e: LayerEntry) => Digest | undefined,
  at: { platform: string; below: readonly string[] },
  opts: LayerKeyOptions,
): string | undefined {
  // The step's fields, compression and timestamp as its content key has them (no entries).
  const head = { platform: at.platform, below: [...at.below], ...stepKeyParts(step, [], opts) };
  const h = createHash('sha256').update(`oci-build/chain-key/v${CHAIN_KEY_FORMAT}\n${canonicalJson(head)}\n`);
  let pending = '';
  for (const e of probe) {
    let content = '';
    if (e.type === 'file') {
      const known = contentOf(e);
      // A file step's one file is its content, hashed in the step's fields.
      if (!known && !(step.kind === 'file' && !e.hostPath)) return undefined;
      content = known ?? '';
    }
    if (e.xattrs && Object.keys(e.xattrs).length) return undefined; // not from a probe; keyed by content only
    pending += `${JSON.stringify(e.path)}\0${e.type}\0${e.mode & 0o7777}\0${e.uid}\0${e.gid}\0${e.size ?? ''}\0${JSON.stringify(e.linkname ?? '')}\0${content}\n`;
    if (pending.length >= 1 << 16) {
      h.update(pending);
      pending = '';
    }
  }
  return h.update(pending).digest('hex');
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
