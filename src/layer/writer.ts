import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hashDigest } from '../oci/digest.js';
import type { BlobStore } from './blobstore.js';
import { prepareEntries, tarChunks } from './tarwriter.js';
import { compressionProblem, compressionStages, layerMediaType } from './compress.js';
import type { BuiltLayer, LayerEntry, LayerWriteOptions } from './types.js';

/** Passes bytes through while hashing and counting them. */
class HashCounter extends Transform {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly onBytes?: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    cb(null, chunk);
  }
}

/**
 * Writes a deterministic compressed (gzip or zstd) layer of `entries` into the blob store, in one streaming
 * pass: tar → sha256/size (diffID) → gzip or zstd → sha256/size (digest) → temp file → commit.
 * Nothing is buffered beyond stream high-water marks; on any error the temp file is removed.
 */
export async function writeLayer(entries: LayerEntry[], store: BlobStore, opts: LayerWriteOptions): Promise<BuiltLayer> {
  const compression = opts.compression;
  const problem = compressionProblem(compression, { algorithm: 'compression', level: `${compression.algorithm} level` });
  if (problem) throw new Error(problem);
  const sorted = prepareEntries(entries);

  const tar = Readable.from(tarChunks(sorted, opts.mtime), { objectMode: false, highWaterMark: 1 << 16 });
  const uncompressed = new HashCounter(opts.onBytes);
  // gzip: pigz-style, 1 MiB chunks on all cores, one standard member whose bytes do not depend
  // on the host (no time, OS 3) or on scheduling; zstd: one frame (src/layer/compress.ts).
  const compress = compressionStages(compression, opts.parallel);
  const compressed = new HashCounter();
  const out = await store.create();
  try {
    await pipeline(tar, uncompressed, ...compress, compressed, out.stream, ...(opts.signal ? [{ signal: opts.signal }] : []));
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
    descriptor: { mediaType: layerMediaType(compression), digest, size: compressed.bytes },
    diffId: hashDigest(uncompressed.hash),
    uncompressedSize: uncompressed.bytes,
  };
}
