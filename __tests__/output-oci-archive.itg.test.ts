import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase, type BaseImages } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';
import { validateOci } from './helpers/oci-schema.js';

/**
 * The oci-archive: output: an OCI layout in one tar, read by skopeo (oci-archive: transport)
 * and podman load, its index.json and every manifest and config valid against the OCI schemas.
 */

let reg: TestRegistry;
let base: BaseImages;
let ctx: string;
let archive: string;
let unpacked: string;
let map: Record<string, { digest: string }>;
const podmanRef = 'localhost/oci-archive-test:loaded';

beforeAll(async () => {
  reg = await startRegistry();
  base = await pushBusyboxBase(reg.host);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-archive-'));
  writeFileSync(
    join(ctx, 'oci-build.yml'),
    `version: 1
variants:
  plain:
    base: ${base.single}
    steps:
      - file: /etc/greeting
        content: "hello from the archive\\n"
    cmd: [cat, /etc/greeting]
  multi:
    base: scratch
    platforms: [linux/amd64, linux/arm64]
    steps:
      - file: /etc/multi
        content: "two platforms\\n"
`,
  );
  archive = join(ctx, 'out', 'images.tar');
  const r = await cli([
    'build',
    '--config',
    join(ctx, 'oci-build.yml'),
    '--output',
    `oci-archive:${archive}`,
    '--cache-dir',
    join(ctx, 'cache'),
  ]);
  expect(r.code, r.stderr).toBe(0);
  map = JSON.parse(r.stdout) as typeof map;
  unpacked = join(ctx, 'unpacked');
  mkdirSync(unpacked);
  await run('tar', ['-xf', archive, '-C', unpacked]);
});

afterAll(async () => {
  await run('podman', ['rmi', '-f', podmanRef], { allowFail: true });
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('oci-archive: output', () => {
  it('holds a schema-valid OCI layout naming each variant, with every blob under its digest', () => {
    expect(validateOci('layout', JSON.parse(readFileSync(join(unpacked, 'oci-layout'), 'utf8')))).toEqual([]);
    const index = JSON.parse(readFileSync(join(unpacked, 'index.json'), 'utf8')) as {
      manifests: { digest: string; mediaType: string; artifactType?: string; annotations: Record<string, string> }[];
    };
    expect(validateOci('index', index)).toEqual([]);
    // The attestations are listed too (artifactType, no ref name): see attest-e2e.itg.test.ts.
    const images = index.manifests.filter((m) => !m.artifactType);
    expect(images.every((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toBe(true);
    const byName = Object.fromEntries(images.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m]));
    expect(Object.keys(byName).sort()).toEqual(['multi', 'plain']);
    expect(byName.plain!.digest).toBe(map.plain!.digest);
    expect(byName.multi!.digest).toBe(map.multi!.digest);
    expect(byName.multi!.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const blob = (d: string) => JSON.parse(readFileSync(join(unpacked, 'blobs/sha256', d.slice(7)), 'utf8'));
    const multi = blob(byName.multi!.digest) as { manifests: { digest: string }[] };
    expect(validateOci('index', multi)).toEqual([]);
    expect(multi.manifests).toHaveLength(2);
    for (const d of [byName.plain!.digest, ...multi.manifests.map((m) => m.digest)]) {
      const manifest = blob(d) as { config: { digest: string } };
      expect(validateOci('manifest', manifest)).toEqual([]);
      expect(validateOci('config', blob(manifest.config.digest))).toEqual([]);
    }
    for (const f of readdirSync(join(unpacked, 'blobs/sha256'))) {
      expect(
        createHash('sha256')
          .update(readFileSync(join(unpacked, 'blobs/sha256', f)))
          .digest('hex'),
      ).toBe(f);
    }
  });

  it('skopeo copies a multi-platform variant out of it to a registry with its digest unchanged', async () => {
    const dest = `${reg.host}/archive/multi:copied`;
    await run('skopeo', [
      'copy',
      '--all',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci-archive:${archive}:multi`,
      `docker://${dest}`,
    ]);
    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dest}`]);
    expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(map.multi!.digest);
  });

  const singleArchive = async (name: string, extra: string[] = []) => {
    const single = join(ctx, 'out', name);
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--variant',
      'plain',
      '--output',
      `oci-archive:${single}`,
      '--cache-dir',
      join(ctx, 'cache'),
      ...extra,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as typeof map).plain!.digest).toBe(map.plain!.digest);
    return single;
  };
  const runLoaded = async (id: string) => {
    await run('podman', ['tag', id, podmanRef]);
    return (await run('podman', ['run', '--rm', '--network', 'none', '--pull', 'never', podmanRef])).stdout;
  };

  it('podman loads an archive of one variant without attestations and runs it', async () => {
    // podman load takes an OCI archive of exactly one manifest ("more than one image in oci,
    // choose an image"): one variant per archive, no referrers beside it.
    const single = await singleArchive('plain.tar', ['--provenance', 'false', '--sbom', 'false']);
    const loaded = await run('podman', ['load', '-i', single]);
    const id = /Loaded image(?:\(s\))?: *(\S+)/.exec(loaded.stdout + loaded.stderr)?.[1];
    expect(id, loaded.stdout + loaded.stderr).toBeDefined();
    expect(await runLoaded(id!)).toBe('hello from the archive\n');
  });

  it('with attestations, podman pulls the variant by its ref name and runs it', async () => {
    const single = await singleArchive('plain-attested.tar');
    const pulled = await run('podman', ['pull', `oci-archive:${single}:plain`]);
    const id = pulled.stdout.trim().split('\n').at(-1)!;
    expect(id).toMatch(/^[a-f0-9]{64}$/);
    expect(await runLoaded(id)).toBe('hello from the archive\n');
  });
});
