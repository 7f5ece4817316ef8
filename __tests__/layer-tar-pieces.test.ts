// The tar writer's output pieces: what a layer of many small files hands downstream (to the
// compressor, which queues up to a chunk of them) must not keep far more memory alive than
// it carries, whether the files are read from disk (readPath) or come from memory (open()).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareEntries, tarChunks } from '../src/layer/tarwriter.js';
import type { LayerEntry } from '../src/layer/types.js';

const MTIME = new Date(1_700_000_000 * 1000);
const FILES = 3000;
let dir: string;
const contents: Buffer[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tar-pieces-'));
  for (let i = 0; i < FILES; i++) {
    // 1-8 KiB, as the files of a node_modules tree.
    const b = Buffer.alloc(1024 + ((i * 2654435761) % 7168), `file ${i} `);
    contents.push(b);
    writeFileSync(join(dir, `f${i}`), b);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function entries(fromMemory: boolean): LayerEntry[] {
  const out: LayerEntry[] = [{ path: '/app', type: 'dir', mode: 0o755, uid: 0, gid: 0 }];
  contents.forEach((b, i) => {
    const host = join(dir, `f${i}`);
    out.push({
      path: `/app/f${String(i).padStart(5, '0')}`,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: b.length,
      open: () => Readable.from([b]),
      ...(fromMemory ? {} : { readPath: host }),
    });
  });
  // One big file too: the pieces around it are handed over early.
  const big = Buffer.alloc(3 << 20, 'big');
  out.push({ path: '/app/zz-big', type: 'file', mode: 0o644, uid: 0, gid: 0, size: big.length, open: () => Readable.from([big]) });
  return out;
}

async function pieces(fromMemory: boolean): Promise<{ chunks: Buffer[]; sha: string }> {
  const chunks: Buffer[] = [];
  const h = createHash('sha256');
  for await (const c of tarChunks(prepareEntries(entries(fromMemory)), MTIME)) {
    chunks.push(c);
    h.update(c);
  }
  return { chunks, sha: h.digest('hex') };
}

describe('tar pieces of a layer of small files', () => {
  it.each([
    ['read from disk (readPath)', false],
    ['buffered in memory (open())', true],
  ])('%s: about 1 MiB pieces, none holding much more memory than it carries', async (_name, fromMemory) => {
    const { chunks } = await pieces(fromMemory);
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const small = chunks.filter((c) => c.length < 1 << 20);
    // 3000 files of ~4.5 KiB: ~14 MiB of tar plus the 3 MiB file; pieces, not one chunk per file.
    expect(chunks.length).toBeLessThan(40);
    expect(total).toBeGreaterThan(16 << 20);
    for (const c of small) expect(c.buffer.byteLength).toBeLessThanOrEqual(Math.max(4 * c.length, 64 << 10));
  });

  it('writes the same bytes either way', async () => {
    const [disk, memory] = await Promise.all([pieces(false), pieces(true)]);
    expect(memory.sha).toBe(disk.sha);
  });
});
