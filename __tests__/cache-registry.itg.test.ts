import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { cli } from './helpers/cli.js';
import { run } from './helpers/exec.js';

/**
 * Issue 16: the layer cache's records kept in the registry. A build on an empty cache directory
 * reads the record the last push wrote: run: commands do not run (a counter outside the image
 * says so), no layer is compressed, nothing is uploaded, the base is neither downloaded nor
 * scanned and no layer is listed (every key comes from diffIDs and the steps' own inputs); the
 * record's layers are read once each, to check their diffIDs. Every registry request goes
 * through a recording proxy.
 */

const TOKEN = 'tok-7f3a9c-never-in-a-record';
let reg: TestRegistry;
let proxy: FaultProxy;
let counter: Server;
let hits = 0;
let port = 0;
let ctx: string;
let baseRef: string;

function buildFile(repo: string): string {
  return `version: 1
args:
  TOKEN: ${TOKEN}
variants:
  app:
    image: ${proxy.host}/${repo}
    base: ${baseRef}
    steps:
      - copy: big.bin
        to: /opt/big.bin
      - copy: small.txt
        to: /opt/small.txt
      - run: /bin/busybox wget -q -O /opt/hit http://127.0.0.1:${port}/hit && echo "$TOKEN" | sha256sum > /opt/token.sum
        env: { TOKEN: "\${TOKEN}" }
`;
}

interface Built {
  digest: string;
  origins: string[];
  /** Per own layer: taken from a registry record. */
  fromRegistry: boolean[];
  layers: string[];
  base: string[];
  rootfs: { layersExtracted: number };
  stderr: string;
}

async function build(
  repo: string,
  cacheDir: string,
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
  text = buildFile(repo),
  variant = 'app',
): Promise<Built> {
  const file = join(ctx, `${repo.replace(/\//g, '-')}.yml`);
  writeFileSync(file, text);
  // The SBOM reads every layer (it needs their bytes): off, so what is fetched is what the build needs.
  const r = await cli(['build', '--config', file, '--push', '--sbom', 'false', '--cache-dir', cacheDir, '--verbose', ...extra], {
    env: { ...process.env, GITHUB_EVENT_NAME: '', ...env },
  });
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as {
    digestMap: Record<string, { digest: string }>;
    layers: { variant: string; createdBy: string; origin: string; digest: string; fromRegistry?: boolean }[];
    rootfs: { layersExtracted: number };
  };
  const mine = out.layers.filter((l) => l.variant === variant);
  const own = mine.filter((l) => l.origin !== 'base');
  return {
    digest: out.digestMap[variant]!.digest,
    origins: own.map((l) => l.origin),
    fromRegistry: own.map((l) => l.fromRegistry === true),
    layers: own.map((l) => l.digest),
    base: mine.filter((l) => l.origin === 'base').map((l) => l.digest),
    rootfs: out.rootfs,
    stderr: r.stderr,
  };
}

const blobGets = (digest: string) => proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`)).length;

/** The record's manifest and config in the registry, read with skopeo. */
async function record(repoTag: string): Promise<{ manifest: string; config: string } | undefined> {
  const ref = `docker://${reg.host}/${repoTag}`;
  const m = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ref], { allowFail: true });
  if (m.code !== 0) return undefined;
  const config = (await run('skopeo', ['inspect', '--raw', '--config', '--tls-verify=false', ref])).stdout;
  return { manifest: m.stdout, config };
}

const blobUploadBytes = () =>
  proxy.requests
    .filter((r) => (r.method === 'PATCH' || r.method === 'PUT') && r.path.includes('/blobs/uploads/'))
    .reduce((n, r) => n + r.requestBytes, 0);
const fresh = (name: string) => join(ctx, `cache-${name}`);

beforeAll(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.host);
  baseRef = (await pushBusyboxBase(reg.host)).single.replace(reg.host, proxy.host);
  counter = createServer((req, res) => {
    if (req.url === '/hit') hits++;
    res.end('ok\n');
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', () => r()));
  port = (counter.address() as { port: number }).port;
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-regcache-'));
  // Bigger than the producer buffers (1 MiB): on an empty cache it would be compressed while
  // hashed, unless the record says a layer of exactly these entries exists.
  let block = createHash('sha256').update('seed').digest();
  const parts: Buffer[] = [];
  for (let i = 0; i < (3 << 20) / 32; i++) {
    block = createHash('sha256').update(block).digest();
    parts.push(block);
  }
  writeFileSync(join(ctx, 'big.bin'), Buffer.concat(parts));
  writeFileSync(join(ctx, 'small.txt'), 'small\n');
});

afterAll(async () => {
  await new Promise((r) => counter?.close(r));
  await proxy?.close();
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('registry cache (cache-registry)', () => {
  let first: Built;

  it('a push writes a small record naming the pushed layers, without secrets or build-arg values', async () => {
    first = await build('test/app', fresh('a'));
    expect(first.origins).toEqual(['built', 'built', 'built']);
    expect(hits).toBe(1);
    const rec = await record('test/app:buildcache');
    expect(rec).toBeDefined();
    const manifest = JSON.parse(rec!.manifest);
    expect(manifest.artifactType).toBe('application/vnd.oci-build.layer-cache.v1');
    expect(manifest.layers.map((l: { digest: string }) => l.digest).sort()).toEqual([...first.layers].sort());
    const config = JSON.parse(rec!.config) as { layers: { key: string; digest: string }[] };
    // Each copy layer under its content key and its chain key, the run: layer under its key.
    expect(config.layers).toHaveLength(5);
    expect(new Set(config.layers.map((l) => l.key)).size).toBe(5);
    expect([...new Set(config.layers.map((l) => l.digest))].sort()).toEqual([...first.layers].sort());
    expect(rec!.manifest.length + rec!.config.length).toBeLessThan(4096);
    for (const text of [rec!.manifest, rec!.config]) {
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain('wget');
    }
  });

  it('a build on an empty cache directory runs no command, builds no layer, uploads nothing, never downloads the base', async () => {
    proxy.reset();
    const dir = fresh('b');
    const b = await build('test/app', dir);
    expect(b.origins).toEqual(['cached', 'cached', 'cached']);
    expect(b.fromRegistry).toEqual([true, true, true]);
    expect(hits).toBe(1);
    expect(b.digest).toBe(first.digest);
    // Only the manifest goes up (PUT of the manifests is not a blob upload); the record is unchanged.
    expect(blobUploadBytes()).toBe(0);
    // The base's layers are never fetched: keys come from its config's diffIDs.
    expect(b.base.length).toBeGreaterThan(0);
    for (const d of b.base) expect(blobGets(d)).toBe(0);
    // Nothing scanned or listed: no file system view was needed.
    expect(existsSync(join(dir, 'scans'))).toBe(false);
    expect(existsSync(join(dir, 'listings'))).toBe(false);
    expect(b.rootfs.layersExtracted).toBe(0);
    // Each record layer is checked with HEAD, then read once for its diffID.
    for (const d of first.layers) {
      expect(proxy.requests.some((r) => r.method === 'HEAD' && r.path.endsWith(`/blobs/${d}`))).toBe(true);
      expect(blobGets(d)).toBe(1);
    }
  });

  it("a copy from a stage is found by its alias in the record: the stage's file system is not made", async () => {
    const text = `version: 1
variants:
  tools:
    base: ${baseRef}
    stage: true
    steps:
      - copy: small.txt
        to: /src/small.txt
  fromtools:
    image: ${proxy.host}/test/alias
    base: ${baseRef}
    steps:
      - { copy: /src/small.txt, from: tools, to: /opt/from-tools.txt }
`;
    const a = await build('test/alias', fresh('alias1'), [], {}, text, 'fromtools');
    expect(a.origins).toEqual(['built']);
    const config = JSON.parse((await record('test/alias:buildcache'))!.config) as { layers: { digest: string }[] };
    // The content key and the alias (a stage's own layers are not pushed, so not recorded).
    expect(config.layers.map((l) => l.digest)).toEqual([a.layers[0], a.layers[0]]);
    const b = await build('test/alias', fresh('alias2'), [], {}, text, 'fromtools');
    expect(b.origins).toEqual(['cached']);
    expect(b.fromRegistry).toEqual([true]);
    expect(b.digest).toBe(a.digest);
    expect(b.rootfs.layersExtracted).toBe(0);
  });

  it('a Dockerfile (WORKDIR, COPY into it, RUN) on an empty cache directory: everything from the record, the base never downloaded', async () => {
    writeFileSync(
      join(ctx, 'Dockerfile'),
      `ARG BASE\nFROM \${BASE}\nWORKDIR /srv/app\nCOPY small.txt big.bin ./\nRUN /bin/busybox wget -q -O /srv/hit http://127.0.0.1:${port}/hit\n`,
    );
    const text = `version: 1
variants:
  df:
    image: ${proxy.host}/test/df
    dockerfile: Dockerfile
    args: { BASE: "${baseRef}" }
`;
    const before = hits;
    const a = await build('test/df', fresh('df1'), [], {}, text, 'df');
    expect(a.origins).toEqual(['built', 'built', 'built']);
    expect(hits).toBe(before + 1);
    proxy.reset();
    const dir = fresh('df2');
    const b = await build('test/df', dir, [], {}, text, 'df');
    expect(b.origins).toEqual(['cached', 'cached', 'cached']);
    expect(b.fromRegistry).toEqual([true, true, true]);
    expect(hits).toBe(before + 1);
    expect(b.digest).toBe(a.digest);
    for (const d of b.base) expect(blobGets(d)).toBe(0);
    expect(existsSync(join(dir, 'scans'))).toBe(false);
    expect(existsSync(join(dir, 'listings'))).toBe(false);
  });

  it('a record whose blob is missing from the registry is ignored: that layer is built again', async () => {
    const runLayer = first.layers[2]!;
    const del = await fetch(`${reg.url}/v2/test/app/blobs/${runLayer}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const before = hits;
    const c = await build('test/app', fresh('c'));
    expect(c.origins).toEqual(['cached', 'cached', 'built']);
    expect(hits).toBe(before + 1);
    expect(c.digest).toBe(first.digest);
  });

  it('a record saying a layer unpacks to something else is not trusted: the command runs', async () => {
    // Rewrite the record in the registry: the run: layer's entry gets another diffID.
    const m = (await (
      await fetch(`${reg.url}/v2/test/app/manifests/buildcache`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    ).json()) as { mediaType: string; config: { digest: string; size: number } };
    const config = (await (await fetch(`${reg.url}/v2/test/app/blobs/${m.config.digest}`)).json()) as {
      layers: { digest: string; diffId: string }[];
    };
    // ... and so does the big copy layer's (under its content key and its chain key).
    for (const l of config.layers) if (l.digest === first.layers[2] || l.digest === first.layers[0]) l.diffId = `sha256:${'0'.repeat(64)}`;
    const bytes = Buffer.from(JSON.stringify(config));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const session = (await fetch(`${reg.url}/v2/test/app/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
    const put = new URL(session, reg.url);
    put.searchParams.set('digest', digest);
    expect((await fetch(put, { method: 'PUT', body: bytes })).status).toBe(201);
    m.config = { ...m.config, digest, size: bytes.length };
    const res = await fetch(`${reg.url}/v2/test/app/manifests/buildcache`, {
      method: 'PUT',
      headers: { 'content-type': m.mediaType },
      body: JSON.stringify(m),
    });
    expect(res.status).toBe(201);
    const before = hits;
    const f = await build('test/app', fresh('forged'));
    // The forged two are made here; the small copy layer is the record's (taken by the first
    // attempt, reused by the attempt after the check failed: cached, or shared with that attempt).
    expect([f.origins[0], f.origins[2]]).toEqual(['built', 'built']);
    expect(['cached', 'shared']).toContain(f.origins[1]);
    expect(f.fromRegistry).toEqual([false, true, false]);
    expect(hits).toBe(before + 1);
    expect(f.digest).toBe(first.digest);
  });

  it('is not written on pull requests with auto; a repository given explicitly is written there', async () => {
    await build('test/pr', fresh('pr1'), [], { GITHUB_EVENT_NAME: 'pull_request' });
    expect(await record('test/pr:buildcache')).toBeUndefined();
    await build('test/pr', fresh('pr2'), ['--cache-registry', `${proxy.host}/test/cache:main`], { GITHUB_EVENT_NAME: 'pull_request' });
    expect(await record('test/pr:buildcache')).toBeUndefined();
    expect(await record('test/cache:main')).toBeDefined();
    // Read back from there on another empty cache: nothing runs.
    const before = hits;
    const d = await build('test/pr', fresh('pr3'), ['--cache-registry', `${proxy.host}/test/cache:main`]);
    expect(d.origins).toEqual(['cached', 'cached', 'cached']);
    expect(hits).toBe(before);
  });

  it('cache-registry false neither reads nor writes', async () => {
    const before = hits;
    const e = await build('test/app', fresh('e'), ['--cache-registry', 'false']);
    expect(e.origins).toEqual(['built', 'built', 'built']);
    expect(hits).toBe(before + 1);
    await build('test/off', fresh('off'), ['--cache-registry', 'false']);
    expect(await record('test/off:buildcache')).toBeUndefined();
  });
});
