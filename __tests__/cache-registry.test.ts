import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { sha256, type Digest } from '../src/oci/digest.js';
import type { RepoRef } from '../src/registry/client.js';
import { LayerCache } from '../src/cache/layer-cache.js';
import {
  parseCacheRegistry,
  parseRecord,
  readLocations,
  recordBytes,
  recordManifest,
  RegistryLayers,
  writesRecords,
  type RecordEntry,
} from '../src/cache/registry-cache.js';
import { writeRecords } from '../src/cache/registry-cache-write.js';

const d = (s: string): Digest => sha256(Buffer.from(s));
const GZ = 'application/vnd.oci.image.layer.v1.tar+gzip';
const entry = (name: string, size = 100): RecordEntry => ({
  key: d(`key ${name}`).slice(7),
  descriptor: { mediaType: GZ, digest: d(name), size },
  diffId: d(`diff ${name}`),
  uncompressedSize: size * 2,
});
const APP: RepoRef = { registry: 'reg.example', repository: 'acme/app' };

/** An in-memory registry: blobs and manifests per repository. */
function fakeRegistry() {
  const blobs = new Map<string, Buffer | number>(); // repo@digest -> bytes or size only
  const manifests = new Map<string, Buffer>();
  const id = (r: RepoRef) => `${r.registry}/${r.repository}`;
  const calls: string[] = [];
  const client = {
    calls,
    addLayer(repo: RepoRef, e: RecordEntry) {
      blobs.set(`${id(repo)}@${e.descriptor.digest}`, e.descriptor.size);
    },
    async deleteBlob(repo: RepoRef, digest: Digest) {
      blobs.delete(`${id(repo)}@${digest}`);
    },
    async getManifest(repo: RepoRef, ref: string) {
      calls.push(`GET manifest ${ref}`);
      const bytes = manifests.get(`${id(repo)}:${ref}`);
      if (!bytes) throw Object.assign(new Error('manifest unknown'), { status: 404 });
      return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(bytes), bytes };
    },
    async headBlob(repo: RepoRef, digest: Digest) {
      calls.push(`HEAD ${digest}`);
      const b = blobs.get(`${id(repo)}@${digest}`);
      return b === undefined ? undefined : { digest, size: typeof b === 'number' ? b : b.length };
    },
    async getBlob(repo: RepoRef, digest: Digest) {
      const b = blobs.get(`${id(repo)}@${digest}`);
      if (!Buffer.isBuffer(b)) throw Object.assign(new Error('blob unknown'), { status: 404 });
      return Readable.from([b]);
    },
    async blobExists(repo: RepoRef, digest: Digest) {
      return blobs.has(`${id(repo)}@${digest}`);
    },
    async uploadBlob(repo: RepoRef, digest: Digest, _size: number, open: () => Readable) {
      const parts: Buffer[] = [];
      for await (const c of open()) parts.push(c as Buffer);
      blobs.set(`${id(repo)}@${digest}`, Buffer.concat(parts));
    },
    /** As distribution does: refuse a manifest naming a blob the repository does not have. */
    strict: false,
    async putManifest(repo: RepoRef, ref: string, _mt: string, bytes: Buffer) {
      const missing = (JSON.parse(bytes.toString()).layers as { digest: string }[]).filter((l) => !blobs.has(`${id(repo)}@${l.digest}`));
      if (client.strict && missing.length)
        throw Object.assign(new Error('blob unknown to registry'), { status: 400, codes: ['MANIFEST_BLOB_UNKNOWN'] });
      manifests.set(`${id(repo)}:${ref}`, bytes);
      return sha256(bytes);
    },
    async mountBlob(target: RepoRef, digest: Digest, from: string) {
      const b = blobs.get(`${target.registry}/${from}@${digest}`);
      if (b === undefined) return false;
      blobs.set(`${id(target)}@${digest}`, b);
      return true;
    },
  };
  return client;
}

describe('cache-registry setting', () => {
  it('parses auto, false and a repository (tag buildcache unless given)', () => {
    expect(parseCacheRegistry('')).toEqual({ mode: 'auto' });
    expect(parseCacheRegistry('auto')).toEqual({ mode: 'auto' });
    expect(parseCacheRegistry('false')).toEqual({ mode: 'off' });
    expect(parseCacheRegistry('ghcr.io/acme/cache')).toEqual({
      mode: 'ref',
      repo: { registry: 'ghcr.io', repository: 'acme/cache' },
      tag: 'buildcache',
    });
    expect(parseCacheRegistry('127.0.0.1:5000/acme/cache:main')).toEqual({
      mode: 'ref',
      repo: { registry: '127.0.0.1:5000', repository: 'acme/cache' },
      tag: 'main',
    });
    expect(() => parseCacheRegistry(`ghcr.io/acme/cache@${d('x')}`)).toThrow(/digest/);
    expect(() => parseCacheRegistry('Not A Ref')).toThrow(/cache-registry/);
  });

  it('auto reads the pushed repositories when pushing or on Actions, and never writes on pull requests', () => {
    const repos = [APP, APP, { registry: 'reg.example', repository: 'acme/tool' }];
    expect(readLocations({ mode: 'auto' }, { push: true, onActions: false, repos }).map((l) => `${l.repo.repository}:${l.tag}`)).toEqual([
      'acme/app:buildcache',
      'acme/tool:buildcache',
    ]);
    expect(readLocations({ mode: 'auto' }, { push: false, onActions: false, repos })).toEqual([]);
    expect(readLocations({ mode: 'auto' }, { push: false, onActions: true, repos })).toHaveLength(2);
    expect(readLocations({ mode: 'off' }, { push: true, onActions: true, repos })).toEqual([]);
    expect(writesRecords({ mode: 'auto' }, true, 'push').write).toBe(true);
    expect(writesRecords({ mode: 'auto' }, true, 'pull_request').write).toBe(false);
    expect(writesRecords({ mode: 'auto' }, true, 'pull_request_target').write).toBe(false);
    expect(writesRecords({ mode: 'ref', repo: APP, tag: 'c' }, true, 'pull_request').write).toBe(true);
    expect(writesRecords({ mode: 'auto' }, false, 'push').write).toBe(false);
  });
});

describe('registry records', () => {
  it('keeps only entries that agree with the manifest', () => {
    const a = entry('a');
    const b = entry('b');
    const config = recordBytes([a, b]);
    const manifestLayers = [{ ...a.descriptor }, { ...b.descriptor, size: 999 }];
    expect(parseRecord(config, manifestLayers).map((e) => e.key)).toEqual([a.key]);
    expect(parseRecord(config, [])).toEqual([]);
    expect(parseRecord(Buffer.from('{"kind":"other"}'), manifestLayers)).toEqual([]);
    const bad = Buffer.from(
      JSON.stringify({
        kind: 'oci-build-layer-cache',
        version: 1,
        layers: [{ ...JSON.parse(config.toString()).layers[0], key: 'not-hex' }],
      }),
    );
    expect(parseRecord(bad, manifestLayers)).toEqual([]);
  });

  it('a record holds hashes, digests and sizes only', () => {
    const doc = JSON.parse(recordBytes([{ ...entry('a'), shape: d('shape').slice(7) }]).toString());
    expect(Object.keys(doc.layers[0]).sort()).toEqual(['diffId', 'digest', 'key', 'mediaType', 'shape', 'size', 'uncompressedSize']);
    const m = JSON.parse(recordManifest(recordBytes([entry('a')]), [entry('a')]).toString());
    expect(Object.keys(m).sort()).toEqual(['artifactType', 'config', 'layers', 'mediaType', 'schemaVersion']);
  });

  it('a hit needs the blob in the registry with the recorded size; a missing or different one is a miss', async () => {
    const reg = fakeRegistry();
    const [ok, gone, other] = [entry('ok'), entry('gone'), entry('other', 50)];
    reg.addLayer(APP, ok);
    reg.addLayer(APP, other);
    await writeRecords(reg, { mode: 'auto' }, new Map([ok, gone, other].map((e) => [e.key, e])), [
      { repo: APP, layers: new Set([ok, gone, other].map((e) => e.descriptor.digest)) },
    ]);
    // A record claiming another size for `other` (the manifest agrees with the record, the registry does not).
    reg.addLayer(APP, { ...other, descriptor: { ...other.descriptor, size: 51 } });
    const remote = new RegistryLayers(reg, [{ repo: APP, tag: 'buildcache' }], () => {});
    expect(await remote.get(ok.key)).toEqual({
      descriptor: ok.descriptor,
      diffId: ok.diffId,
      uncompressedSize: ok.uncompressedSize,
      remote: APP,
    });
    expect(await remote.get(gone.key)).toBeUndefined();
    expect(await remote.get(other.key)).toBeUndefined();
    expect(remote.stats).toMatchObject({ entries: 3, hits: 1, rejected: 2 });
    expect(await remote.get(entry('unknown').key)).toBeUndefined();
  });

  it('a registry that cannot be read is a warning and no record', async () => {
    const warnings: string[] = [];
    const broken = {
      ...fakeRegistry(),
      getManifest: async () => {
        throw Object.assign(new Error('connection refused'), { status: undefined });
      },
    };
    const remote = new RegistryLayers(broken, [{ repo: APP, tag: 'buildcache' }], (m) => warnings.push(m));
    expect(await remote.get(entry('a').key)).toBeUndefined();
    expect(warnings.join('\n')).toMatch(/could not read reg.example\/acme\/app:buildcache \(connection refused\)/);
  });

  it('a record names only layers pushed to its repository; one repository for all links them by mount', async () => {
    const reg = fakeRegistry();
    const [a, b, stage] = [entry('a'), entry('b'), entry('stage')];
    const TOOL: RepoRef = { registry: 'reg.example', repository: 'acme/tool' };
    reg.addLayer(APP, a);
    reg.addLayer(TOOL, b);
    const used = new Map([a, b, stage].map((e) => [e.key, e]));
    const pushed = [
      { repo: APP, layers: new Set([a.descriptor.digest]) },
      { repo: TOOL, layers: new Set([b.descriptor.digest]) },
    ];
    const written = await writeRecords(reg, { mode: 'auto' }, used, pushed);
    expect(written.map((w) => [w.at.repo.repository, w.entries])).toEqual([
      ['acme/app', 1],
      ['acme/tool', 1],
    ]);
    // The same build again: the records there say the same, nothing is uploaded.
    const again = await writeRecords(reg, { mode: 'auto' }, used, pushed);
    expect(again.map((w) => [w.at.repo.repository, w.entries, w.bytes])).toEqual([
      ['acme/app', 1, 0],
      ['acme/tool', 1, 0],
    ]);
    expect(written.every((w) => w.bytes > 0)).toBe(true);
    const CACHE: RepoRef = { registry: 'reg.example', repository: 'acme/cache' };
    const [one] = await writeRecords(reg, { mode: 'ref', repo: CACHE, tag: 'main' }, used, pushed);
    expect(one!.entries).toBe(2);
    const remote = new RegistryLayers(reg, [{ repo: CACHE, tag: 'main' }], () => {});
    expect((await remote.get(b.key))?.remote).toEqual(CACHE);
    expect(await remote.get(stage.key)).toBeUndefined();
  });
});

describe('writing over an earlier record', () => {
  it("keeps the earlier entries after this build's (other platforms' jobs), and drops them when the registry refuses one", async () => {
    const reg = fakeRegistry();
    reg.strict = true;
    const [amd, arm, next] = [entry('amd64'), entry('arm64'), entry('next')];
    for (const e of [amd, arm, next]) reg.addLayer(APP, e);
    const write = (e: RecordEntry) =>
      writeRecords(reg, { mode: 'auto' }, new Map([[e.key, e]]), [{ repo: APP, layers: new Set([e.descriptor.digest]) }]);
    await write(amd);
    const [w] = await write(arm);
    expect(w!.entries).toBe(2);
    const remote = new RegistryLayers(reg, [{ repo: APP, tag: 'buildcache' }], () => {});
    expect((await remote.load()).size).toBe(2);
    expect([...(await remote.load()).keys()]).toEqual([arm.key, amd.key]);
    // amd64's layer is deleted from the registry: the merged manifest is refused, this build's alone is written.
    await reg.deleteBlob(APP, amd.descriptor.digest);
    const [w2] = await write(next);
    expect(w2!.entries).toBe(2);
    const again = new RegistryLayers(reg, [{ repo: APP, tag: 'buildcache' }], () => {});
    expect([...(await again.load()).keys()]).toEqual([next.key, arm.key]);
  });
});

describe('a rebuild the record already covers', () => {
  it('writes nothing when every entry of this build is in the record as it is (found by fewer keys than the push that wrote it)', async () => {
    const reg = fakeRegistry();
    const [content, chain, run] = [entry('a'), { ...entry('a'), key: d('chain key a').slice(7) }, entry('run')];
    for (const e of [content, run]) reg.addLayer(APP, e);
    const pushed = [{ repo: APP, layers: new Set([content.descriptor.digest, run.descriptor.digest]) }];
    const [w] = await writeRecords(reg, { mode: 'auto' }, new Map([content, chain, run].map((e) => [e.key, e])), pushed);
    expect(w!.entries).toBe(3);
    // A fresh runner found the copy by its chain key only, and the run: layer.
    const [again] = await writeRecords(reg, { mode: 'auto' }, new Map([chain, run].map((e) => [e.key, e])), pushed);
    expect(again).toMatchObject({ entries: 3, bytes: 0 });
    // One entry that says something else (another diffID) is new: written.
    const changed = { ...run, diffId: d('other diff') };
    const [third] = await writeRecords(reg, { mode: 'auto' }, new Map([chain, changed].map((e) => [e.key, e])), pushed);
    expect(third!.bytes).toBeGreaterThan(0);
    const remote = new RegistryLayers(reg, [{ repo: APP, tag: 'buildcache' }], () => {});
    expect((await remote.load()).get(run.key)?.entry.diffId).toBe(changed.diffId);
  });
});

describe('the record read at the start of the build', () => {
  it('a rebuild it already covers reads nothing again and writes nothing; a change reads it again, keeping what another job wrote since', async () => {
    const reg = fakeRegistry();
    const [a, b, other] = [entry('a'), entry('b'), entry('other job')];
    for (const e of [a, b, other]) reg.addLayer(APP, e);
    const pushed = [{ repo: APP, layers: new Set([a.descriptor.digest, b.descriptor.digest]) }];
    await writeRecords(reg, { mode: 'auto' }, new Map([a, b].map((e) => [e.key, e])), pushed);
    const remote = new RegistryLayers(reg, [{ repo: APP, tag: 'buildcache' }], () => {});
    await remote.load();
    reg.calls.length = 0;
    const [noop] = await writeRecords(reg, { mode: 'auto' }, new Map([a, b].map((e) => [e.key, e])), pushed, (at) =>
      remote.readAtStart(at),
    );
    expect(noop).toMatchObject({ entries: 2, bytes: 0 });
    expect(reg.calls.filter((c) => c.startsWith('GET manifest'))).toEqual([]);
    // Another job adds its layer after this build read the record; this build then has a new entry.
    await writeRecords(reg, { mode: 'auto' }, new Map([[other.key, other]]), [{ repo: APP, layers: new Set([other.descriptor.digest]) }]);
    const changed = { ...b, diffId: d('b rebuilt') };
    const [w] = await writeRecords(reg, { mode: 'auto' }, new Map([a, changed].map((e) => [e.key, e])), pushed, (at) =>
      remote.readAtStart(at),
    );
    expect(w!.bytes).toBeGreaterThan(0);
    const now = await new RegistryLayers(reg, [{ repo: APP, tag: 'buildcache' }], () => {}).load();
    expect(now.get(other.key)?.entry.diffId).toBe(other.diffId);
    expect(now.get(b.key)?.entry.diffId).toBe(changed.diffId);
  });
});

describe('layer cache with the registry as second tier', () => {
  it('a local miss is answered by the remote tier and remembered for the next record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-regcache-unit-'));
    try {
      const a = entry('a');
      const remote = {
        get: async (k: string) =>
          k === a.key ? { descriptor: a.descriptor, diffId: a.diffId, uncompressedSize: a.uncompressedSize, remote: APP } : undefined,
        hasShape: async () => false,
      };
      const cache = new LayerCache(dir, undefined, remote);
      expect((await cache.get(a.key, 'f'.repeat(64)))?.remote).toEqual(APP);
      expect(await cache.get(entry('b').key)).toBeUndefined();
      expect(cache.stats).toMatchObject({ hits: 1, misses: 1, remoteHits: 1 });
      expect(cache.used.get(a.key)).toMatchObject({ descriptor: a.descriptor, shape: 'f'.repeat(64) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
