import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LayerEntry } from '../layer/types.js';

/** A directory entry of an archive (root-owned, 0755). */
export function dirEntry(path: string): LayerEntry {
  return { path, type: 'dir', mode: 0o755, uid: 0, gid: 0 };
}

/** A small file of an archive from bytes in memory (manifests, configs, index.json). */
export function bytesEntry(path: string, bytes: Buffer | string): LayerEntry {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: b.length, open: () => Readable.from([b]) };
}

/**
 * A file of an archive read from `open` only when the tar writer gets to it, so an archive of
 * many layers has one of them open at a time.
 */
export function streamEntry(path: string, size: number, open: () => Promise<Readable>): LayerEntry {
  return {
    path,
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size,
    open: () => {
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      open()
        .then(
          (src) => pipeline(src, out),
          (err: Error) => out.destroy(err),
        )
        .catch(() => {
          /* out carries the error */
        });
      return out;
    },
  };
}
