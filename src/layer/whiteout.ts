import { posix } from 'node:path';

/**
 * The OCI layer whiteout rules, in one place: an entry `.wh.<name>` deletes `<name>` (and what is
 * below it) from the layers underneath; `.wh..wh..opq` hides a directory's lower content; other
 * `.wh..wh.` names are reserved and mean nothing.
 */
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

export type Whiteout =
  /** Deletes `path` from the lower layers. */
  | { kind: 'delete'; path: string }
  /** Hides the lower content of directory `dir` (entries of the same layer stay). */
  | { kind: 'opaque'; dir: string }
  /** A reserved `.wh..wh.` name: skipped. */
  | { kind: 'reserved' };

/**
 * What an entry's last name segment means as a whiteout, without joining any path (the extractor
 * checks the deleted name itself before it touches the file system); undefined for an ordinary name.
 */
export function whiteoutName(base: string): { kind: 'delete'; name: string } | { kind: 'opaque' } | { kind: 'reserved' } | undefined {
  if (!base.startsWith(WHITEOUT_PREFIX)) return undefined;
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return { kind: 'reserved' };
  return { kind: 'delete', name: base.slice(WHITEOUT_PREFIX.length) };
}

/** What the entry at normalized absolute image path `path` means as a whiteout; undefined for an ordinary entry. */
export function whiteoutOf(path: string): Whiteout | undefined {
  const w = whiteoutName(posix.basename(path));
  if (!w || w.kind === 'reserved') return w;
  const dir = posix.dirname(path);
  return w.kind === 'opaque' ? { kind: 'opaque', dir } : { kind: 'delete', path: posix.join(dir, w.name) };
}

/** The entry path that deletes `path` in a layer. */
export function whiteoutPath(path: string): string {
  return posix.join(posix.dirname(path), `${WHITEOUT_PREFIX}${posix.basename(path)}`);
}
