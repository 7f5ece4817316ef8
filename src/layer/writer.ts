import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { hashDigest } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { BlobStore } from './blobstore.js';
import { prepareEntries, tarChunks } from './tarwriter.js';
import type { BuiltLayer, LayerEntry, LayerWriteOptions } from './types.js';

/** Passes bytes through while hashing and counting them. */
class HashCounter extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** gzip header byte 9 (OS). zlib writes the build platform's code (3 on Unix, 19 on macOS, ...). */
const GZIP_OS_OFFSET = 9;
const GZIP_OS_UNIX = 3;

/**
 * Normalizes the gzip member header so the blob does not depend on the host OS: MTIME must be 0
 * (node's zlib writes 0; checked) and OS is forced to 3 (Unix), as GNU gzip -n writes on Linux.
 */
class GzipHeaderNormalizer extends Transform {
  private seen = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.seen < 10) {
      for (let i = 0; i < chunk.length && this.seen + i < 10; i++) {
        const pos = this.seen + i;
        if (pos >= 4 && pos <= 7 && chunk[i] !== 0) {
          cb(new Error('gzip header has a non-zero MTIME; the layer would not be reproducible'));
          return;
        }
        if (pos === GZIP_OS_OFFSET) chunk[i] = GZIP_OS_UNIX;
      }
    }
    this.seen += chunk.length;
    cb(null, chunk);
  }
}

/**
 * Writes a deterministic gzip-compressed layer of `entries` into the blob store, in one streaming
 * pass: tar → sha256/size (diffID) → gzip → sha256/size (digest) → temp file → commit.
 * Nothing is buffered beyond stream high-water marks; on any error the temp file is removed.
 */
export async function writeLayer(entries: LayerEntry[], store: BlobStore, opts: LayerWriteOptions): Promise<BuiltLayer> {
  const level = opts.level;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new Error(`gzip level must be an integer 0-9, got ${level}`);
  const sorted = prepareEntries(entries);

  const tar = Readable.from(tarChunks(sorted, opts.mtime), { objectMode: false, highWaterMark: 1 << 16 });
  const uncompressed = new HashCounter();
  const gzip = createGzip({ level });
  const header = new GzipHeaderNormalizer();
  const compressed = new HashCounter();
  const out = await store.create();
  try {
    await pipeline(tar, uncompressed, gzip, header, compressed, out.stream);
  } catch (err) {
    await out.abort();
    throw err;
  }
  const digest = hashDigest(compressed.hash);
  try {
    await out.commit(digest);
  } catch (err) {
    await out.abort();
    throw err;
  }
  return {
    descriptor: { mediaType: MediaType.OciLayerGzip, digest, size: compressed.bytes },
    diffId: hashDigest(uncompressed.hash),
    uncompressedSize: uncompressed.bytes,
  };
}
