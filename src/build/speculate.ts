import type { CopyStep, Step } from '../config/model.js';
import type { LayerEntry } from '../layer/types.js';
import { ancestors, FsView, normalize } from './fsview.js';

/**
 * Speculative first layers. A cold build's base scan (download + inflate of the base, on one
 * core) and the compression of the first copy layer ran one after the other, although the
 * layer depends on the scan only through which parent directories it must create. So the
 * first copy step's entries are guessed with its destination's ancestors present in the base
 * (true for /usr/local/bin, /etc, /opt, ...; a new top-level directory such as /app is guessed
 * missing), and its layer is made while the scan runs. Once the scan is in, the real entries
 * are computed as always; the speculative layer is used only when they are the same entries
 * (its bytes are a function of them), else it is aborted and the layer is built again. A wrong
 * guess costs CPU, never correctness.
 */

/** Layers with less file data than this are not worth a guess. */
export const SPECULATE_BYTES = 4 << 20;

/** The file system the guess assumes: the destination's ancestors exist, nothing else. */
export function guessedFs(step: CopyStep): FsView {
  // A file copy's destination is the file, a directory copy's the directory: either way its
  // ancestors are the directories the base may or may not have.
  return FsView.fromListing(new Map(ancestors(normalize(step.to)).map((d) => [d, { type: 'dir' }])));
}

/** A step whose entries can be guessed before the scan: a copy from the context, no owner name. */
export function speculable(step: Step | undefined): step is CopyStep {
  return step?.kind === 'copy' && step.from === undefined && (step.owner === undefined || /^\d+(:\d+)?$/.test(step.owner.trim()));
}

export function fileBytes(entries: readonly LayerEntry[]): number {
  return entries.reduce((n, e) => n + (e.type === 'file' ? (e.size ?? 0) : 0), 0);
}

/** The same layer entries (everything the writer's output depends on), in any order. */
export function sameEntries(a: readonly LayerEntry[], b: readonly LayerEntry[]): boolean {
  if (a.length !== b.length) return false;
  const sig = (e: LayerEntry) => JSON.stringify([e.type, e.mode, e.uid, e.gid, e.size ?? null, e.linkname ?? null, e.hostPath ?? null]);
  const m = new Map(a.map((e) => [e.path, sig(e)]));
  return b.every((e) => m.get(e.path) === sig(e));
}
