import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheKeys, cachePaths, restoreLayerCache, saveLayerCache, type CacheService } from '../src/github/actions-cache.js';
import type { Logger } from '../src/log.js';

function logger(lines: string[]): Logger {
  return { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`), debug: () => {}, group: (_n, f) => f() };
}

function fake(available = true, restoreResult?: string, fail = false) {
  const calls: { op: string; paths: string[]; key: string; restoreKeys?: string[] }[] = [];
  const svc: CacheService = {
    isFeatureAvailable: () => available,
    restoreCache: async (paths, key, restoreKeys) => {
      calls.push({ op: 'restore', paths, key, restoreKeys });
      if (fail) throw new Error('service down');
      return restoreResult;
    },
    saveCache: async (paths, key) => {
      calls.push({ op: 'save', paths, key });
      if (fail) throw new Error('service down');
      return 1;
    },
  };
  return { svc, calls };
}

describe('layer cache across workflow runs (@actions/cache boundary)', () => {
  it('keys depend on the build file, variants and platforms; restore falls back by prefix', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ac-'));
    try {
      writeFileSync(join(dir, 'a.yml'), 'version: 1\n');
      const k1 = await cacheKeys(join(dir, 'a.yml'), ['b', 'a'], [], 'sha1');
      const k2 = await cacheKeys(join(dir, 'a.yml'), ['a', 'b'], [], 'sha2');
      expect(k1.restoreKeys[0]).toBe(k2.restoreKeys[0]); // same build file and variants
      expect(k1.key).not.toBe(k2.key); // each commit saves anew
      writeFileSync(join(dir, 'a.yml'), 'version: 1\n# changed\n');
      const k3 = await cacheKeys(join(dir, 'a.yml'), ['a', 'b'], [], 'sha2');
      expect(k3.restoreKeys[0]).not.toBe(k1.restoreKeys[0]);
      expect(k3.restoreKeys[1]).toBe(k1.restoreKeys[1]); // any earlier cache as a last resort
      expect(k1.key.startsWith(k1.restoreKeys[0]!)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('restores before and saves after, with the cache paths (no extracted root file systems)', async () => {
    const { svc, calls } = fake(true, 'oci-build-v1-old');
    const lines: string[] = [];
    const restored = await restoreLayerCache('/w', { key: 'k', restoreKeys: ['p-'] }, logger(lines), svc);
    expect(restored).toBe('oci-build-v1-old');
    await saveLayerCache('/w', 'k', restored, logger(lines), svc);
    expect(calls.map((c) => c.op)).toEqual(['restore', 'save']);
    expect(calls[0]!.paths).toEqual(cachePaths('/w'));
    expect(calls[0]!.paths).toEqual(['/w/blobs/sha256', '/w/layers', '/w/files.idx', '/w/scans', '/w/keys', '/w/run-cache']);
    expect(calls[0]!.restoreKeys).toEqual(['p-']);
    expect(lines).toContain('info layer cache: restored oci-build-v1-old');
  });

  it('does not save again a cache restored under the same key', async () => {
    const { svc, calls } = fake(true, 'k');
    await saveLayerCache('/w', 'k', 'k', logger([]), svc);
    expect(calls).toEqual([]);
  });

  it('off GitHub (no cache service) and on service failures it only logs', async () => {
    const lines: string[] = [];
    const off = fake(false);
    expect(await restoreLayerCache('/w', { key: 'k', restoreKeys: [] }, logger(lines), off.svc)).toBeUndefined();
    await saveLayerCache('/w', 'k', undefined, logger(lines), off.svc);
    expect(off.calls).toEqual([]);
    const down = fake(true, undefined, true);
    expect(await restoreLayerCache('/w', { key: 'k', restoreKeys: [] }, logger(lines), down.svc)).toBeUndefined();
    await saveLayerCache('/w', 'k', undefined, logger(lines), down.svc);
    expect(lines.filter((l) => l.startsWith('warn'))).toEqual([
      'warn layer cache: restore failed, building without it: service down',
      'warn layer cache: not saved: service down',
    ]);
  });

  it('the real @actions/cache says it is unavailable without the runner service', async () => {
    const saved = { ...process.env };
    delete process.env.ACTIONS_CACHE_URL;
    delete process.env.ACTIONS_RESULTS_URL;
    delete process.env.ACTIONS_RUNTIME_TOKEN;
    try {
      const lines: string[] = [];
      expect(await restoreLayerCache('/w', { key: 'k', restoreKeys: [] }, logger(lines))).toBeUndefined();
      expect(lines.join('\n')).toMatch(/not available here/);
    } finally {
      process.env = saved;
    }
  });
});
