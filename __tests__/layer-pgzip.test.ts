import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParallelGzip, PGZIP_CHUNK } from '../src/layer/pgzip.js';
import { run } from './helpers/exec.js';

async function compress(data: Buffer, level: number, parallel?: number, piece = 65536): Promise<Buffer> {
  const parts: Buffer[] = [];
  const src = Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece);
    })(),
  );
  const gz = new ParallelGzip(level, parallel);
  gz.on('data', (c: Buffer) => parts.push(c));
  await pipeline(src, gz);
  return Buffer.concat(parts);
}

/** Compressible but not trivial: words from a seeded generator, with some random blocks. */
function sample(size: number, seed = 1): Buffer {
  const words = ['layer', 'image', 'digest', 'oci', 'build', 'registry', 'manifest', 'tar', 'gzip', 'variant'];
  const out = Buffer.alloc(size);
  let x = seed;
  let i = 0;
  while (i < size) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    if (x % 17 === 0) {
      const r = randomBytes(Math.min(300, size - i));
      r.copy(out, i);
      i += r.length;
      continue;
    }
    i += out.write(`${words[x % words.length]} ${x % 1000}\n`, i);
  }
  return out;
}

describe('parallel gzip', () => {
  it('round-trips through node and GNU gzip, for sizes around the chunk size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgzip-'));
    try {
      for (const size of [0, 1, 1000, PGZIP_CHUNK - 1, PGZIP_CHUNK, PGZIP_CHUNK + 1, 3 * PGZIP_CHUNK + 12345]) {
        const data = sample(size, size + 1);
        const gz = await compress(data, 6);
        expect(gunzipSync(gz).equals(data)).toBe(true);
        writeFileSync(join(dir, 'x.gz'), gz);
        const r = await run('sh', ['-c', `gzip -t ${join(dir, 'x.gz')} && gzip -dc ${join(dir, 'x.gz')} | sha256sum`]);
        expect(r.stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gives the same bytes whatever the parallelism and input piece sizes', async () => {
    const data = sample(5 * PGZIP_CHUNK + 777);
    const a = await compress(data, 6, 1, 4096);
    const b = await compress(data, 6, 8, 1 << 20);
    const c = await compress(data, 6, 3, 333_333);
    expect(b.equals(a)).toBe(true);
    expect(c.equals(a)).toBe(true);
  });

  it('compresses about as well as single-stream gzip (the dictionary carries across chunks)', async () => {
    const data = sample(4 * PGZIP_CHUNK);
    const ours = await compress(data, 6);
    const { gzipSync } = await import('node:zlib');
    const single = gzipSync(data, { level: 6 });
    expect(ours.length / single.length).toBeLessThan(1.01);
  });
});
