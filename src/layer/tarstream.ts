import { Header, Pax, type HeaderData } from 'tar';
import { ByteReader } from './byte-reader.js';

/**
 * A pull-based tar reader: the consumer asks for the next entry only when it is done with the
 * previous one, so entries can be applied with async file-system work in strict tar order
 * (node-tar's push-based Parser emits body-less entries back to back). Pax extended headers
 * (`x`, `g`) and GNU long names (`L`, `K`) are folded into the entry they describe.
 */

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface TarHeader {
  /** The name as stored (pax path / GNU long name applied), not normalized. */
  name: string;
  type: TarEntryType;
  /** The raw type name, for messages. */
  rawType: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime?: Date;
  /** Symlink target, or hardlink target name as stored. */
  linkname: string;
  /** Extended attributes from pax `SCHILY.xattr.<name>` records (values are raw bytes). */
  xattrs?: Record<string, Buffer>;
}

export interface TarItem {
  header: TarHeader;
  /** The entry's content; drained automatically when the consumer moves on without reading it. */
  body: AsyncIterable<Buffer>;
}

/** The stream is not a well-formed tar (as opposed to a failure of the stream itself). */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

const BLOCK = 512;
/** Metadata bodies (pax headers, long names) we buffer are small; refuse absurd ones. */
const MAX_META = 1 << 20;

function typeOf(name: string): TarEntryType {
  switch (name) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return 'file';
    case 'Directory':
    case 'GNUDumpDir':
      return 'dir';
    case 'SymbolicLink':
      return 'symlink';
    case 'Link':
      return 'hardlink';
    case 'CharacterDevice':
      return 'char';
    case 'BlockDevice':
      return 'block';
    case 'FIFO':
      return 'fifo';
    default:
      return 'other';
  }
}

const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

/** Reads a cstring-ish body (GNU long names end with NUL). */
function metaString(b: Buffer, size: number): string {
  const s = b.subarray(0, size).toString('utf8');
  const nul = s.indexOf('\0');
  return nul >= 0 ? s.slice(0, nul) : s;
}

const XATTR_PREFIX = 'SCHILY.xattr.';

/**
 * Splits a pax body into its `SCHILY.xattr.*` records (binary values, read by length: a value
 * may hold a newline or bytes that are not UTF-8) and the rest, for node-tar's parser.
 */
export function splitPaxXattrs(body: Buffer): { rest: string; xattrs?: Record<string, Buffer> } {
  let xattrs: Record<string, Buffer> | undefined;
  const rest: Buffer[] = [];
  let off = 0;
  while (off < body.length) {
    const sp = body.indexOf(0x20, off);
    const len = sp > off ? Number(body.subarray(off, sp).toString('latin1')) : NaN;
    if (!Number.isSafeInteger(len) || len <= sp - off || off + len > body.length || body[off + len - 1] !== 0x0a) {
      if (body.subarray(off).every((b) => b === 0)) break; // padding
      throw new TarFormatError('malformed pax extended header record');
    }
    const rec = body.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    const key = eq < 0 ? '' : rec.subarray(0, eq).toString('utf8');
    if (key.startsWith(XATTR_PREFIX) && key.length > XATTR_PREFIX.length) {
      xattrs ??= {};
      xattrs[key.slice(XATTR_PREFIX.length)] = Buffer.from(rec.subarray(eq + 1));
    } else rest.push(body.subarray(off, off + len));
    off += len;
  }
  return { rest: Buffer.concat(rest).toString('utf8'), ...(xattrs ? { xattrs } : {}) };
}

/** The entries of an uncompressed tar stream, in order. */
export async function* readTar(src: AsyncIterable<Buffer>): AsyncGenerator<TarItem> {
  const r = new ByteReader(src, 'tar');
  let ex: HeaderData | undefined;
  let gex: HeaderData | undefined;
  let longPath: string | undefined;
  let longLink: string | undefined;
  let xattrs: Record<string, Buffer> | undefined;
  try {
    for (;;) {
      const block = await r.read(BLOCK);
      if (!block || block.every((b) => b === 0)) {
        // End of archive (a missing end marker is tolerated); the rest is read so that a broken source still fails.
        await r.drain();
        return;
      }
      const h = new Header(block, 0, ex, gex);
      if (!h.cksumValid) throw new TarFormatError('invalid tar header (bad checksum)');
      const rawType = h.type;
      const size = h.size ?? 0;
      if (
        rawType === 'ExtendedHeader' ||
        rawType === 'GlobalExtendedHeader' ||
        rawType === 'NextFileHasLongPath' ||
        rawType === 'OldGnuLongPath' ||
        rawType === 'NextFileHasLongLinkpath'
      ) {
        if (size > MAX_META) throw new TarFormatError(`tar ${rawType} header of ${size} bytes is too large`);
        const body = size ? await r.read(padded(size)) : Buffer.alloc(0);
        if (!body) throw new TarFormatError('truncated tar');
        if (rawType === 'ExtendedHeader') {
          const split = splitPaxXattrs(body.subarray(0, size));
          if (split.xattrs) xattrs = { ...xattrs, ...split.xattrs };
          ex = Pax.parse(split.rest, ex, false);
        } else if (rawType === 'GlobalExtendedHeader') gex = Pax.parse(body.subarray(0, size).toString('utf8'), gex, true);
        else if (rawType === 'NextFileHasLongLinkpath') longLink = metaString(body, size);
        else longPath = metaString(body, size);
        continue;
      }
      const type = typeOf(rawType);
      const header: TarHeader = {
        name: ex?.path ?? longPath ?? h.path ?? '',
        type,
        rawType,
        mode: (h.mode ?? 0) & 0o7777,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        size: type === 'file' ? size : 0,
        ...(h.mtime ? { mtime: h.mtime } : {}),
        linkname: ex?.linkpath ?? longLink ?? h.linkpath ?? '',
        ...(xattrs ? { xattrs } : {}),
      };
      ex = undefined;
      xattrs = undefined;
      longPath = undefined;
      longLink = undefined;
      // Bodies of anything but regular files (some writers give hardlinks a size) are skipped.
      let consumed = 0;
      const content = size;
      const bodyIter = async function* (this: void): AsyncGenerator<Buffer> {
        if (type !== 'file') return;
        for await (const piece of r.stream(content)) {
          consumed += piece.length;
          yield piece;
        }
      };
      yield { header, body: bodyIter() };
      // Skip what the consumer did not read, and the padding.
      const rest = padded(size) - consumed;
      if (rest > 0)
        for await (const _ of r.stream(rest)) {
          /* skip */
        }
    }
  } finally {
    await r.close();
  }
}
