import type { Readable } from 'node:stream';

/** Reads a small stream (a config, a manifest) into memory, refusing anything over `limit`. */
export async function readStreamLimited(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    total += b.length;
    if (total > limit) {
      stream.destroy();
      throw new Error(`${what} is larger than ${limit} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
