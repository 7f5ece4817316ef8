import { closeSync, createReadStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';

/**
 * Read buffer for a source file of `size` bytes: 1 MiB for big files (few system calls), the
 * file's own size for small ones. A fixed 1 MiB buffer per file made a directory of a few
 * hundred small files allocate (and collect) hundreds of MiB.
 */
export function readBufferSize(size: number): number {
  return Math.min(1 << 20, Math.max(1 << 12, size));
}

/**
 * Files up to this size are read with one synchronous call when the layer writer gets to
 * them. An asynchronous read is three trips through libuv's thread pool (open, read, close),
 * which layer compression keeps busy: on a 1 GiB tree of 11,000 files that waiting cost more
 * than the reads themselves. Small reads from the page cache take microseconds.
 */
export const SYNC_READ_BYTES = 64 << 10;

/** Streams a source file in chunks sized for it (see readBufferSize), or reads a small one at once. */
export function openSource(path: string, size: number, fd?: number): Readable {
  if (size <= SYNC_READ_BYTES) {
    return Readable.from(
      (function* () {
        try {
          yield readFileSync(fd ?? path);
        } finally {
          if (fd !== undefined) closeSync(fd);
        }
      })(),
      { objectMode: false },
    );
  }
  return createReadStream(path, { highWaterMark: readBufferSize(size), ...(fd !== undefined ? { fd } : {}) });
}
