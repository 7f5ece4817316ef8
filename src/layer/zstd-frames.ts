import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Decompresses a zstd stream of any number of frames. A zstd stream is a sequence of frames
 * (and skippable frames, which zstd:chunked uses for its table of contents), but Node's
 * decompressor stops at the end of the first frame and drops the rest without a word, which
 * would make a multi-frame base layer look like its first part. So frames are delimited here
 * from their headers and block headers (RFC 8878, section 3.1; nothing is decompressed to do
 * it) and each one goes through a decompressor of its own.
 */

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;

type Decompressor = NodeJS.ReadWriteStream & Readable;

/** Reads exact byte counts from an async stream of chunks, without copying more than it must. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  /** Up to `max` bytes (at least one), or undefined at the end. */
  async upTo(max: number): Promise<Buffer | undefined> {
    if (this.buf.length === 0) {
      if (this.ended) return undefined;
      const r = await this.it.next();
      if (r.done) { this.ended = true; return undefined; }
      this.buf = r.value;
    }
    const out = this.buf.subarray(0, Math.min(max, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Exactly n bytes; undefined when the stream ends before the first one (when allowed). */
  async exact(n: number, what: string, endOk = false): Promise<Buffer | undefined> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const b = await this.upTo(n - got);
      if (!b) {
        if (got === 0 && endOk) return undefined;
        throw new Error(`zstd stream ends inside ${what}`);
      }
      parts.push(b);
      got += b.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

/** The bytes of one zstd frame whose magic number has been read. */
async function* frameBytes(r: ByteReader, magic: Buffer): AsyncGenerator<Buffer> {
  yield magic;
  const fhd = (await r.exact(1, 'a frame header'))!;
  yield fhd;
  const d = fhd[0]!;
  const fcsFlag = d >> 6;
  const singleSegment = (d >> 5) & 1;
  const checksum = (d >> 2) & 1;
  const dictFlag = d & 3;
  const rest = (singleSegment ? 0 : 1) + [0, 1, 2, 4][dictFlag]! + [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (rest) yield (await r.exact(rest, 'a frame header'))!;
  for (;;) {
    const bh = (await r.exact(3, 'a block header'))!;
    yield bh;
    const v = bh[0]! | (bh[1]! << 8) | (bh[2]! << 16);
    const last = v & 1;
    const type = (v >> 1) & 3;
    if (type === 3) throw new Error('zstd stream has a block of the reserved type: corrupt layer');
    let left = type === 1 ? 1 : v >>> 3;
    while (left > 0) {
      const b = await r.upTo(left);
      if (!b) throw new Error('zstd stream ends inside a block');
      left -= b.length;
      yield b;
    }
    if (last) break;
  }
  if (checksum) yield (await r.exact(4, 'a frame checksum'))!;
}

/** The uncompressed bytes of every frame of a zstd stream, in order. */
export async function* zstdDecompressFrames(input: AsyncIterable<Buffer>, create: () => Decompressor): AsyncGenerator<Buffer> {
  const r = new ByteReader(input[Symbol.asyncIterator]());
  for (let frames = 0; ; frames++) {
    const magic = await r.exact(4, 'a frame magic number', true);
    if (!magic) {
      if (frames === 0) throw new Error('zstd stream is empty');
      return;
    }
    const m = magic.readUInt32LE(0);
    if ((m & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      let left = (await r.exact(4, 'a skippable frame'))!.readUInt32LE(0);
      while (left > 0) {
        const b = await r.upTo(left);
        if (!b) throw new Error('zstd stream ends inside a skippable frame');
        left -= b.length;
      }
      continue;
    }
    if (m !== ZSTD_MAGIC) throw new Error(`zstd stream: frame ${frames + 1} does not start with a zstd magic number (0x${m.toString(16)})`);
    const dec = create();
    const feeding = pipeline(Readable.from(frameBytes(r, magic), { objectMode: false }), dec);
    feeding.catch(() => { /* surfaces through dec's iterator */ });
    for await (const chunk of dec as AsyncIterable<Buffer>) yield chunk;
    await feeding;
  }
}

export type { Decompressor };
