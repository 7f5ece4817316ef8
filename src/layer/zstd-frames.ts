import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ByteReader } from './byte-reader.js';

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

/** True when the bytes open a zstd stream: a zstd frame or a skippable frame (zstd:chunked may start with one). */
export function isZstdStart(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const m = Buffer.from(head.buffer, head.byteOffset, 4).readUInt32LE(0);
  return m === ZSTD_MAGIC || (m & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC;
}

/** Exactly n bytes, or an error: the stream may not end inside a frame. */
async function need(r: ByteReader, n: number): Promise<Buffer> {
  const b = await r.read(n);
  if (!b) throw new Error(`truncated zstd stream: it ends inside a frame`);
  return b;
}

/** The bytes of one zstd frame whose magic number has been read. */
async function* frameBytes(r: ByteReader, magic: Buffer): AsyncGenerator<Buffer> {
  yield magic;
  const fhd = await need(r, 1);
  yield fhd;
  const d = fhd[0]!;
  const fcsFlag = d >> 6;
  const singleSegment = (d >> 5) & 1;
  const checksum = (d >> 2) & 1;
  const dictFlag = d & 3;
  const rest = (singleSegment ? 0 : 1) + [0, 1, 2, 4][dictFlag]! + [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (rest) yield await need(r, rest);
  for (;;) {
    const bh = await need(r, 3);
    yield bh;
    const v = bh[0]! | (bh[1]! << 8) | (bh[2]! << 16);
    const last = v & 1;
    const type = (v >> 1) & 3;
    if (type === 3) throw new Error('zstd stream has a block of the reserved type: corrupt layer');
    yield* r.stream(type === 1 ? 1 : v >>> 3);
    if (last) break;
  }
  if (checksum) yield await need(r, 4);
}

/** The uncompressed bytes of every frame of a zstd stream, in order. */
export async function* zstdDecompressFrames(input: AsyncIterable<Buffer>, create: () => Decompressor): AsyncGenerator<Buffer> {
  const r = new ByteReader(input, 'zstd stream');
  for (let frames = 0; ; frames++) {
    const magic = await r.read(4);
    if (!magic) {
      if (frames === 0) throw new Error('zstd stream is empty');
      return;
    }
    const m = magic.readUInt32LE(0);
    if ((m & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      for await (const _ of r.stream((await need(r, 4)).readUInt32LE(0))) {
        /* skipped */
      }
      continue;
    }
    if (m !== ZSTD_MAGIC) throw new Error(`zstd stream: frame ${frames + 1} does not start with a zstd magic number (0x${m.toString(16)})`);
    const dec = create();
    const feeding = pipeline(Readable.from(frameBytes(r, magic), { objectMode: false }), dec);
    feeding.catch(() => {
      /* surfaces through dec's iterator */
    });
    for await (const chunk of dec as AsyncIterable<Buffer>) yield chunk;
    await feeding;
  }
}

export type { Decompressor };
