import { createReadStream, type ReadStream } from 'node:fs';

/**
 * Read buffer for a source file of `size` bytes: 1 MiB for big files (few system calls), the
 * file's own size for small ones. A fixed 1 MiB buffer per file made a directory of a few
 * hundred small files allocate (and collect) hundreds of MiB.
 */
export function readBufferSize(size: number): number {
  return Math.min(1 << 20, Math.max(1 << 12, size));
}

/** Streams a source file in chunks sized for it (see readBufferSize). */
export function openSource(path: string, size: number, fd?: number): ReadStream {
  return createReadStream(path, { highWaterMark: readBufferSize(size), ...(fd !== undefined ? { fd } : {}) });
}
