import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { listPaths, readFilesFromLayers } from '../src/layer/reader.js';
import { decompressedChunks } from '../src/layer/decompress.js';
import { extractLayer } from '../src/run/extract.js';

/**
 * Issue 7 (found while adding zstd output): a zstd layer may hold many frames (zstd:chunked
 * does, with skippable frames for its table of contents). Node's decompressor stops after the
 * first frame without an error; the reader must see every frame.
 */

let work: string;
let tar: Buffer;
let multi: Buffer;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const zstd = (input: Buffer, args: string[]) => execFileSync('zstd', ['-q', '-c', ...args], { input, maxBuffer: 64 << 20 });
const skippable = (n: number, payload: Buffer) => {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(0x184d2a50 + n, 0);
  h.writeUInt32LE(payload.length, 4);
  return Buffer.concat([h, payload]);
};

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'oci-build-zframes-'));
  const root = join(work, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'opt/late'), { recursive: true });
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'opt/big.bin'), randomBytes(3 << 20));
  writeFileSync(join(root, 'opt/zeros'), Buffer.alloc(1 << 20)); // RLE blocks
  writeFileSync(join(root, 'opt/late/last.txt'), 'only in the last frame\n');
  tar = execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', root, '-cf', '-', 'etc', 'opt'], {
    maxBuffer: 64 << 20,
  });
  // Frames cut at arbitrary offsets, each made differently: with and without checksum and
  // content size, levels 1 and 19, a long-window one; skippable frames in between.
  const cuts = [0, 1000, 700_000, 2_500_000, tar.length - 3000, tar.length];
  const opts = [['-1'], ['-19', '--no-check'], ['-3', '--no-content-size'], ['--long=27', '-5'], ['-1', '--check']];
  const parts: Buffer[] = [skippable(0, Buffer.from('{"toc":"first"}'))];
  for (let i = 0; i + 1 < cuts.length; i++) {
    parts.push(zstd(tar.subarray(cuts[i], cuts[i + 1]), opts[i]!));
    if (i === 2) parts.push(skippable(15, randomBytes(70_000)));
  }
  multi = Buffer.concat(parts);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('multi-frame zstd layers', () => {
  it('decompress to the whole tar, whatever the chunking of the input', async () => {
    for (const piece of [multi.length, 65536, 7, 1]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < multi.length; i += piece) chunks.push(multi.subarray(i, i + piece));
      const out: Buffer[] = [];
      for await (const c of decompressedChunks(Readable.from(chunks))) out.push(c);
      expect(sha(Buffer.concat(out))).toBe(sha(tar));
      if (piece === 65536) break; // 7- and 1-byte pieces only on a small stream below
    }
    const small = Buffer.concat([
      zstd(tar.subarray(0, 5000), ['-1']),
      skippable(3, Buffer.from('x')),
      zstd(tar.subarray(5000, 20000), ['--check']),
    ]);
    for (const piece of [7, 1]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < small.length; i += piece) chunks.push(small.subarray(i, i + piece));
      const out: Buffer[] = [];
      for await (const c of decompressedChunks(Readable.from(chunks))) out.push(c);
      expect(sha(Buffer.concat(out))).toBe(sha(tar.subarray(0, 20000)));
    }
  });

  it("are scanned and extracted in full (the last frame's files are there)", async () => {
    const paths = await listPaths([() => Readable.from([multi])]);
    expect(paths.get('/opt/late/last.txt')).toMatchObject({ type: 'file', size: 23 });
    const files = await readFilesFromLayers([() => Readable.from([multi])], ['/etc/passwd', '/opt/late/last.txt']);
    expect(files.get('/opt/late/last.txt')?.toString()).toBe('only in the last frame\n');
    if (process.getuid?.() === 0) {
      const dir = join(work, 'x');
      mkdirSync(dir);
      await extractLayer(dir, Readable.from([multi]), { label: 'multi-frame' });
      expect(readFileSync(join(dir, 'opt/late/last.txt'), 'utf8')).toBe('only in the last frame\n');
      expect(sha(readFileSync(join(dir, 'opt/big.bin')))).toBe(sha(readFileSync(join(work, 'root/opt/big.bin'))));
    }
  });

  it('truncated or foreign data fails with a message, never a short tar', async () => {
    const read = async (b: Buffer) => {
      for await (const c of decompressedChunks(Readable.from([b]))) void c;
    };
    await expect(read(multi.subarray(0, multi.length - 10))).rejects.toThrow(/truncated zstd stream/);
    await expect(read(Buffer.concat([zstd(Buffer.from('abc'), ['-1']), Buffer.from('garbage!')]))).rejects.toThrow(
      /does not start with a zstd magic number/,
    );
  });
});
