import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { decompressedChunks } from '../layer/decompress.js';
import { whiteoutName } from '../layer/whiteout.js';
import { RootfsError, RootResolver, segmentsOf } from './rootpath.js';
import { readTar, type TarHeader } from '../layer/tarstream.js';
import { carriedOnly, writeXattrs, type Xattrs } from './xattrs.js';

/**
 * Applies a layer (gzip, zstd or plain tar) to a root file system directory, as root, with the
 * OCI changeset rules: whiteouts (`.wh.name`) delete from lower layers, opaque markers
 * (`.wh..wh..opq`) empty a directory's lower content, a directory over a directory keeps its
 * children, anything else replaces what was there. Owners, modes (setuid/setgid/sticky included),
 * symlinks and hardlinks are preserved; device nodes and FIFOs are skipped with a note.
 * Extended attributes (pax `SCHILY.xattr.*`: file capabilities, user.*, trusted.*) are set once
 * the whole layer is on disk, with one setfattr (chown clears security.capability, and a
 * later entry may replace the path).
 *
 * Safety (layers are untrusted input):
 * - an entry, hardlink target or whiteout with a `..` segment is refused: the build fails
 *   (RootfsError) — Docker refuses these too ("breakout");
 * - a leading `/` is dropped (every tar tool does this): `/x` is `<root>/x`;
 * - parent directories are resolved inside the root like a chrooted process would (RootResolver):
 *   a symlink planted by an earlier entry or layer (`evil -> /`, `evil -> ../..`) leads back
 *   into the root, never out of it — those entries are sanitized, not refused;
 * - the last segment is never followed: an existing symlink there is replaced, files are
 *   created with O_EXCL|O_NOFOLLOW, hardlinks link the target inode inside the root (a
 *   hardlink target that does not exist in the root fails the build).
 */

export interface ExtractOptions {
  /** For messages, e.g. "base layer 2 of 5 (sha256:…)". */
  label: string;
  /** Things skipped on purpose (device nodes, FIFOs); logged at debug level. */
  note?: (message: string) => void;
}

export interface ExtractStats {
  entries: number;
  skipped: number;
}

function exists(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Sets the layer's extended attributes on the paths as they stand now: each must still exist
 * with real directories (no symlink) above it, so nothing outside the root is touched.
 */
function applyXattrs(root: string, pending: Map<string, Xattrs>, label: string): void {
  const items: { host: string; xattrs: Xattrs }[] = [];
  for (const [path, xattrs] of pending) {
    let host = root;
    let ok = true;
    const segs = segmentsOf(path);
    for (const [i, seg] of segs.entries()) {
      host = join(host, seg);
      const st = exists(host);
      if (!st || st.isSymbolicLink() || (i < segs.length - 1 && !st.isDirectory())) {
        ok = false;
        break;
      }
    }
    if (ok) items.push({ host, xattrs });
  }
  try {
    writeXattrs(items, label);
  } catch (err) {
    throw new RootfsError((err as Error).message);
  }
}

/** Image path segments of a tar name; refuses `..` (so nothing can climb out of the root). */
export function entrySegments(name: string, what: string): string[] {
  if (name.includes('\0')) throw new RootfsError(`${what} "${name}" contains a NUL byte`);
  const segs = segmentsOf(name);
  if (segs.includes('..'))
    throw new RootfsError(
      `${what} "${name}" has a ".." segment that would lead outside the root file system; refusing to extract this layer`,
    );
  return segs;
}

export async function extractLayer(root: string, src: Readable, opts: ExtractOptions): Promise<ExtractStats> {
  const r = new RootResolver(root);
  /** Image paths this layer wrote (a whiteout or opaque marker only hides lower layers). */
  const written = new Set<string>();
  /** Image path -> attributes to set when the layer is done (the last entry for a path wins). */
  const pendingXattrs = new Map<string, Xattrs>();
  const stats: ExtractStats = { entries: 0, skipped: 0 };
  const fail = (name: string, err: unknown): never => {
    const msg = err instanceof Error ? err.message : String(err);
    throw new RootfsError(`${opts.label}: entry "${name}": ${msg}`);
  };

  const remove = (host: string, st: Stats) => {
    rmSync(host, { recursive: st.isDirectory(), force: true });
    if (st.isDirectory() || st.isSymbolicLink()) r.invalidate();
  };

  /** Removes children of dir (recursively) that this layer did not write. */
  const opaque = (dirHost: string, dirPath: string) => {
    for (const name of readdirSync(dirHost)) {
      const p = dirPath === '/' ? `/${name}` : `${dirPath}/${name}`;
      const host = join(dirHost, name);
      const st = lstatSync(host);
      if (!written.has(p)) remove(host, st);
      else if (st.isDirectory()) opaque(host, p);
    }
  };

  try {
    for await (const item of readTar(decompressedChunks(src))) await entry(item.header, item.body);
  } catch (err) {
    if (err instanceof RootfsError) throw err;
    throw new RootfsError(`${opts.label}: ${(err as Error).message ?? String(err)}`);
  }
  applyXattrs(root, pendingXattrs, opts.label);
  return stats;

  async function entry(header: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    stats.entries++;
    let segs: string[];
    try {
      segs = entrySegments(header.name, 'entry');
    } catch (err) {
      throw new RootfsError(`${opts.label}: ${(err as Error).message}`);
    }
    if (segs.length === 0) return; // the root itself ("./"): its metadata is not applied
    const base = segs[segs.length - 1]!;
    const parentSegs = segs.slice(0, -1);
    const path = `/${segs.join('/')}`;
    const parentPath = `/${parentSegs.join('/')}`;
    let fd: number | undefined;
    try {
      const whiteout = whiteoutName(base);
      if (whiteout) {
        if (whiteout.kind === 'opaque') {
          const dirHost = r.dir(parentSegs, true)!;
          opaque(dirHost, parentPath);
        } else if (whiteout.kind === 'delete') {
          const name = whiteout.name;
          if (name === '' || name === '.' || name === '..')
            throw new RootfsError(`whiteout "${base}" names no valid file; refusing to extract this layer`);
          const target = posix.join(parentPath, name);
          let dirHost: string | undefined;
          try {
            dirHost = r.dir(parentSegs, false);
          } catch (err) {
            if (!(err instanceof RootfsError)) throw err;
            dirHost = undefined; // under a file: nothing to delete
          }
          if (dirHost !== undefined && !written.has(target)) {
            const host = join(dirHost, name);
            const st = exists(host);
            if (st) remove(host, st);
          }
        }
        return;
      }
      fd = applyEntry(header, path, parentSegs, base);
      written.add(path);
      const x = header.type === 'file' || header.type === 'dir' || header.type === 'hardlink' ? carriedOnly(header.xattrs) : undefined;
      if (x) pendingXattrs.set(path, x);
      else pendingXattrs.delete(path);
    } catch (err) {
      if (err instanceof RootfsError && err.message.startsWith(opts.label)) throw err;
      fail(header.name, err);
    }
    if (fd !== undefined) {
      try {
        await writeBody(header, fd, body);
      } catch (err) {
        fail(header.name, err);
      }
    }
  }

  /** Creates the entry; for a regular file, returns the open descriptor its content goes to. */
  function applyEntry(h: TarHeader, path: string, parentSegs: string[], base: string): number | undefined {
    if (h.type === 'char' || h.type === 'block' || h.type === 'fifo' || h.type === 'other') {
      stats.skipped++;
      opts.note?.(
        `${opts.label}: skipped ${h.type === 'other' ? `unsupported entry (${h.rawType})` : h.type === 'fifo' ? 'FIFO' : 'device node'} ${path}`,
      );
      return undefined;
    }
    const dirHost = r.dir(parentSegs, true)!;
    const host = join(dirHost, base);
    const existing = exists(host);
    if (h.type === 'dir' && existing?.isDirectory()) {
      chownSync(host, h.uid, h.gid);
      chmodSync(host, h.mode);
      return undefined;
    }
    if (existing) remove(host, existing);
    switch (h.type) {
      case 'dir':
        mkdirSync(host, { mode: 0o700 });
        chownSync(host, h.uid, h.gid);
        chmodSync(host, h.mode); // after chown, which clears setuid/setgid
        return undefined;
      case 'symlink':
        if (!h.linkname) throw new RootfsError('a symlink without a target');
        symlinkSync(h.linkname, host);
        lchownSync(host, h.uid, h.gid);
        return undefined;
      case 'hardlink': {
        const tsegs = entrySegments(h.linkname, 'hardlink target');
        if (tsegs.length === 0) throw new RootfsError('a hardlink to the root directory');
        const tdir = r.dir(tsegs.slice(0, -1), false);
        const target = tdir === undefined ? undefined : join(tdir, tsegs[tsegs.length - 1]!);
        const tst = target === undefined ? undefined : exists(target);
        if (!target || !tst)
          throw new RootfsError(
            `hardlink target "${h.linkname}" does not exist in the root file system (earlier in this layer or in a lower one); refusing to extract this layer`,
          );
        if (tst.isDirectory()) throw new RootfsError(`hardlink target "${h.linkname}" is a directory`);
        linkSync(target, host); // link(2) does not follow a symlink target: the link stays inside the root
        return undefined;
      }
      case 'file':
        return openSync(host, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    }
    return undefined;
  }

  async function writeBody(h: TarHeader, fd: number, body: AsyncIterable<Buffer>): Promise<void> {
    try {
      for await (const chunk of body) {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      }
      fchownSync(fd, h.uid, h.gid);
      fchmodSync(fd, h.mode); // after fchown, which clears setuid/setgid
      const t = h.mtime ?? new Date(0);
      futimesSync(fd, t, t);
    } finally {
      closeSync(fd);
    }
  }
}
