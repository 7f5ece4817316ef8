import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { posix } from 'node:path';
import { Header, Pax, type HeaderData } from 'tar';
import type { LayerEntry } from './types.js';
import { writeUstarHeader } from './ustar.js';
import { SYNC_READ_BYTES } from './source.js';

/**
 * Deterministic tar encoding of layer entries. Headers are encoded by node-tar's Header (ustar),
 * with a Pax extended header in front when a field does not fit ustar faithfully.
 */

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** End of archive: two zero blocks. */
const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);
/** Largest size the 12-byte octal size field holds (8 GiB - 1). */
const MAX_USTAR_SIZE = 0o77777777777;
/** Largest id the 8-byte octal uid/gid fields hold. */
const MAX_USTAR_ID = 0o7777777;
const MAX_ID = 0xffffffff;

/** Sort key: the path's UTF-8 bytes with '/' as 0x00, so segment lists compare bytewise and parents come first. */
function sortKey(path: string): Buffer {
  const b = Buffer.from(path, 'utf8');
  for (let i = 0; i < b.length; i++) if (b[i] === 0x2f) b[i] = 0;
  return b;
}

/**
 * Orders image paths by their segment lists, comparing segments bytewise (UTF-8): a directory
 * always precedes its children, and siblings are in byte order.
 */
export function comparePaths(a: string, b: string): number {
  // ASCII, the common case, without a Buffer per path (a layer of 100,000 files sorts them
  // some two million times): '/' sorts before every other byte, as the 0x00 of sortKey.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x > 0x7f || y > 0x7f) return Buffer.compare(sortKey(a), sortKey(b));
    return (x === 0x2f ? -1 : x) - (y === 0x2f ? -1 : y);
  }
  // One is a prefix of the other (its UTF-8 bytes too): the shorter first.
  return a.length - b.length;
}

/** `/usr/local/bin/coop` → `usr/local/bin/coop`; directories get a trailing slash. */
export function tarPath(path: string, dir = false): string {
  const rel = path.replace(/^\/+/, '');
  return dir ? `${rel}/` : rel;
}

function checkPath(path: string, what: string): void {
  if (!path.startsWith('/') || path === '/' || path.endsWith('/') || posix.normalize(path) !== path || path.includes('\0')) {
    throw new Error(`layer ${what} "${path}" must be an absolute, normalized image path without a trailing slash (and not /)`);
  }
}

function checkId(n: number, what: string, path: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_ID)
    throw new Error(`layer entry ${path}: ${what} ${n} is not a valid id (0..${MAX_ID})`);
}

/**
 * Validates entries, rejects duplicate paths, and returns copies sorted parents-first.
 * Hardlinks whose target is in the same layer are rewritten so the content sits on the group's
 * first path in tar order and every other member links to it (tar needs the target first).
 */
export function prepareEntries(entries: readonly LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const e of entries) {
    checkPath(e.path, 'path');
    if (byPath.has(e.path)) throw new Error(`duplicate path in layer: ${e.path}`);
    if (!Number.isInteger(e.mode) || e.mode < 0) throw new Error(`layer entry ${e.path}: invalid mode ${e.mode}`);
    checkId(e.uid, 'uid', e.path);
    checkId(e.gid, 'gid', e.path);
    switch (e.type) {
      case 'file':
        if (typeof e.open !== 'function') throw new Error(`layer entry ${e.path}: a file needs open()`);
        if (e.size === undefined || !Number.isSafeInteger(e.size) || e.size < 0)
          throw new Error(`layer entry ${e.path}: a file needs a non-negative integer size`);
        break;
      case 'symlink':
        if (!e.linkname) throw new Error(`layer entry ${e.path}: a symlink needs a linkname`);
        if (e.linkname.includes('\0')) throw new Error(`layer entry ${e.path}: invalid symlink target`);
        break;
      case 'hardlink':
        if (!e.linkname) throw new Error(`layer entry ${e.path}: a hardlink needs a linkname`);
        checkPath(e.linkname, `hardlink target of ${e.path}:`);
        if (e.linkname === e.path) throw new Error(`layer entry ${e.path}: a hardlink cannot point to itself`);
        break;
      case 'dir':
        break;
      default:
        throw new Error(`layer entry ${String((e as { path: unknown }).path)}: unknown type ${String((e as { type: unknown }).type)}`);
    }
    byPath.set(e.path, e.mode & ~0o7777 ? { ...e, mode: e.mode & 0o7777 } : e);
  }

  const sorted = [...byPath.values()];
  if (!isSorted(sorted)) sorted.sort((a, b) => comparePaths(a.path, b.path));
  const index = new Map<string, number>();
  for (const [i, e] of sorted.entries()) index.set(e.path, i);

  // Group in-layer hardlinks by the entry that holds the content.
  const groups = new Map<number, number[]>();
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i]!;
    if (e.type !== 'hardlink') continue;
    let j = i;
    const seen = new Set<number>([i]);
    for (;;) {
      const cur = sorted[j]!;
      if (cur.type !== 'hardlink') break;
      const next = index.get(cur.linkname!);
      if (next === undefined) {
        j = -1;
        break;
      } // target lives in a lower layer
      if (seen.has(next)) throw new Error(`hardlink cycle in layer at ${e.path}`);
      seen.add(next);
      j = next;
    }
    if (j < 0) continue;
    const root = sorted[j]!;
    if (root.type === 'dir') throw new Error(`layer entry ${e.path}: hardlink target ${root.path} is a directory`);
    const members = groups.get(j) ?? [];
    members.push(i);
    groups.set(j, members);
  }
  for (const [rootIdx, members] of groups) {
    const holderIdx = Math.min(rootIdx, ...members);
    const root = sorted[rootIdx]!;
    const holder = sorted[holderIdx]!;
    if (holderIdx !== rootIdx) {
      // The holder takes the inode (content and metadata); the former root becomes a link.
      sorted[holderIdx] = { ...root, path: holder.path };
      sorted[rootIdx] = { path: root.path, type: 'hardlink', mode: root.mode, uid: root.uid, gid: root.gid, linkname: holder.path };
    }
    for (const m of members) {
      if (m === holderIdx) continue;
      const cur = sorted[m]!;
      sorted[m] = { path: cur.path, type: 'hardlink', mode: cur.mode, uid: cur.uid, gid: cur.gid, linkname: holder.path };
    }
  }
  return sorted;
}

/** A context walk gives its entries in tar order already: one pass to tell, instead of a sort. */
function isSorted(entries: readonly LayerEntry[]): boolean {
  for (let i = 1; i < entries.length; i++) if (comparePaths(entries[i - 1]!.path, entries[i]!.path) > 0) return false;
  return true;
}

/** Integer seconds of a Date (tar has second resolution; pax records must match the header). */
export function tarTime(d: Date): Date {
  const t = d.getTime();
  if (!Number.isFinite(t)) throw new Error('invalid layer mtime');
  return new Date(Math.floor(t / 1000) * 1000);
}

/**
 * The header block(s) for one entry: an optional pax extended header (header + records) and the
 * ustar header. `mtime` must already be whole seconds.
 */
export function encodeEntryHeader(e: LayerEntry, mtime: Date): Buffer {
  const isDir = e.type === 'dir';
  const path = tarPath(e.path, isDir);
  const linkpath = e.type === 'symlink' ? e.linkname! : e.type === 'hardlink' ? tarPath(e.linkname!) : undefined;
  const size = e.type === 'file' ? e.size! : 0;
  const xattrs = e.type === 'file' || e.type === 'dir' ? xattrRecords(e.xattrs) : undefined;
  if (!xattrs) {
    const fast = Buffer.alloc(BLOCK);
    const fields = { path, type: e.type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, size, mtimeSec: mtime.getTime() / 1000, linkpath };
    if (writeUstarHeader(fast, 0, fields)) return fast;
  }
  const data: HeaderData = {
    path,
    mode: e.mode & 0o7777,
    uid: e.uid,
    gid: e.gid,
    size,
    mtime,
    type: e.type === 'file' ? 'File' : isDir ? 'Directory' : e.type === 'symlink' ? 'SymbolicLink' : 'Link',
    uname: '',
    gname: '',
    devmaj: 0,
    devmin: 0,
  };
  if (linkpath !== undefined) data.linkpath = linkpath;
  const header = new Header(data);
  const needPax = header.encode();
  const block = header.block!;

  const pathLong = Buffer.byteLength(path) > 100;
  const linkLong = linkpath !== undefined && Buffer.byteLength(linkpath) > 100;
  if (!needPax && !pathLong && !linkLong && !xattrs) return block;

  // Only the records that ustar cannot carry, so the output stays minimal and stable.
  const rec: HeaderData = {};
  const nonAscii = (s: string) => Buffer.byteLength(s) !== s.length;
  if (pathLong || nonAscii(path) || needPax) rec.path = path;
  if (linkpath !== undefined && (linkLong || nonAscii(linkpath) || needPax)) rec.linkpath = linkpath;
  if (size > MAX_USTAR_SIZE) rec.size = size;
  if (e.uid > MAX_USTAR_ID) rec.uid = e.uid;
  if (e.gid > MAX_USTAR_ID) rec.gid = e.gid;
  const base = Buffer.from(new Pax(rec).encodeBody(), 'utf8');
  const body = xattrs ? Buffer.concat([base, xattrs]) : base;
  const paxHeader = new Header({
    path: `PaxHeader/${posix.basename(path)}`.slice(0, 99),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime,
    type: 'ExtendedHeader',
    uname: '',
    gname: '',
    devmaj: 0,
    devmin: 0,
  });
  paxHeader.encode();
  return Buffer.concat([paxHeader.block!, body, padding(body.length), block]);
}

/** One pax record, `<length> <key>=<value>\n`, where the length counts the whole record. */
export function paxRecord(key: string, value: Buffer): Buffer {
  const kv = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let n = kv.length + 1;
  while (String(n).length + kv.length !== n) n = String(n).length + kv.length;
  return Buffer.concat([Buffer.from(String(n)), kv]);
}

/**
 * `SCHILY.xattr.<name>` records (the form GNU tar, buildah, containerd and BuildKit read and
 * write), names in byte order so the layer is reproducible; undefined when there are none.
 */
function xattrRecords(x: LayerEntry['xattrs']): Buffer | undefined {
  const names = x ? Object.keys(x).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))) : [];
  if (names.length === 0) return undefined;
  for (const n of names) if (n === '' || /[\0=]/.test(n)) throw new Error(`invalid extended attribute name ${JSON.stringify(n)}`);
  return Buffer.concat(names.map((n) => paxRecord(`SCHILY.xattr.${n}`, x![n]!)));
}

function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return rem === 0 ? Buffer.alloc(0) : ZERO_BLOCK.subarray(0, BLOCK - rem);
}

/** The writer yields the tar in pieces of about this size: one per file made small files cost a stream chunk each downstream. */
const PIECE_BYTES = 1 << 20;

/** Accumulates headers and small files into one zero-filled piece; take() hands it over. */
class Piece {
  buf = Buffer.alloc(PIECE_BYTES + SYNC_READ_BYTES + 2 * BLOCK);
  used = 0;
  get full(): boolean {
    return this.used >= PIECE_BYTES;
  }
  take(): Buffer {
    if (this.used < PIECE_BYTES / 4) {
      // A short piece (headers before a big file) is copied out and the piece reused: a view
      // would keep all of its 1 MiB alive downstream for a few bytes.
      const out = Buffer.from(this.buf.subarray(0, this.used));
      this.buf.fill(0, 0, this.used);
      this.used = 0;
      return out;
    }
    const out = this.buf.subarray(0, this.used);
    this.buf = Buffer.alloc(this.buf.length);
    this.used = 0;
    return out;
  }
}

/** Reads a small file into the piece after its header; returns the bytes read (one more than `size` when it grew). */
function readSmallInto(piece: Piece, path: string, size: number): number {
  // Room for one byte more than expected (a file that grew); a long pax header may have used the spare.
  if (piece.used + size + 1 > piece.buf.length) grow(piece, size + 1);
  const fd = openSync(path, 'r');
  try {
    let got = 0;
    for (;;) {
      const n = readSync(fd, piece.buf, piece.used + got, size + 1 - got, null);
      if (n === 0) break;
      got += n;
      if (got > size) break;
    }
    return got;
  } finally {
    closeSync(fd);
  }
}

/**
 * Yields the uncompressed tar of prepared (validated, sorted) entries. File contents are pulled
 * from each entry's open() with backpressure (the consumer drives the iteration); small files
 * with a readPath are read synchronously straight into the piece being filled.
 */
export async function* tarChunks(sorted: readonly LayerEntry[], mtime: Date): AsyncGenerator<Buffer> {
  const t = tarTime(mtime);
  const mtimeSec = t.getTime() / 1000;
  const piece = new Piece();
  for (const e of sorted) {
    if (piece.full) yield piece.take();
    putHeader(piece, e, t, mtimeSec);
    if (e.type !== 'file') continue;
    const size = e.size!;
    let got = 0;
    let hash: Hash | undefined;
    if (e.readPath && size <= SYNC_READ_BYTES) {
      got = readSmallInto(piece, e.readPath, size);
      if (got > size) throw new Error(`file ${e.path} changed while building the layer: expected ${size} bytes, read more`);
      if (e.onContentHash) hash = createHash('sha256').update(piece.buf.subarray(piece.used, piece.used + got));
      piece.used += got;
    } else if (size <= SYNC_READ_BYTES) {
      // A small file whose bytes come from open() (a layer buffered in memory): into the piece
      // as well. Handing over the piece before each such file made a 1 MiB piece per file.
      hash = e.onContentHash ? createHash('sha256') : undefined;
      for await (const buf of fileChunks(e)) {
        got += buf.length;
        if (got > size) throw new Error(`file ${e.path} changed while building the layer: expected ${size} bytes, read more`);
        hash?.update(buf);
        putBytes(piece, buf);
      }
    } else {
      if (piece.used > 0) yield piece.take();
      hash = e.onContentHash ? createHash('sha256') : undefined;
      for await (const buf of fileChunks(e)) {
        got += buf.length;
        hash?.update(buf);
        if (got > size) throw new Error(`file ${e.path} changed while building the layer: expected ${size} bytes, read more`);
        if (buf.length > 0) yield buf;
      }
    }
    if (got !== size) {
      throw new Error(`file ${e.path} changed while building the layer: expected ${size} bytes, read ${got}`);
    }
    const moved = e.changedSince?.();
    // A same-size rewrite passes the size check; the layer would hold a mix of old and new bytes.
    if (moved) throw new Error(`file ${e.path} changed while building the layer: ${moved}`);
    if (hash) e.onContentHash!(`sha256:${hash.digest('hex')}`, got);
    piece.used += padding(size).length; // the piece is zero-filled
  }
  putBytes(piece, END_OF_ARCHIVE);
  yield piece.take();
}

/** The entry's header blocks into the piece: the plain ustar header in place when it fits one. */
function putHeader(piece: Piece, e: LayerEntry, t: Date, mtimeSec: number): void {
  if (!e.xattrs) {
    const isDir = e.type === 'dir';
    const linkpath = e.type === 'symlink' ? e.linkname! : e.type === 'hardlink' ? tarPath(e.linkname!) : undefined;
    const fields = {
      path: tarPath(e.path, isDir),
      type: e.type,
      mode: e.mode & 0o7777,
      uid: e.uid,
      gid: e.gid,
      size: e.type === 'file' ? e.size! : 0,
      mtimeSec,
      linkpath,
    };
    if (writeUstarHeader(piece.buf, piece.used, fields)) {
      piece.used += BLOCK;
      return;
    }
    piece.buf.fill(0, piece.used, piece.used + BLOCK);
  }
  putBytes(piece, encodeEntryHeader(e, t));
}

/** Copies bytes into the piece, growing it for a header bigger than its spare room (long xattrs). */
function putBytes(piece: Piece, b: Buffer): void {
  if (piece.used + b.length > piece.buf.length) grow(piece, b.length);
  b.copy(piece.buf, piece.used);
  piece.used += b.length;
}

function grow(piece: Piece, extra: number): void {
  const bigger = Buffer.alloc(piece.used + extra + PIECE_BYTES);
  piece.buf.copy(bigger, 0, 0, piece.used);
  piece.buf = bigger;
}

/** A file entry's content from its open(), as Buffers; the source is destroyed when the caller stops early. */
async function* fileChunks(e: LayerEntry): AsyncGenerator<Buffer> {
  const src = e.open!();
  try {
    for await (const chunk of src) {
      yield typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    }
  } finally {
    src.destroy();
  }
}

/** The uncompressed tar of entries as a byte stream (validates and sorts them first). */
export function createTarStream(entries: readonly LayerEntry[], mtime: Date): Readable {
  const sorted = prepareEntries(entries);
  return Readable.from(tarChunks(sorted, mtime), { objectMode: false, highWaterMark: 1 << 16 });
}
