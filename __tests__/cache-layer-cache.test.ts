import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  statSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyStepKey, FileHasher, LayerCache, type CachedLayer, type KeyEntry } from '../src/cache/layer-cache.js';
import { FileIndex } from '../src/cache/file-index.js';
import { BlobStore } from '../src/layer/blobstore.js';
import type { LayerEntry } from '../src/layer/types.js';
import { writeLayer } from '../src/layer/writer.js';
import { MediaType } from '../src/oci/mediatypes.js';

/** Issue 7: the layer cache's records, its blob checks, and the source file hash cache. */

let work: string;
const sha = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const KEY = 'a'.repeat(64);

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'oci-build-cache-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

function fresh(name: string): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  return d;
}

async function someLayer(store: BlobStore, text = 'hello\n'): Promise<CachedLayer> {
  const content = Buffer.from(text);
  const entries: LayerEntry[] = [
    { path: '/etc', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
    { path: '/etc/motd', type: 'file', mode: 0o644, uid: 0, gid: 0, size: content.length, open: () => Readable.from([content]) },
  ];
  return await writeLayer(entries, store, { mtime: new Date(0), compression: { algorithm: 'gzip', level: 6 } });
}

describe('LayerCache records', () => {
  it('round-trip: put then get gives the same descriptor, diffId and size', async () => {
    const dir = fresh('roundtrip');
    const cache = new LayerCache(dir);
    expect(cache.store.root).toBe(join(dir, 'blobs'));
    const layer = await someLayer(cache.store);
    expect(await cache.get(KEY)).toBeUndefined();
    await cache.put(KEY, layer);
    const got = await cache.get(KEY);
    expect(got).toEqual({
      descriptor: { mediaType: MediaType.OciLayerGzip, digest: layer.descriptor.digest, size: layer.descriptor.size },
      diffId: layer.diffId,
      uncompressedSize: layer.uncompressedSize,
    });
    // A new cache object over the same directory (the next build) sees it too.
    expect(await new LayerCache(dir).get(KEY)).toEqual(got);
    const rec = JSON.parse(readFileSync(join(dir, 'layers', `${KEY}.json`), 'utf8'));
    expect(rec).toEqual({ version: 1, key: KEY, ...got });
    expect(cache.stats).toMatchObject({ hits: 1, misses: 1, puts: 1 });
  });

  it('keeps only descriptor fields that belong to the layer', async () => {
    const cache = new LayerCache(fresh('strip'));
    const layer = await someLayer(cache.store);
    await cache.put(KEY, { ...layer, descriptor: { ...layer.descriptor, annotations: { a: 'b' }, urls: ['http://x'] } });
    expect((await cache.get(KEY))!.descriptor).toEqual({
      mediaType: layer.descriptor.mediaType,
      digest: layer.descriptor.digest,
      size: layer.descriptor.size,
    });
  });

  it('put overwrites an earlier record for the key', async () => {
    const cache = new LayerCache(fresh('overwrite'));
    const a = await someLayer(cache.store, 'a\n');
    const b = await someLayer(cache.store, 'b\n');
    await cache.put(KEY, a);
    await cache.put(KEY, b);
    expect((await cache.get(KEY))!.diffId).toBe(b.diffId);
  });

  it('writes atomically: concurrent puts leave one whole record and no temp files', async () => {
    const dir = fresh('atomic');
    const cache = new LayerCache(dir);
    const layers = await Promise.all(['1', '2', '3', '4'].map((t) => someLayer(cache.store, t)));
    await Promise.all(layers.flatMap((l) => [cache.put(KEY, l), cache.put(KEY, l)]));
    expect(readdirSync(join(dir, 'layers'))).toEqual([`${KEY}.json`]);
    const got = await cache.get(KEY);
    expect(layers.map((l) => l.diffId)).toContain(got!.diffId);
  });

  it('uses the blob store it is given', async () => {
    const store = new BlobStore(fresh('elsewhere-blobs'));
    const cache = new LayerCache(fresh('elsewhere'), store);
    const layer = await someLayer(store);
    await cache.put(KEY, layer);
    expect(await cache.get(KEY)).toMatchObject({ diffId: layer.diffId, descriptor: layer.descriptor });
    // The default store (dir/blobs) does not have that blob: a miss there.
    expect(await new LayerCache(cache.dir).get(KEY)).toBeUndefined();
  });
});

describe('LayerCache misses', () => {
  it('when the blob is missing from the store', async () => {
    const cache = new LayerCache(fresh('noblob'));
    const layer = await someLayer(cache.store);
    await cache.put(KEY, layer);
    rmSync(cache.store.path(layer.descriptor.digest));
    expect(await cache.get(KEY)).toBeUndefined();
    expect(cache.stats.stale).toBe(1);
    // Writing the layer again and recording it heals the entry.
    const again = await someLayer(cache.store);
    await cache.put(KEY, again);
    expect(await cache.get(KEY)).toMatchObject({ diffId: again.diffId, descriptor: again.descriptor });
  });

  it('when the blob has another size (truncated)', async () => {
    const cache = new LayerCache(fresh('truncated'));
    const layer = await someLayer(cache.store);
    await cache.put(KEY, layer);
    truncateSync(cache.store.path(layer.descriptor.digest), 5);
    expect(await cache.get(KEY)).toBeUndefined();
  });

  it('when the record is unreadable or not the one for the key', async () => {
    const dir = fresh('corrupt');
    const cache = new LayerCache(dir);
    const layer = await someLayer(cache.store);
    await cache.put(KEY, layer);
    const other = 'b'.repeat(64);
    // A record copied under another key's name does not count for that key.
    writeFileSync(join(dir, 'layers', `${other}.json`), readFileSync(join(dir, 'layers', `${KEY}.json`)));
    expect(await cache.get(other)).toBeUndefined();
    for (const bad of [
      '',
      '{',
      'null',
      '[]',
      '{"version":2}',
      JSON.stringify({
        version: 1,
        key: KEY,
        descriptor: { mediaType: 'x', digest: 'sha256:zz', size: 1 },
        diffId: layer.diffId,
        uncompressedSize: 1,
      }),
      JSON.stringify({ version: 1, key: KEY, descriptor: layer.descriptor, diffId: layer.diffId, uncompressedSize: -1 }),
    ]) {
      writeFileSync(join(dir, 'layers', `${KEY}.json`), bad);
      expect(await cache.get(KEY)).toBeUndefined();
    }
  });

  it('refuses keys that are not 64 hex digits (no paths out of the cache)', async () => {
    const cache = new LayerCache(fresh('badkey'));
    await expect(cache.get('../../etc/passwd')).rejects.toThrow(/invalid key/);
    await expect(cache.get('A'.repeat(64))).rejects.toThrow(/invalid key/);
    await expect(cache.put('abc', await someLayer(cache.store))).rejects.toThrow(/invalid key/);
  });

  it('refuses invalid layers', async () => {
    const cache = new LayerCache(fresh('badlayer'));
    const layer = await someLayer(cache.store);
    await expect(cache.put(KEY, { ...layer, diffId: 'sha256:nope' as never })).rejects.toThrow(/diffId/);
    await expect(cache.put(KEY, { ...layer, descriptor: { ...layer.descriptor, size: -1 } })).rejects.toThrow(/descriptor/);
    await expect(cache.put(KEY, { ...layer, uncompressedSize: 1.5 })).rejects.toThrow(/uncompressedSize/);
  });
});

describe('FileHasher', () => {
  const PAST = new Date(Date.now() - 3600_000);
  function file(dir: string, name: string, content: string): string {
    const p = join(dir, name);
    writeFileSync(p, content);
    utimesSync(p, PAST, PAST); // outside the racy window
    return p;
  }

  it('hashes a file once per build, even when asked concurrently', async () => {
    const dir = fresh('hasher-once');
    const p = file(dir, 'app', 'binary');
    const h = new FileHasher(join(dir, 'cache'));
    const [a, b] = await Promise.all([h.hash(p), h.hash(p)]);
    expect(a).toBe(sha('binary'));
    expect(b).toBe(a);
    expect(await h.hash(join(dir, '.', 'app'))).toBe(a);
    expect(h.stats).toEqual({ unchanged: 0, hashed: 1, bytesHashed: 6 });
  });

  it('does not read an unchanged file in the next build (stat fast path through files.idx)', async () => {
    const dir = fresh('hasher-fast');
    const cache = join(dir, 'cache');
    const p = file(dir, 'app', 'binary');
    const first = new FileHasher(cache);
    await first.hash(p);
    await first.save();
    const rec = (await FileIndex.read(join(cache, 'files.idx')))!.get(p);
    const st = statSync(p, { bigint: true });
    expect(rec).toMatchObject({ hex: sha('binary').slice(7), sig: `6:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.dev}:${st.mode}` });
    const second = new FileHasher(cache);
    expect(await second.hash(p)).toBe(sha('binary'));
    expect(second.stats).toEqual({ unchanged: 1, hashed: 0, bytesHashed: 0 });
  });

  it('rehashes when size, content (same size, mtime put back), mode or inode changed', async () => {
    const dir = fresh('hasher-changes');
    const cache = join(dir, 'cache');
    const p = file(dir, 'app', 'aaaa');
    const build = async () => {
      const h = new FileHasher(cache);
      const d = await h.hash(p);
      await h.save();
      return { d, h };
    };
    await build();

    writeFileSync(p, 'bbbb');
    utimesSync(p, PAST, PAST); // same size and mtime as before: ctime still moved
    let r = await build();
    expect(r.d).toBe(sha('bbbb'));
    expect(r.h.stats.hashed).toBe(1);

    writeFileSync(p, 'bbbbb');
    utimesSync(p, PAST, PAST);
    r = await build();
    expect(r.d).toBe(sha('bbbbb'));
    expect(r.h.stats.hashed).toBe(1);

    chmodSync(p, 0o755);
    r = await build();
    expect(r.h.stats.hashed).toBe(1);

    // Replaced by another file (new inode), e.g. a fresh checkout or build output.
    const tmp = `${p}.new`;
    writeFileSync(tmp, 'bbbbb');
    utimesSync(tmp, PAST, PAST);
    rmSync(p);
    writeFileSync(p, readFileSync(tmp));
    rmSync(tmp);
    utimesSync(p, PAST, PAST);
    r = await build();
    expect(r.d).toBe(sha('bbbbb'));
    expect(r.h.stats.hashed).toBe(1);

    r = await build();
    expect(r.h.stats).toMatchObject({ unchanged: 1, hashed: 0 });
  });

  it('does not record a file modified just before it was hashed (racy timestamps)', async () => {
    const dir = fresh('hasher-racy');
    const cache = join(dir, 'cache');
    const p = join(dir, 'just-built');
    writeFileSync(p, 'new');
    const h = new FileHasher(cache);
    await h.hash(p);
    await h.save();
    const next = new FileHasher(cache);
    await next.hash(p);
    expect(next.stats.hashed).toBe(1);
    // With the window passed, it is recorded.
    const later = new FileHasher(cache, { now: () => Date.now() + 10_000 });
    await later.hash(p);
    await later.save();
    const last = new FileHasher(cache);
    await last.hash(p);
    expect(last.stats).toMatchObject({ unchanged: 1, hashed: 0 });
  });

  it('save merges with records another build wrote and drops old ones', async () => {
    const dir = fresh('hasher-merge');
    const cache = join(dir, 'cache');
    const a = file(dir, 'a', 'A');
    const b = file(dir, 'b', 'B');
    const c = file(dir, 'c', 'C');
    const h1 = new FileHasher(cache);
    const h2 = new FileHasher(cache);
    await h1.hash(a);
    await h2.hash(b);
    await h1.save();
    await h2.save();
    const recorded = async () => [...(await FileIndex.read(join(cache, 'files.idx')))!.entries()].map(([p]) => p).sort();
    expect(await recorded()).toEqual([a, b]);
    // 31 days later, a build that uses only c drops a and b.
    const later = new FileHasher(cache, { now: () => Date.now() + 31 * 24 * 3600_000 });
    await later.hash(c);
    await later.save();
    expect(await recorded()).toEqual([c]);
  });

  it('starts over from an unreadable files.idx and rejects non-files', async () => {
    const dir = fresh('hasher-bad');
    const cache = join(dir, 'cache');
    mkdirSync(cache);
    writeFileSync(join(cache, 'files.idx'), 'oci-build file hashes 2\n/x\t99\nnot a record\n');
    const p = file(dir, 'a', 'A');
    const h = new FileHasher(cache);
    expect(await h.hash(p)).toBe(sha('A'));
    await expect(h.hash(dir)).rejects.toThrow(/not a regular file/);
    await expect(h.hash(join(dir, 'missing'))).rejects.toThrow(/ENOENT/);
  });
});

describe('a cached build, end to end', () => {
  it('second build of an unchanged copy is a hit without reading the source; a changed source misses', async () => {
    const dir = fresh('e2e');
    const src = join(dir, 'coop');
    writeFileSync(src, 'v1 binary');
    utimesSync(src, new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    const cacheDir = join(dir, 'cache');
    const step = { kind: 'copy' as const, sources: [{ pattern: 'coop', isGlob: false }], to: '/usr/local/bin/coop', mode: 0o755 };

    const build = async () => {
      const cache = new LayerCache(cacheDir);
      const hasher = new FileHasher(cacheDir);
      const size = statSync(src).size;
      const entries: (LayerEntry & { hostPath: string })[] = [
        {
          path: '/usr/local/bin/coop',
          type: 'file',
          mode: 0o755,
          uid: 0,
          gid: 0,
          size,
          hostPath: src,
          open: () => Readable.from([readFileSync(src)]),
        },
      ];
      const keyed = await Promise.all(entries.map(async (e) => ({ ...e, contentHash: await hasher.hash(e.hostPath) })));
      const key = copyStepKey(step, keyed as KeyEntry[], { mtime: 0, compression: { algorithm: 'gzip', level: 6 } });
      let layer = await cache.get(key);
      const hit = layer !== undefined;
      if (!layer) {
        layer = await writeLayer(entries, cache.store, { mtime: new Date(0), compression: { algorithm: 'gzip', level: 6 } });
        await cache.put(key, layer);
      }
      await hasher.save();
      return { key, layer, hit, hashed: hasher.stats.hashed };
    };

    const first = await build();
    expect(first).toMatchObject({ hit: false, hashed: 1 });
    const second = await build();
    expect(second).toMatchObject({ hit: true, hashed: 0, key: first.key });
    expect(second.layer).toEqual({
      descriptor: { ...first.layer.descriptor },
      diffId: first.layer.diffId,
      uncompressedSize: first.layer.uncompressedSize,
    });

    writeFileSync(src, 'v2 binary');
    const third = await build();
    expect(third.hit).toBe(false);
    expect(third.key).not.toBe(first.key);
    expect(third.layer.diffId).not.toBe(first.layer.diffId);
  });
});
