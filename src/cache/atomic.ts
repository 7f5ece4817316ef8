import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join, resolve } from 'node:path';

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Writes a file through a temp file in the same directory and a rename: readers see all of it or none. */
export async function writeAtomic(file: string, data: string | Uint8Array | Readable): Promise<void> {
  const dir = resolve(file, '..');
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // A stream is written as it comes (an archive of every layer is never held in memory).
    if (typeof data === 'string' || data instanceof Uint8Array) await writeFile(tmp, data);
    else await pipeline(data, createWriteStream(tmp, { highWaterMark: 1 << 20 }));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
