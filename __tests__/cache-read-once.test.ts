import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileHasher, LayerCache } from '../src/cache/layer-cache.js';
import { BUFFER_BYTES, LayerProducer, SMALL_FILE_BYTES } from '../src/build/layer-producer.js';
import { BlobStore } from '../src/layer/blobstore.js';
import { openSource } from '../src/layer/source.js';
import type { LayerEntry } from '../src/layer/types.js';
import { writeLayer } from '../src/layer/writer.js';
import type { CopyStep } from '../src/config/model.js';

/**
 * Issue 7: a cached build reads each source file of a layer once (the write) or not at all
 * (a hit). Reads are counted at both places a producer can read: entries' open() and the
 * hasher's readOnce (small files are read into memory once and written from there).
 */

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'oci-build-read-once-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

class CountingHasher extends FileHasher {
  readOnceCalls = 0;
  override async readOnce(path: string) {
    this.readOnceCalls++;
    return super.readOnce(path);
  }
}

const step = {
  kind: 'copy',
  sources: [{ pattern: 'src/', isGlob: false, matches: [], perPlatform: false }],
  to: '/opt/',
  pos: { file: 'x', line: 1 },
} as unknown as CopyStep;

interface Setup {
  dir: string;
  files: string[];
  opens: Map<string, number>;
  onOpen?: (path: string) => void;
}

function entries(s: Setup): LayerEntry[] {
  return s.files.map((f) => {
    const host = join(s.dir, 'src', f);
    return {
      path: `/opt/${f}`,
      type: 'file' as const,
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: statSync(host).size,
      hostPath: host,
      open: (): Readable => {
        s.opens.set(f, (s.opens.get(f) ?? 0) + 1);
        s.onOpen?.(host);
        return openSource(host, statSync(host).size);
      },
    };
  });
}

function setup(name: string, files: Record<string, Buffer>): Setup {
  const dir = join(work, name);
  mkdirSync(join(dir, 'src'), { recursive: true });
  const old = new Date(Date.now() - 3600_000); // outside the racy window, so stats are recorded
  for (const [f, b] of Object.entries(files)) {
    writeFileSync(join(dir, 'src', f), b);
    utimesSync(join(dir, 'src', f), old, old);
  }
  return { dir, files: Object.keys(files), opens: new Map() };
}

async function produce(s: Setup, es = entries(s)) {
  const cacheDir = join(s.dir, 'cache');
  const store = new BlobStore(join(cacheDir, 'blobs'));
  const hasher = new CountingHasher(cacheDir);
  const producer = new LayerProducer(store, new LayerCache(cacheDir, store), hasher, {
    mtime: new Date(0),
    compression: { algorithm: 'gzip', level: 1 },
  });
  s.opens.clear();
  const r = await producer.fromStep(step, es);
  await producer.save();
  return { ...r, readOnce: hasher.readOnceCalls, opens: Object.fromEntries(s.opens), store, producer, hasher };
}

const big = () => randomBytes(SMALL_FILE_BYTES + 123_457);

describe('each source file is read once per build', () => {
  it('small files: read once into memory (not opened again), then not at all when unchanged', async () => {
    const s = setup('small', { 'a.yml': Buffer.from('a: 1\n'), 'b.yml': Buffer.from('b: 2\n'), 'c.bin': randomBytes(300_000) });
    const first = await produce(s);
    expect(first.how).toBe('built');
    expect(first.readOnce).toBe(3);
    expect(first.opens).toEqual({});
    // The layer is the one a plain write of the same entries gives.
    const plain = await writeLayer(entries(s), new BlobStore(join(s.dir, 'plain')), {
      mtime: new Date(0),
      compression: { algorithm: 'gzip', level: 1 },
    });
    expect(first.layer.descriptor.digest).toBe(plain.descriptor.digest);
    const second = await produce(s);
    expect(second).toMatchObject({ how: 'cached', readOnce: 0, opens: {} });
    expect(second.layer.descriptor.digest).toBe(first.layer.descriptor.digest);
  });

  it('a no-op rebuild neither reads a file nor rewrites files.idx', async () => {
    const s = setup('noop', { 'a.js': randomBytes(3000), 'b.js': randomBytes(5000) });
    const first = await produce(s);
    expect(first.how).toBe('built');
    const record = join(s.dir, 'cache', 'files.idx');
    const before = { text: readFileSync(record, 'utf8'), mtimeMs: statSync(record).mtimeMs };
    const second = await produce(s);
    expect(second).toMatchObject({ how: 'cached', readOnce: 0, opens: {} });
    expect(second.hasher.stats).toMatchObject({ unchanged: 2, hashed: 0, bytesHashed: 0 });
    // The records' use dates are fresh: nothing to write back.
    expect(readFileSync(record, 'utf8')).toBe(before.text);
    expect(statSync(record).mtimeMs).toBe(before.mtimeMs);
  });

  it('many small files over the buffer limit: one pass reading them by readPath, keyed by what it read', async () => {
    // Files of 1-64 KiB coming to more than BUFFER_BYTES: no read into memory first; the
    // writer reads each into its output piece (readPath) and hashes it there.
    const files: Record<string, Buffer> = {};
    let total = 0;
    for (let i = 0; total <= BUFFER_BYTES; i++) {
      // Compressible (quick to write) but each file its own.
      const b = Buffer.concat([randomBytes(32), Buffer.alloc(1024 + ((i * 7919) % (63 << 10)), i & 0xff)]);
      files[`f${String(i).padStart(4, '0')}.js`] = b;
      total += b.length;
    }
    const s = setup('many-small', files);
    const withReadPath = entries(s).map((e) => ({ ...e, readPath: e.hostPath! }));
    const first = await produce(s, withReadPath);
    expect(first).toMatchObject({ how: 'built', readOnce: 0, opens: {} });
    const plain = await writeLayer(entries(s), new BlobStore(join(s.dir, 'plain')), {
      mtime: new Date(0),
      compression: { algorithm: 'gzip', level: 1 },
    });
    expect(first.layer.descriptor.digest).toBe(plain.descriptor.digest);
    expect(first.layer.diffId).toBe(plain.diffId);
    // The hashes learned in that pass make the next build a hit by stat.
    const second = await produce(s, withReadPath);
    expect(second).toMatchObject({ how: 'cached', readOnce: 0, opens: {} });
    expect(second.hasher.stats.hashed).toBe(0);
  });

  it('a big unseen file: one pass (hashed while written), recorded, and a hit by stat next time', async () => {
    const s = setup('big', { app: big(), conf: Buffer.from('x=1\n') });
    const first = await produce(s);
    expect(first).toMatchObject({ how: 'built', readOnce: 0, opens: { app: 1, conf: 1 } });
    const plain = await writeLayer(entries(s), new BlobStore(join(s.dir, 'plain')), {
      mtime: new Date(0),
      compression: { algorithm: 'gzip', level: 1 },
    });
    expect(first.layer.descriptor.digest).toBe(plain.descriptor.digest);
    const second = await produce(s);
    expect(second).toMatchObject({ how: 'cached', readOnce: 0, opens: {} });
    // A changed small file: the big one is known by stat (not read for the key), read once by the write.
    writeFileSync(join(s.dir, 'src', 'conf'), 'x=2\n');
    const third = await produce(s);
    expect(third).toMatchObject({ how: 'built', readOnce: 1, opens: { app: 1 } });
    expect(third.layer.descriptor.digest).not.toBe(first.layer.descriptor.digest);
    // Its record is found by a later build (conf, just written, was too fresh for files.idx:
    // read once for the key, then known by stat).
    utimesSync(join(s.dir, 'src', 'conf'), new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    expect(await produce(s)).toMatchObject({ how: 'cached', readOnce: 1, opens: {} });
    expect(await produce(s)).toMatchObject({ how: 'cached', readOnce: 0, opens: {} });
  });

  it('a changed big file with the same size is read once and rebuilt', async () => {
    const s = setup('same-size', { app: big() });
    const first = await produce(s);
    writeFileSync(join(s.dir, 'src', 'app'), big());
    const second = await produce(s);
    expect(second).toMatchObject({ how: 'built', opens: { app: 1 } });
    expect(second.layer.descriptor.digest).not.toBe(first.layer.descriptor.digest);
  });

  it('a file known by its stat that changes while the layer is written fails the build', async () => {
    const s = setup('racy', { app: big(), conf: Buffer.from('x=1\n') });
    await produce(s);
    writeFileSync(join(s.dir, 'src', 'conf'), 'x=2\n'); // a miss, so the write reads app
    s.onOpen = (host) => {
      if (host.endsWith('/app')) {
        const t = new Date();
        utimesSync(host, t, t);
      }
    };
    await expect(produce(s)).rejects.toThrow(/src\/app changed during the build/);
    s.onOpen = undefined;
  });

  it('two platforms copying the same unseen big file share one write', async () => {
    const s = setup('shared', { app: big() });
    const cacheDir = join(s.dir, 'cache');
    const store = new BlobStore(join(cacheDir, 'blobs'));
    const producer = new LayerProducer(store, new LayerCache(cacheDir, store), new FileHasher(cacheDir), {
      mtime: new Date(0),
      compression: { algorithm: 'gzip', level: 1 },
    });
    const [a, b] = await Promise.all([producer.fromStep(step, entries(s)), producer.fromStep(step, entries(s))]);
    expect([a.how, b.how].sort()).toEqual(['built', 'shared']);
    expect(s.opens.get('app')).toBe(1);
    expect(a.layer).toEqual(b.layer);
  });
});
