import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultArtifactClient } from '@actions/artifact';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { startAzurite, type TestAzurite } from './helpers/azurite.js';
import { startActionsServices, type ActionsServices, type Job } from './helpers/actions-services.js';
import { runNode, ACTION, parseGithubOutput } from './helpers/cli.js';

/**
 * The bundled action (dist/index.js) with the Actions env of a job pointing at the
 * results-service stand-in and Azurite: the real @actions/artifact and @actions/cache inside
 * it upload the digest map and the layer cache, a later run restores the cache by a restore
 * key, a merge job downloads the partial maps two build jobs uploaded, and a failing service
 * only warns.
 */

const SHA1 = '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const SHA2 = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

let reg: TestRegistry;
let azurite: TestAzurite;
let services: ActionsServices;
let ctx: string;
/** The same RUNNER_TEMP in every run, as on a hosted runner: the cache paths (part of the cache version) stay the same. */
let runnerTemp: string;
const logs: string[] = [];
const tokens: string[] = [];

beforeAll(async () => {
  reg = await startRegistry();
  const base = await pushBusyboxBase(reg.host);
  azurite = await startAzurite();
  services = await startActionsServices(azurite);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-svc-e2e-'));
  runnerTemp = join(ctx, 'runner-temp');
  writeFileSync(join(ctx, 'coop'), '#!/bin/sh\necho coop\n');
  writeFileSync(
    join(ctx, 'oci-build.yml'),
    `version: 1
variants:
  alpha:
    base: ${base.single}
    steps:
      - copy: coop
        to: /usr/local/bin/coop
        mode: "0755"
  beta:
    base: ${base.single}
    steps:
      - file: /etc/beta
        content: beta
`,
  );
  writeFileSync(
    join(ctx, 'event.json'),
    JSON.stringify({
      repository: { name: 'Coop', full_name: 'Acme/Coop', default_branch: 'main', html_url: 'https://github.com/Acme/Coop' },
    }),
  );
}, 300_000);

afterAll(async () => {
  await services?.stop();
  await azurite?.dispose();
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

async function runAction(job: Job, tag: string, extra: Record<string, string> = {}) {
  const out = join(ctx, `output-${tag}`);
  writeFileSync(out, '');
  tokens.push(job.token);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    RUNNER_TEMP: runnerTemp,
    GITHUB_OUTPUT: out,
    GITHUB_WORKSPACE: ctx,
    GITHUB_REPOSITORY: 'Acme/Coop',
    GITHUB_SHA: SHA1,
    GITHUB_JOB: 'images',
    GITHUB_ACTOR: 'octocat',
    GITHUB_EVENT_NAME: 'push',
    GITHUB_EVENT_PATH: join(ctx, 'event.json'),
    GITHUB_REF: 'refs/heads/main',
    SOURCE_DATE_EPOCH: '1700000000',
    ...services.env(job),
    INPUT_CONFIG: join(ctx, 'oci-build.yml'),
    INPUT_IMAGES: `${reg.host}/acme/svc-\${variant}`,
    INPUT_TAGS: 'type=sha',
    INPUT_PUSH: 'true',
    'INPUT_DIGEST-MAP': join(ctx, `digests-${tag}.json`),
    'INPUT_ARTIFACT-NAME': 'auto',
    INPUT_SUMMARY: 'false',
    // The Actions cache is what is tested here: the registry's copy of the cache records stays off.
    'INPUT_CACHE-REGISTRY': 'false',
    ...extra,
  };
  const r = await runNode(ACTION, [], { env, cwd: ctx });
  logs.push(r.stdout, r.stderr);
  return { ...r, outputs: parseGithubOutput(readFileSync(out, 'utf8')), digestMap: join(ctx, `digests-${tag}.json`) };
}

/** The real artifact client, as a later step of `job` would use it. */
function artifactClientOf(job: Job): DefaultArtifactClient {
  Object.assign(process.env, services.env(job), { GITHUB_WORKSPACE: ctx });
  return new DefaultArtifactClient();
}

/** The layer records in the work dir: name -> modification time and content. */
function layerRecords(): Map<string, { mtimeMs: number; text: string }> {
  const dir = join(runnerTemp, 'oci-build', 'layers');
  return new Map(
    readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => [f, { mtimeMs: statSync(join(dir, f)).mtimeMs, text: readFileSync(join(dir, f), 'utf8') }]),
  );
}

describe('the action with the Actions artifact and cache services', () => {
  let first: Awaited<ReturnType<typeof runAction>>;
  let firstRecords: Map<string, { mtimeMs: number; text: string }>;

  it('a build uploads the digest map artifact and, after a cache miss, saves the layer cache', async () => {
    const job = services.job();
    const t0 = Date.now();
    first = await runAction(job, 'first');
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const id = Number(first.outputs['artifact-id']);
    expect(id).toBeGreaterThan(0);

    // Listed and downloaded back through the real client: the digest map file, byte for byte.
    const client = artifactClientOf(job);
    const { artifacts } = await client.listArtifacts();
    expect(artifacts.map((a) => [a.id, a.name])).toEqual([[id, 'digest-map-images-all']]);
    const into = join(ctx, 'downloaded-first');
    await client.downloadArtifact(id, { path: into });
    expect(readdirSync(into)).toEqual(['digests-first.json']);
    expect(readFileSync(join(into, 'digests-first.json'))).toEqual(readFileSync(first.digestMap));
    expect(Object.keys(JSON.parse(readFileSync(first.digestMap, 'utf8'))).sort()).toEqual(['alpha', 'beta']);

    // A miss (nothing stored yet), so every layer record was written by this run...
    expect(services.calls.filter((c) => c.method === 'GetCacheEntryDownloadURL').map((c) => c.status)).toEqual([200]);
    firstRecords = layerRecords();
    expect(firstRecords.size).toBeGreaterThanOrEqual(2);
    for (const r of firstRecords.values()) expect(r.mtimeMs).toBeGreaterThanOrEqual(t0 - 1000);
    // ...and saved under this commit's key, the archive really in Azurite.
    expect(services.caches).toHaveLength(1);
    const entry = services.caches[0]!;
    expect(entry).toMatchObject({ finalized: true });
    expect(entry.key).toMatch(new RegExp(`^oci-build-v1-${process.platform}-${process.arch}-[0-9a-f]{16}-${SHA1}$`));
    expect((await services.blobBytes(entry.blob)).length).toBe(entry.size);
  });

  it('the next run, with an empty work dir and a new commit, restores the layer cache by a restore key', async () => {
    expect(firstRecords, 'the first run ran').toBeDefined();
    rmSync(join(runnerTemp, 'oci-build'), { recursive: true, force: true });
    const t1 = Date.now();
    const second = await runAction(services.job(), 'second', { GITHUB_SHA: SHA2 });
    expect(second.code, second.stdout + second.stderr).toBe(0);
    // (Not the same image digests: the revision label carries the commit.)
    expect(Object.keys(JSON.parse(second.outputs.digests!)).sort()).toEqual(['alpha', 'beta']);
    // The first run's records are back, with the first run's times: extracted from the cache
    // archive and used as they were. A layer cache miss would have written them anew.
    const records = layerRecords();
    expect([...records.keys()].sort()).toEqual([...firstRecords.keys()].sort());
    for (const [name, r] of records) {
      expect(r.text).toBe(firstRecords.get(name)!.text);
      expect(r.mtimeMs, name).toBeLessThan(t1);
      expect(Math.abs(r.mtimeMs - firstRecords.get(name)!.mtimeMs), name).toBeLessThan(1000);
      const digest = (JSON.parse(r.text) as { descriptor: { digest: string } }).descriptor.digest;
      expect(statSync(join(runnerTemp, 'oci-build', 'blobs', 'sha256', digest.slice(7))).mtimeMs).toBeLessThan(t1);
    }
    // Restored under the first commit's key, saved again under this one's.
    expect(services.caches.map((c) => c.key.slice(-40))).toEqual([SHA1, SHA2]);
  });

  it('mode merge downloads the partial digest maps two build jobs of the run uploaded', async () => {
    const run = services.job().runId;
    const jobs = { alpha: services.job(run), beta: services.job(run) };
    const built: Record<string, string> = {};
    for (const [variant, job] of Object.entries(jobs)) {
      const r = await runAction(job, `part-${variant}`, { INPUT_VARIANTS: variant, INPUT_DISTRIBUTE: 'true', INPUT_CACHE: 'false' });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      Object.assign(built, JSON.parse(r.outputs.digests!));
    }
    expect(Object.keys(built).sort()).toEqual(['alpha', 'beta']);
    const merge = services.job(run);
    const m = await runAction(merge, 'merge', { INPUT_MODE: 'merge', INPUT_CACHE: 'false' });
    expect(m.code, m.stdout + m.stderr).toBe(0);
    expect(JSON.parse(m.outputs.digests!)).toEqual(built);
    // The merged map is itself an artifact of the run, beside the build jobs' ones.
    const names = (await artifactClientOf(merge).listArtifacts()).artifacts.map((a) => a.name).sort();
    expect(names).toEqual([
      'digest-map-images-all-merged',
      'digest-map-images-alpha',
      'digest-map-images-beta',
      'oci-build-partial-images-alpha',
      'oci-build-partial-images-beta',
    ]);
    expect(Number(m.outputs['artifact-id'])).toBeGreaterThan(0);
  });

  it('a failing artifact service (500 on CreateArtifact) and a refused cache save: warnings, the build passes with its outputs', async () => {
    // @actions/artifact retries a 500 five times with backoff (about 30 s here); a 409 on
    // CreateCacheEntry (another job saving the key) is not retried.
    services.fail('CreateArtifact', 500);
    services.fail('CreateCacheEntry', 409);
    try {
      rmSync(join(runnerTemp, 'oci-build'), { recursive: true, force: true });
      const job = services.job();
      const r = await runAction(job, 'failing', { GITHUB_SHA: '3333333ccccccccccccccccccccccccccccccccc' });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(Object.keys(JSON.parse(r.outputs.digests!)).sort()).toEqual(['alpha', 'beta']);
      expect(r.outputs.pushed).toBe('true');
      expect(r.outputs['artifact-id']).toBe('');
      expect(readFileSync(r.digestMap, 'utf8')).toContain('"alpha"');
      const warnings = r.stdout.split('\n').filter((l) => l.startsWith('::warning::'));
      expect(warnings.some((w) => w.includes('digest map artifact "digest-map-images-all" not uploaded'))).toBe(true);
      expect(warnings.some((w) => w.includes('layer cache: not saved'))).toBe(true);
      expect(services.artifacts.filter((a) => a.jobId === job.jobId)).toEqual([]);
      expect(services.caches.some((c) => c.key.endsWith('3333333ccccccccccccccccccccccccccccccccc'))).toBe(false);
    } finally {
      services.clearFaults();
    }
  });

  it('the blob storage down (Azurite stopped): restore, save and upload fail with warnings, the build passes with its outputs', async () => {
    rmSync(join(runnerTemp, 'oci-build'), { recursive: true, force: true });
    const sha = '4444444ddddddddddddddddddddddddddddddddd';
    // The service still answers; the clients fail on the SAS URLs after the Azure SDK's and
    // their own retries (about 45 s in all).
    await azurite.stop();
    try {
      const job = services.job();
      const t = Date.now();
      const r = await runAction(job, 'storage-down', { GITHUB_SHA: sha });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(Object.keys(JSON.parse(r.outputs.digests!)).sort()).toEqual(['alpha', 'beta']);
      expect(r.outputs['artifact-id']).toBe('');
      const warnings = r.stdout.split('\n').filter((l) => l.startsWith('::warning::'));
      expect(warnings.some((w) => w.includes('digest map artifact "digest-map-images-all" not uploaded'))).toBe(true);
      expect(warnings.some((w) => w.includes('layer cache: not saved'))).toBe(true);
      // A cache was found but could not be fetched: the layers were built (not half-restored).
      for (const rec of layerRecords().values()) expect(rec.mtimeMs).toBeGreaterThanOrEqual(t - 1000);
      // The service handed out upload URLs, but nothing reached the storage: nothing was finalized.
      expect(services.artifacts.filter((a) => a.jobId === job.jobId).map((a) => a.finalized)).toEqual([false]);
      expect(services.caches.filter((c) => c.key.endsWith(sha)).map((c) => c.finalized)).toEqual([false]);
    } finally {
      await azurite.start();
    }
  });

  it('no runtime token appears in any log line', () => {
    const all = logs.join('\n');
    expect(all.split('\n').length).toBeGreaterThan(50);
    expect(tokens.length).toBeGreaterThanOrEqual(6);
    for (const t of tokens) {
      expect(all).not.toContain(t);
      expect(all).not.toContain(t.split('.')[2]!); // not even its signature
    }
  });
});
