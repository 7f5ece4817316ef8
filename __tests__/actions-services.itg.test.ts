import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultArtifactClient } from '@actions/artifact';
import { startAzurite, type TestAzurite } from './helpers/azurite.js';
import { startActionsServices, type ActionsServices, type Job } from './helpers/actions-services.js';
import { uploadDigestMapArtifact } from '../src/github/artifact.js';
import { cachePaths, restoreLayerCache, saveLayerCache } from '../src/github/actions-cache.js';
import type { Logger } from '../src/log.js';

/**
 * The real @actions/artifact and @actions/cache clients, called through our modules, against
 * Azurite behind the results-service stand-in. (The bundled action on the same services:
 * e2e-actions-services.test.ts.) The clients read their service from process.env, so this
 * file sets it for the job it plays.
 */

let azurite: TestAzurite;
let services: ActionsServices;
let dir: string;
const savedEnv = { ...process.env };

function capture() {
  const warn: string[] = [];
  const info: string[] = [];
  const logger: Logger = { info: (m) => info.push(m), warn: (m) => warn.push(m), debug() {}, group: (_n, f) => f() };
  return { logger, warn, info };
}

function actAs(job: Job): void {
  Object.assign(process.env, services.env(job), { GITHUB_WORKSPACE: dir, RUNNER_TEMP: join(dir, 'runner-temp') });
}

beforeAll(async () => {
  azurite = await startAzurite();
  services = await startActionsServices(azurite);
  dir = mkdtempSync(join(tmpdir(), 'oci-build-services-'));
  mkdirSync(join(dir, 'runner-temp'));
});

afterAll(async () => {
  process.env = savedEnv;
  await services?.stop();
  await azurite?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the digest map artifact through the real @actions/artifact client', () => {
  it('is uploaded, listed, downloaded back byte for byte and deleted; a second upload of the name is a warning', async () => {
    const job = services.job();
    actAs(job);
    const file = join(dir, 'image-digests.json');
    const bytes = `${JSON.stringify({ base: { digest: `sha256:${'a'.repeat(64)}`, tags: ['r/base:1'] } }, null, 2)}\n`;
    writeFileSync(file, bytes);
    const c = capture();
    const id = await uploadDigestMapArtifact(file, 'digest-map-build-all', 3, { logger: c.logger });
    expect(c.warn).toEqual([]);
    expect(id).toBeTypeOf('number');
    // The stand-in finalized it only after seeing the zip in Azurite.
    const stored = services.artifacts.find((a) => a.id === id)!;
    expect(stored).toMatchObject({ name: 'digest-map-build-all', runId: job.runId, jobId: job.jobId, finalized: true });
    expect((await services.blobBytes(stored.blob)).subarray(0, 2).toString()).toBe('PK');

    const client = new DefaultArtifactClient();
    const { artifacts } = await client.listArtifacts();
    expect(artifacts.map((a) => ({ id: a.id, name: a.name, size: a.size }))).toEqual([
      { id, name: 'digest-map-build-all', size: stored.size },
    ]);
    const into = join(dir, 'downloaded');
    await client.downloadArtifact(id!, { path: into });
    expect(readdirSync(into)).toEqual(['image-digests.json']);
    expect(readFileSync(join(into, 'image-digests.json'), 'utf8')).toBe(bytes);

    // One name per run: the service refuses it (409), the build goes on.
    const again = capture();
    expect(await uploadDigestMapArtifact(file, 'digest-map-build-all', undefined, { logger: again.logger })).toBeUndefined();
    expect(again.warn[0]).toMatch(/already exists.*give each matrix job its own name/);

    await client.deleteArtifact('digest-map-build-all');
    expect((await client.listArtifacts()).artifacts).toEqual([]);
  });

  it("another run does not see this run's artifacts", async () => {
    actAs(services.job());
    const file = join(dir, 'other.json');
    writeFileSync(file, '{}\n');
    expect(await uploadDigestMapArtifact(file, 'mine', undefined, { logger: capture().logger })).toBeTypeOf('number');
    actAs(services.job());
    expect((await new DefaultArtifactClient().listArtifacts()).artifacts).toEqual([]);
  });

  it('a runtime token the service does not accept: a warning, no artifact, no exception', async () => {
    const job = services.job();
    // The same claims under a signature the service did not make (as an expired or foreign token).
    actAs({ ...job, token: job.token.replace(/\.[^.]+$/, '.Zm9yZ2Vk') });
    const file = join(dir, 'forged.json');
    writeFileSync(file, '{}\n');
    const c = capture();
    expect(await uploadDigestMapArtifact(file, 'forged', undefined, { logger: c.logger })).toBeUndefined();
    expect(c.warn[0]).toMatch(/artifact "forged" not uploaded: .*401/);
    expect(services.artifacts.some((a) => a.name === 'forged')).toBe(false);
  });
});

describe('the layer cache through the real @actions/cache client (cache service v2)', () => {
  const files: Record<string, string> = {
    'blobs/sha256/1f2e': 'layer bytes\n',
    'layers/k1.json': '{"version":1}\n',
    'files.idx': 'oci-build file hashes 2\n',
    'scans/s1.json': '{"scan":1}\n',
  };

  it('a miss on an empty cache, a save, then a hit on a restore key that brings the files back', async () => {
    actAs(services.job());
    const work = join(dir, 'work');
    const keys = (sha: string) => ({
      key: `oci-build-v1-test-scope1-${sha}`,
      restoreKeys: ['oci-build-v1-test-scope1-', 'oci-build-v1-test-'],
    });
    expect(await restoreLayerCache(work, keys('sha1'), capture().logger)).toBeUndefined();
    expect(services.calls.filter((c) => c.method === 'GetCacheEntryDownloadURL')).toEqual([
      { service: 'cache', method: 'GetCacheEntryDownloadURL', status: 200 },
    ]);

    for (const [p, text] of Object.entries(files)) {
      mkdirSync(join(work, p, '..'), { recursive: true });
      writeFileSync(join(work, p), text);
    }
    const saved = capture();
    await saveLayerCache(work, keys('sha1').key, undefined, saved.logger);
    expect(saved.warn).toEqual([]);
    expect(services.caches.map((c) => ({ key: c.key, finalized: c.finalized }))).toEqual([
      { key: 'oci-build-v1-test-scope1-sha1', finalized: true },
    ]);

    // The next run, on a clean machine: the work dir is gone, the commit is new.
    rmSync(work, { recursive: true, force: true });
    actAs(services.job());
    expect(await restoreLayerCache(work, keys('sha2'), capture().logger)).toBe('oci-build-v1-test-scope1-sha1');
    for (const [p, text] of Object.entries(files)) expect(readFileSync(join(work, p), 'utf8')).toBe(text);

    // A cache of another build file (no restore key matches) is not taken.
    rmSync(work, { recursive: true, force: true });
    expect(
      await restoreLayerCache(work, { key: 'oci-build-v1-test-scope2-sha2', restoreKeys: ['oci-build-v1-test-scope2-'] }, capture().logger),
    ).toBeUndefined();
    expect(cachePaths(work).some((p) => existsSync(p))).toBe(false);
  });

  it('a save the service refuses (the key is already stored) is a warning, not an error', async () => {
    actAs(services.job());
    const work = join(dir, 'work2');
    mkdirSync(join(work, 'layers'), { recursive: true });
    writeFileSync(join(work, 'layers', 'k.json'), '{}\n');
    await saveLayerCache(work, 'oci-build-v1-test-twice', undefined, capture().logger);
    const c = capture();
    await saveLayerCache(work, 'oci-build-v1-test-twice', undefined, c.logger);
    expect(c.info).toEqual([]);
    expect(c.warn[0]).toMatch(/layer cache: not saved/);
    expect(services.caches.filter((e) => e.key === 'oci-build-v1-test-twice')).toHaveLength(1);
  });
});
