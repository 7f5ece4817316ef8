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
      manifests: { digest: string; mediaType: string; annotations: Record<string, string> }[];
    };
    expect(validateOci('index', index)).toEqual([]);
    const byName = Object.fromEntries(index.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m]));
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

  it('podman loads an archive of one variant and runs it', async () => {
    // podman load takes an OCI archive of exactly one image ("more than one image in oci, choose
    // an image"): one variant per archive, with the same digest as in the archive of all.
    const single = join(ctx, 'out', 'plain.tar');
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
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as typeof map).plain!.digest).toBe(map.plain!.digest);
    const loaded = await run('podman', ['load', '-i', single]);
    const id = /Loaded image(?:\(s\))?: *(\S+)/.exec(loaded.stdout + loaded.stderr)?.[1];
    expect(id, loaded.stdout + loaded.stderr).toBeDefined();
    await run('podman', ['tag', id!, podmanRef]);
    const out = await run('podman', ['run', '--rm', '--network', 'none', '--pull', 'never', podmanRef]);
    expect(out.stdout).toBe('hello from the archive\n');
  });
});
