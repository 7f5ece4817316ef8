import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushMultiArchBase } from './helpers/base-image.js';
import { rawTar } from './helpers/raw-layers.js';
import { sha } from './helpers/evil-registry.js';
import { cli } from './helpers/cli.js';

/**
 * Base images are checked before anything is built on them: layers against the config's
 * diff_ids (while the base is scanned, also for a variant without steps), the config's field types, and the config being an
 * object; and a multi-platform result keeps the base's platform variant (arm64/v8).
 */

let reg: TestRegistry;
let root: string;

/** Pushes blobs and a manifest straight to the real registry, with whatever config it is given. */
async function pushImage(repo: string, layerTar: Buffer, config: unknown): Promise<string> {
  const put = async (bytes: Buffer) => {
    const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    const loc = new URL(start.headers.get('location')!, reg.url);
    loc.searchParams.set('digest', sha(bytes));
    const done = await fetch(loc, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(done.status).toBe(201);
    return { digest: sha(bytes), size: bytes.length };
  };
  const gz = gzipSync(layerTar);
  const layer = await put(gz);
  const cfg = await put(Buffer.from(JSON.stringify(config)));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  });
  const r = await fetch(`${reg.url}/v2/${repo}/manifests/1`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  expect(r.status).toBe(201);
  return `${reg.host}/${repo}:1`;
}

const tar = rawTar([
  { name: 'etc/', type: 'Directory' },
  { name: 'etc/hello', content: 'hello\n' },
]);
const goodConfig = (extra: Record<string, unknown> = {}) => ({
  architecture: 'amd64',
  os: 'linux',
  config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
  rootfs: { type: 'layers', diff_ids: [sha(tar)] },
  ...extra,
});

const FILE_STEP = `    steps:
      - file: /etc/built
        content: "built\\n"
`;

async function build(baseRef: string, extraArgs: string[] = [], platforms = '', steps = FILE_STEP, cacheDir?: string) {
  const ctx = mkdtempSync(join(root, 'case-'));
  writeFileSync(
    join(ctx, 'oci-build.yml'),
    `version: 1
variants:
  app:
    image: ${reg.host}/verify/app
    base: ${baseRef}
${platforms}${steps}`,
  );
  const r = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--cache-dir', cacheDir ?? join(ctx, 'cache'), ...extraArgs]);
  return { ...r, ctx };
}

async function appTags(): Promise<string[]> {
  const r = await fetch(`${reg.url}/v2/verify/app/tags/list`);
  return r.status === 404 ? [] : (((await r.json()) as { tags: string[] | null }).tags ?? []);
}

beforeAll(async () => {
  reg = await startRegistry();
  root = mkdtempSync(join(tmpdir(), 'oci-build-verify-'));
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('base image checks', () => {
  it('a good hand-made base builds (the cases below differ from it in one thing)', async () => {
    const ref = await pushImage('base/good', tar, goodConfig());
    const r = await build(ref, ['--push', '--tag', 'ok']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('a base whose diff_ids do not match its layer is refused, nothing pushed', async () => {
    const wrong = sha('some other layer');
    const ref = await pushImage('base/diffids', tar, goodConfig({ rootfs: { type: 'layers', diff_ids: [wrong] } }));
    const before = await appTags();
    const r = await build(ref, ['--push', '--tag', 'diffids']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(
      `base image ${ref}: base layer 1 of 1: its uncompressed content is ${sha(tar)}, but the image config lists diff_id ${wrong}`,
    );
    expect(r.stderr).toMatch(/rebuild it, or use another base/);
    expect(await appTags()).toEqual(before);
  });

  it('a variant without steps still refuses a base whose diff_ids do not match, nothing pushed', async () => {
    const wrong = sha('not this layer either');
    const ref = await pushImage('base/diffids-nosteps', tar, goodConfig({ rootfs: { type: 'layers', diff_ids: [wrong] } }));
    const before = await appTags();
    const r = await build(ref, ['--push', '--tag', 'nosteps'], '', '    env: { A: "1" }\n');
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(
      `base image ${ref}: base layer 1 of 1: its uncompressed content is ${sha(tar)}, but the image config lists diff_id ${wrong}`,
    );
    expect(await appTags()).toEqual(before);
    expect(await appTags()).not.toContain('nosteps');
  });

  it('a good base of a variant without steps is verified and the verification recorded in the cache directory', async () => {
    const ref = await pushImage('base/good-nosteps', tar, goodConfig());
    const cache = join(mkdtempSync(join(root, 'shared-')), 'cache');
    const first = await build(ref, ['--push', '--tag', 'nosteps-ok'], '', '    env: { A: "1" }\n', cache);
    expect(first.code, first.stderr).toBe(0);
    const manifest = await fetch(`${reg.url}/v2/base/good-nosteps/manifests/1`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    const digest = manifest.headers.get('docker-content-digest')!;
    // The record of the verified scan, by the base's manifest digest.
    expect(existsSync(join(cache, 'scans', `${digest.slice(7)}.json`))).toBe(true);
    // A second build with the same cache directory reads that record instead of the layer.
    const again = await build(ref, ['--push', '--tag', 'nosteps-ok2'], '', '    env: { A: "2" }\n', cache);
    expect(again.code, again.stderr).toBe(0);
    expect(await appTags()).toEqual(expect.arrayContaining(['nosteps-ok', 'nosteps-ok2']));
  });

  it('a config field of the wrong type names the base and the field', async () => {
    const ref = await pushImage('base/envstring', tar, goodConfig({ config: { Env: 'PATH=/bin' } }));
    const r = await build(ref, ['--push', '--tag', 'env']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`base image ${ref}: its config's config.Env is a string, not a list of strings`);
    expect(r.stderr).not.toMatch(/is not a function/);
    expect(await appTags()).not.toContain('env');
  });

  it('a config that is not a JSON object is named as such', async () => {
    const ref = await pushImage('base/array', tar, [goodConfig()]);
    const r = await build(ref, ['--push', '--tag', 'array']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`base image ${ref}: its config blob is a list, not a JSON object`);
    expect(await appTags()).not.toContain('array');
  });

  it("a multi-platform image keeps the base index's arm64 variant v8", async () => {
    const multi = await pushMultiArchBase(reg.host);
    const r = await build(
      multi,
      ['--output', 'oci:LAYOUT'.replace('LAYOUT', join(root, 'layout'))],
      '    platforms: [linux/amd64, linux/arm64]\n',
    );
    expect(r.code, r.stderr).toBe(0);
    const blob = (d: string) => JSON.parse(readFileSync(join(root, 'layout', 'blobs', 'sha256', d.slice(7)), 'utf8'));
    const top = JSON.parse(readFileSync(join(root, 'layout', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const index = blob(top.manifests[0]!.digest) as {
      manifests: { digest: string; platform: { architecture: string; variant?: string } }[];
    };
    const arm = index.manifests.find((m) => m.platform.architecture === 'arm64')!;
    expect(arm.platform.variant).toBe('v8');
    expect(blob(blob(arm.digest).config.digest).variant).toBe('v8');
    expect(index.manifests.find((m) => m.platform.architecture === 'amd64')!.platform.variant).toBeUndefined();
  });
});
