/**
 * `oci-build pull` with the bundled CLI against the real registry, through the fault proxy:
 * a reset mid-blob is resumed, a missing tag or blob and corrupt bytes fail with the image
 * named and nothing written, a real build's digest map is pulled and read by skopeo and podman,
 * and a 1 GiB image pulls with flat memory and a bounded number of log lines.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../src/oci/digest.js';
import { RegistryClient } from '../src/registry/client.js';
import { CLI, cli, ROOT } from './helpers/cli.js';
import { run } from './helpers/exec.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { captureLogger, imageOf, pushDirect, randomLayer, type TestLayer } from './helpers/publish-fixture.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

let work: string;
let reg: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let layers: TestLayer[];
let manifestDigest: Digest;

/** The CLI with its own cache directory (so every pull downloads) and line progress. */
function pull(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const cache = mkdtempSync(join(work, 'cache-'));
  return cli(['pull', ...args, '--cache-dir', cache], { env: { ...process.env, OCI_BUILD_PROGRESS: 'plain', ...extraEnv } });
}

/** Every blob of an OCI layout hashes to its name. */
function checkLayoutBlobs(dir: string): number {
  const blobs = readdirSync(join(dir, 'blobs', 'sha256'));
  for (const b of blobs) expect(sha256(readFileSync(join(dir, 'blobs', 'sha256', b)))).toBe(`sha256:${b}`);
  return blobs.length;
}

async function skopeoDigest(ref: string): Promise<string> {
  const r = await run('skopeo', ['inspect', '--raw', ref]);
  return sha256(Buffer.from(r.stdout));
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'oci-build-pull-'));
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.host);
  client = new RegistryClient({ logger: captureLogger() });
  layers = [randomLayer(3 << 20), randomLayer(700 * 1024), randomLayer(40 * 1024)];
  const image = imageOf(layers, 'pull');
  manifestDigest = image.manifestDescriptor.digest;
  await pushDirect(client, { registry: reg.host, repository: 'test/img' }, image, layers, ['v1']);
});

afterAll(async () => {
  await client?.close();
  await proxy?.close();
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('pull through faults', () => {
  it('resumes a blob whose body is cut mid-way, and writes a verified layout', async () => {
    proxy.reset();
    const big = layers[0]!.layer.descriptor.digest;
    const rule = proxy.add({ method: 'GET', path: new RegExp(`/blobs/${big}`), fault: { kind: 'reset-body', afterBytes: 1 << 20 } });
    const out = join(work, 'resumed');
    const r = await pull([`${proxy.host}/test/img:v1`, '--output', `oci:${out}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(rule.applied).toBe(1);
    // The second request for the blob asked for the rest only (from what arrived before the
    // reset: at most the 1 MiB sent, less when the reset dropped data in flight).
    const resumed = proxy.requests.filter((q) => q.path.includes(big) && q.range).map((q) => Number(/^bytes=(\d+)-$/.exec(q.range!)?.[1]));
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toBeGreaterThan(0);
    expect(resumed[0]).toBeLessThanOrEqual(1 << 20);
    expect(checkLayoutBlobs(out)).toBe(5); // 3 layers, config, manifest
    expect(await skopeoDigest(`oci:${out}:v1`)).toBe(manifestDigest);
    expect(JSON.parse(r.stdout)['v1'].digest).toBe(manifestDigest);
  });

  it('fails on a tag that does not exist, naming the image and what to check', async () => {
    proxy.reset();
    const out = join(work, 'missing-tag');
    const r = await pull([`${proxy.host}/test/img:nope`, '--output', `oci:${out}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${proxy.host}/test/img:nope`);
    expect(r.stderr).toMatch(/check: .*tag or digest exists/);
    expect(existsSync(out)).toBe(false);
  });

  it('fails on a blob the registry answers 404 for, and writes nothing', async () => {
    proxy.reset();
    proxy.add({
      method: 'GET',
      path: new RegExp(`/blobs/${layers[1]!.layer.descriptor.digest}`),
      count: Infinity,
      fault: { kind: 'status', status: 404, body: { errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] } },
    });
    const out = join(work, 'missing-blob.tar');
    const r = await pull([`${proxy.host}/test/img:v1`, '--output', `oci-archive:${out}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${proxy.host}/test/img:v1`);
    expect(r.stderr).toMatch(/pushed completely/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a blob whose bytes do not match its digest, and writes nothing', async () => {
    proxy.reset();
    proxy.add({
      method: 'GET',
      path: new RegExp(`/blobs/${layers[2]!.layer.descriptor.digest}`),
      count: Infinity,
      fault: { kind: 'corrupt-body' },
    });
    const out = join(work, 'corrupt');
    const r = await pull([`${proxy.host}/test/img:v1`, '--output', `oci:${out}`, '--output', `docker-archive:${out}.tar`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/digest mismatch/);
    expect(r.stderr).toContain(`${proxy.host}/test/img:v1`);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.tar`)).toBe(false);
  });

  it('refuses a single image of another platform than --platform asks for', async () => {
    proxy.reset();
    const out = join(work, 'wrong-platform');
    const r = await pull([`${reg.host}/test/img:v1`, '--platform', 'linux/arm64', '--output', `oci:${out}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/single linux\/amd64 image, not linux\/arm64/);
    expect(existsSync(out)).toBe(false);
  });

  it('exits 2 on bad usage', async () => {
    expect((await pull([`${reg.host}/test/img:v1`])).code).toBe(2); // no --output
    expect((await pull(['--output', 'oci:/tmp/x'])).code).toBe(2); // nothing to pull
    expect((await pull(['--digest-map', join(work, 'none.json'), '--output', 'oci:/tmp/x'])).code).toBe(2);
    const help = await pull(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('oci-build pull');
  });
});

describe('pull a digest map of a real build', () => {
  it('pulls every variant by digest into an OCI layout and an archive that skopeo and podman read', async () => {
    const map = join(work, 'basic-map.json');
    const b = await cli(
      [
        'build',
        '--config',
        join(ROOT, 'examples/basic/oci-build.yml'),
        '--push',
        '--tag',
        'v1',
        '--digest-map',
        map,
        '--cache-dir',
        join(work, 'build-cache'),
        '--provenance',
        'false',
        '--sbom',
        'false',
      ],
      { env: { ...process.env, REGISTRY: reg.host } },
    );
    expect(b.code, b.stderr).toBe(0);
    const digests = JSON.parse(readFileSync(map, 'utf8')) as Record<string, { digest: string }>;
    const out = join(work, 'basic-layout');
    const r = await pull(['--digest-map', map, '--output', `oci:${out}`]);
    expect(r.code, r.stderr).toBe(0);
    checkLayoutBlobs(out);
    for (const [variant, e] of Object.entries(digests)) expect(await skopeoDigest(`oci:${out}:${variant}`)).toBe(e.digest);
    const archive = join(work, 'empty.tar');
    const docker = join(work, 'empty-docker.tar');
    const one = await pull([
      '--digest-map',
      map,
      '--variant',
      'empty',
      '--output',
      `oci-archive:${archive}`,
      '--output',
      `docker-archive:${docker}`,
    ]);
    expect(one.code, one.stderr).toBe(0);
    expect(await skopeoDigest(`oci-archive:${archive}:empty`)).toBe(digests.empty!.digest);
    // The docker archive names the image by the map's tags; podman's image id is the config digest.
    const name = `${reg.host}/acme/coop-empty:v1`;
    await run('podman', ['load', '-i', docker]);
    try {
      const inspected = await run('podman', ['image', 'inspect', '--format', '{{.Id}}', name]);
      const config = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${out}:empty`])).stdout).config.digest as string;
      expect(`sha256:${inspected.stdout.trim()}`).toBe(config);
    } finally {
      await run('podman', ['rmi', '-f', name], { allowFail: true });
    }
  });
});

describe('a 1 GiB image', () => {
  it('pulls with flat memory and a bounded number of lines in a pipe', async () => {
    const parts = 4;
    const descriptors: { digest: Digest; size: number; mediaType: string }[] = [];
    for (let i = 0; i < parts; i++) {
      const f = join(work, `big-${i}`);
      await run('sh', ['-c', `head -c ${256 << 20} /dev/urandom > ${f}`]);
      const h = createHash('sha256');
      for await (const c of createReadStream(f)) h.update(c as Buffer);
      const digest = `sha256:${h.digest('hex')}` as Digest;
      await client.uploadBlob({ registry: reg.host, repository: 'test/big' }, digest, 256 << 20, () =>
        createReadStream(f, { highWaterMark: 1 << 20 }),
      );
      descriptors.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: 256 << 20 });
      rmSync(f);
    }
    const fake = descriptors.map((d) => ({
      bytes: Buffer.alloc(0),
      layer: {
        descriptor: d,
        diffId: d.digest,
        createdBy: 'test',
        source: { kind: 'local' as const },
        open: () => Promise.reject(new Error('unused')),
      },
    }));
    const image = imageOf(fake, 'big');
    const repo = { registry: reg.host, repository: 'test/big' };
    await client.uploadBlob(repo, image.configDescriptor.digest, image.configBytes.length, async () =>
      (await import('node:stream')).Readable.from([image.configBytes]),
    );
    await client.putManifest(repo, 'v1', image.manifestDescriptor.mediaType, image.manifestBytes);
    const archive = join(work, 'big.tar');
    const cache = mkdtempSync(join(work, 'cache-'));
    const r = await run(
      '/usr/bin/time',
      ['-v', process.execPath, CLI, 'pull', `${reg.host}/test/big:v1`, '--output', `oci-archive:${archive}`, '--cache-dir', cache],
      { env: { ...process.env, OCI_BUILD_PROGRESS: 'plain', OCI_BUILD_PROGRESS_INTERVAL_MS: '1000' }, allowFail: true, timeoutMs: 600_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const rssKiB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)![1]);
    console.info(`1 GiB pull: peak RSS ${Math.round(rssKiB / 1024)} MiB`);
    expect(rssKiB).toBeLessThan(256 * 1024);
    const seconds = Number(
      /Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):(\d+(?:\.\d+)?)/
        .exec(r.stderr)
        ?.slice(1)
        .reduce((n, x) => n * 60 + Number(x ?? 0), 0) ?? 0,
    );
    const ours = r.stderr.split('\n').filter((l) => l && !/^\t/.test(l) && !/Command being timed/.test(l));
    // One line per blob, one status line per second at most, a summary and the output line.
    expect(ours.length).toBeLessThanOrEqual(parts + Math.ceil(seconds) + 4);
    expect(ours.filter((l) => l.startsWith('…')).length).toBeGreaterThan(0);
    expect(await skopeoDigest(`oci-archive:${archive}:v1`)).toBe(image.manifestDescriptor.digest);
  });
});
