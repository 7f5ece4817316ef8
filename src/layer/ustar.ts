/**
 * A plain ustar header written straight into a buffer, for the common entry: ASCII path and
 * link target shorter than 100 bytes, numbers that fit their octal fields, no extended
 * attributes. The bytes are node-tar's Header.encode() for the same fields (the layer writer
 * falls back to it for everything else): a layer of 100,000 small files spent more time in
 * building Header objects than in reading the files.
 */

const BLOCK = 512;
const TYPE_FLAG = { file: 0x30, hardlink: 0x31, symlink: 0x32, dir: 0x35 } as const;
const MAGIC = Buffer.from('ustar\u000000', 'latin1');

export interface UstarFields {
  /** The tar path (directories with their trailing slash). */
  path: string;
  type: keyof typeof TYPE_FLAG;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Whole seconds since the epoch. */
  mtimeSec: number;
  linkpath?: string | undefined;
}

/** ASCII (so one byte per character) and short enough for the 100-byte name field unsplit. */
function fitsName(s: string): boolean {
  if (s.length >= 100) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f || s.charCodeAt(i) === 0) return false;
  return true;
}

/** node-tar's octal field: zero-padded digits, a space and a NUL, or digits and a NUL when they fill it. */
function writeOctal(buf: Buffer, off: number, size: number, n: number): boolean {
  const digits = n.toString(8);
  if (n < 0 || !Number.isInteger(n) || digits.length > size - 1) return false;
  if (digits.length === size - 1) {
    buf.write(digits, off, 'latin1');
  } else {
    const pad = size - 2 - digits.length;
    buf.fill(0x30, off, off + pad);
    buf.write(digits, off + pad, 'latin1');
    buf[off + size - 2] = 0x20;
  }
  buf[off + size - 1] = 0;
  return true;
}

/**
 * Writes the 512-byte header at `off` (the block must be zeroed) and returns true, or returns
 * false (the block left in an unspecified state) when the entry needs node-tar's encoder.
 */
export function writeUstarHeader(buf: Buffer, off: number, f: UstarFields): boolean {
  if (!fitsName(f.path) || (f.linkpath !== undefined && !fitsName(f.linkpath))) return false;
  buf.write(f.path, off, 'latin1');
  if (
    !writeOctal(buf, off + 100, 8, f.mode) ||
    !writeOctal(buf, off + 108, 8, f.uid) ||
    !writeOctal(buf, off + 116, 8, f.gid) ||
    !writeOctal(buf, off + 124, 12, f.size) ||
    !writeOctal(buf, off + 136, 12, f.mtimeSec)
  )
    return false;
  buf[off + 156] = TYPE_FLAG[f.type];
  if (f.linkpath !== undefined) buf.write(f.linkpath, off + 157, 'latin1');
  MAGIC.copy(buf, off + 257);
  writeOctal(buf, off + 329, 8, 0);
  writeOctal(buf, off + 337, 8, 0);
  // The checksum counts its own field as eight spaces.
  let sum = 8 * 0x20;
  for (let i = off; i < off + 148; i++) sum += buf[i]!;
  for (let i = off + 156; i < off + BLOCK; i++) sum += buf[i]!;
  return writeOctal(buf, off + 148, 8, sum);
}
