import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { cli, ROOT } from './helpers/cli.js';
import { run } from './helpers/exec.js';

/**
 * Issue 15: examples/image-types — a tool's map of type names to images. The built-in types are
 * built and pushed into a digest map (the tool's map for them), the tool resolves a type to its
 * `ref` (image@digest) from it, a user's machine pulls the dev type by digest from the map
 * (progress on stderr), and podman runs what was pulled.
 */

let reg: TestRegistry;
let ctx: string;
let base: string;
const env = () => ({ ...process.env, REGISTRY: reg.host, SOURCE_DATE_EPOCH: '1700000000', OCI_BUILD_PROGRESS: 'plain' });

interface Entry {
  image: string;
  digest: string;
  ref: string;
}

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'image-types/busybox')).single;
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-image-types-'));
  cpSync(resolve(ROOT, 'examples/image-types'), ctx, { recursive: true });
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('examples/image-types', () => {
  const map = () => join(ctx, 'types.json');
  let built: Record<string, Entry>;

  it('builds and publishes the built-in types into a digest map', async () => {
    // --base REF alone: `base` is the one variant with a base image.
    const r = await cli(
      [
        'build',
        '--config',
        join(ctx, 'oci-build.yml'),
        '--base',
        base,
        '--push',
        '--tag',
        '1.0',
        '--digest-map',
        map(),
        '--cache-dir',
        join(ctx, '.cache'),
      ],
      { env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    built = JSON.parse(readFileSync(map(), 'utf8'));
    expect(Object.keys(built).sort()).toEqual(['base', 'dev']);
    for (const [type, e] of Object.entries(built)) {
      expect(e.image).toBe(`${reg.host}/image-types/${type}`);
      expect(e.ref).toBe(`${e.image}@${e.digest}`);
      // What the registry serves under the tag is what the map pins.
      const inspected = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${e.image}:1.0`])).stdout) as {
        Digest: string;
      };
      expect(inspected.Digest).toBe(e.digest);
    }
  });

  it("resolves types as the tool does: built-in ones from the map's ref, custom ones from the user's map", async () => {
    const resolveType = async (type: string) =>
      await run(process.execPath, [join(ctx, 'resolve.mjs'), type, map(), join(ctx, 'custom-types.json')], { allowFail: true });
    const dev = await resolveType('dev');
    expect(JSON.parse(dev.stdout)).toEqual({
      type: 'dev',
      builtIn: true,
      ref: built.dev!.ref,
      image: built.dev!.image,
      digest: built.dev!.digest,
    });
    const ml = await resolveType('ml');
    expect(JSON.parse(ml.stdout)).toEqual({ type: 'ml', builtIn: false, ref: 'registry.example/acme/ml-env:2024.1' });
    const none = await resolveType('gpu');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('known: base, dev, docs, ml');
  });

  it('pulls the dev type by digest from the map, with progress, and podman runs it', async () => {
    const layout = join(ctx, 'images');
    const r = await cli(
      ['pull', '--digest-map', map(), '--variant', 'dev', '--output', `oci:${layout}`, '--cache-dir', join(ctx, 'pull-cache')],
      {
        env: env(),
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const pulled = JSON.parse(r.stdout) as Record<string, Entry>;
    expect(Object.keys(pulled)).toEqual(['dev']);
    expect(pulled.dev!.digest).toBe(built.dev!.digest);
    expect(pulled.dev!.ref).toBe(built.dev!.ref);
    // Progress in a pipe: a line per blob fetched, bounded (the image has 2 layers and a config).
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(10);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations?: Record<string, string> }[];
    };
    expect(index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest])).toEqual([
      ['dev', built.dev!.digest],
    ]);
    const local = `localhost/oci-build-image-types-dev:${process.pid}`;
    await run('skopeo', ['copy', `oci:${layout}:dev`, `containers-storage:${local}`]);
    try {
      const out = await run('podman', ['run', '--rm', '--network', 'none', local]);
      expect(out.stdout.trim()).toBe('type dev: build test');
    } finally {
      await run('podman', ['rmi', '-f', local], { allowFail: true });
    }
  });
});
