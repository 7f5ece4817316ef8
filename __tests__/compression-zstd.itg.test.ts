import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase, type BaseImages } from './helpers/base-image.js';
import { ACTION, cli, CLI, runNode } from './helpers/cli.js';
import { run } from './helpers/exec.js';
import { validateOci } from './helpers/oci-schema.js';
import { Readable } from 'node:stream';
import { writeLayer } from '../src/layer/writer.js';
import { BlobStore } from '../src/layer/blobstore.js';

/**
 * Issue 7: `compression: zstd` writes new layers with the OCI zstd media type. The same
 * build as gzip gives the same diff_ids; the real registry takes it, skopeo reads it,
 * podman runs it (also a run: step on top of zstd layers), and the layer cache keeps the
 * two compressions apart.
 */

const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

let reg: TestRegistry;
let base: BaseImages;
let ctx: string;

const buildFile = () => `version: 1
args:
  NAME: z
defaults:
  base: ${base.single}
  image: ${reg.host}/zstd/\${NAME}-\${variant}
variants:
  app:
    steps:
      - copy: data/
        to: /opt/data/
      - file: /etc/app.conf
        content: "answer = 42"
    entrypoint: [/bin/sh, -c]
  child:
    from: app
    steps:
      - run: cat /opt/data/a.txt /etc/app.conf > /opt/both.txt
`;

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
}

async function manifest(ref: string): Promise<{ layers: Layer[]; config: { digest: string } }> {
  const r = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return JSON.parse(r.stdout);
}

async function diffIds(ref: string): Promise<string[]> {
  const r = await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${ref}`]);
  return (JSON.parse(r.stdout) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
}

async function build(name: string, extra: string[]): Promise<{ stderr: string; map: Record<string, { digest: string; ref: string }> }> {
  const r = await cli(
    [
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--push',
      '--tag',
      'v1',
      '--digest-map',
      join(ctx, `${name}.json`),
      '--cache-dir',
      join(ctx, 'cache'),
      ...extra,
    ],
    { env: { ...process.env, NAME: name } },
  );
  expect(r.code, r.stderr).toBe(0);
  return { stderr: r.stderr, map: JSON.parse(readFileSync(join(ctx, `${name}.json`), 'utf8')) };
}

beforeAll(async () => {
  reg = await startRegistry();
  base = await pushBusyboxBase(reg.host, 'base/zstd');
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-zstd-'));
  mkdirSync(join(ctx, 'data'));
  writeFileSync(join(ctx, 'data/a.txt'), 'from a zstd layer\n');
  // Something worth compressing, so a broken frame could not pass by accident.
  writeFileSync(
    join(ctx, 'data/big.txt'),
    Array.from({ length: 20000 }, (_, i) => `line ${i} ${i % 7 === 0 ? 'seven' : 'other'}\n`).join(''),
  );
  writeFileSync(join(ctx, 'oci-build.yml'), buildFile());
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('zstd layer bytes', () => {
  it('depend on the content and the level only, not on how the content arrives', async () => {
    const data = Buffer.from(Array.from({ length: 50000 }, (_, i) => `row ${i} ${i % 13}\n`).join(''));
    const write = async (pieces: number, level: number) => {
      const parts = Array.from({ length: pieces }, (_, i) =>
        data.subarray(Math.floor((i * data.length) / pieces), Math.floor(((i + 1) * data.length) / pieces)),
      );
      return await writeLayer(
        [{ path: '/d', type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, open: () => Readable.from(parts) }],
        new BlobStore(join(ctx, 'det')),
        { mtime: new Date(0), compression: { algorithm: 'zstd', level } },
      );
    };
    const a = await write(1, 3);
    const b = await write(997, 3);
    expect(b.descriptor).toEqual(a.descriptor);
    expect(a.descriptor.mediaType).toBe(ZSTD);
    expect((await write(1, 4)).descriptor.digest).not.toBe(a.descriptor.digest);
  });
});

describe('compression: zstd', () => {
  let zmap: Record<string, { digest: string; ref: string }>;

  it('pushes new layers as tar+zstd (the base keeps its gzip); each blob is one zstd frame of the diff_id tar', async () => {
    zmap = (await build('z', ['--compression', 'zstd'])).map;
    for (const v of ['app', 'child']) {
      const ref = `${reg.host}/zstd/z-${v}@${zmap[v]!.digest}`;
      const m = await manifest(ref);
      expect(validateOci('manifest', m)).toEqual([]);
      expect(m.layers[0]!.mediaType).toBe(GZIP);
      expect(m.layers.slice(1).map((l) => l.mediaType)).toEqual(m.layers.slice(1).map(() => ZSTD));
      const ids = await diffIds(ref);
      // Every new blob decompresses (with zstd(1), not our own reader) to exactly its diff_id.
      await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(ctx, `layout-${v}`)}:x`]);
      for (const [i, l] of m.layers.entries()) {
        if (i === 0) continue;
        const file = join(ctx, `layout-${v}`, 'blobs', 'sha256', l.digest.slice(7));
        const bytes = readFileSync(file);
        expect([...bytes.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
        const tar = execFileSync('zstd', ['-dc', file], { maxBuffer: 64 << 20 });
        // One frame: Node's decoder, which stops after the first frame, sees the whole tar.
        expect(zstdDecompressSync(bytes).length).toBe(tar.length);
        expect(`sha256:${createHash('sha256').update(tar).digest('hex')}`).toBe(ids[i]);
      }
    }
  });

  it('podman runs the zstd images, including the run: step made on a root file system of zstd layers', async () => {
    const r = await run('podman', [
      'run',
      '--rm',
      '--network',
      'none',
      '--tls-verify=false',
      `${reg.host}/zstd/z-child:v1`,
      'cat /opt/both.txt; echo; wc -l < /opt/data/big.txt',
    ]);
    expect(r.stdout).toBe('from a zstd layer\nanswer = 42\n20000\n');
    await run('podman', ['rmi', '-f', `${reg.host}/zstd/z-child:v1`], { allowFail: true });
  });

  it('gives the same diff_ids as gzip; the layer cache keeps the compressions apart and reuses each', async () => {
    const g = await build('g', ['--compression', 'gzip']);
    // Every layer is built again for gzip (the zstd records are not gzip layers)...
    expect(g.stderr).not.toMatch(/\[cached/);
    const gm = await manifest(`${reg.host}/zstd/g-child@${g.map.child!.digest}`);
    expect(gm.layers.map((l) => l.mediaType)).toEqual(gm.layers.map(() => GZIP));
    // ...with the same content underneath.
    expect(await diffIds(`${reg.host}/zstd/g-child@${g.map.child!.digest}`)).toEqual(
      await diffIds(`${reg.host}/zstd/z-child@${zmap.child!.digest}`),
    );
    // zstd again: every layer from the cache (the run: command not run), identical digests.
    const again = await build('z', ['--compression', 'zstd']);
    expect(again.stderr).toMatch(/\[cached: command not run\]/);
    expect(again.stderr).toMatch(/layers: 0 built/);
    expect(again.map.app!.digest).toBe(zmap.app!.digest);
    expect(again.map.child!.digest).toBe(zmap.child!.digest);
    // A different zstd level is a different layer.
    const l9 = await build('l9', ['--compression', 'zstd', '--zstd-level', '9']);
    expect(l9.stderr).toMatch(/layers: 3 built/);
  });

  it('the action takes compression and zstd-level inputs (and rejects a bad one before any I/O)', async () => {
    const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUNNER_TEMP: join(ctx, 'runner-temp'),
      GITHUB_OUTPUT: join(ctx, 'gh-output'),
      GITHUB_WORKSPACE: ctx,
      NAME: 'action',
      INPUT_CONFIG: join(ctx, 'oci-build.yml'),
      INPUT_VARIANTS: 'app',
      INPUT_PUSH: 'true',
      INPUT_TAGS: 'v1',
      'INPUT_DIGEST-MAP': join(ctx, 'action.json'),
      INPUT_CACHE: 'false',
      ...extra,
    });
    writeFileSync(join(ctx, 'gh-output'), '');
    const bad = await runNode(ACTION, [], { env: env({ INPUT_COMPRESSION: 'zstd', 'INPUT_ZSTD-LEVEL': '0' }), cwd: ctx });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toMatch(/zstd-level: 1-19/);
    expect((await fetch(`http://${reg.host}/v2/zstd/action-app/tags/list`)).status).toBe(404);
    const ok = await runNode(ACTION, [], { env: env({ INPUT_COMPRESSION: 'zstd', 'INPUT_ZSTD-LEVEL': '5' }), cwd: ctx });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const map = JSON.parse(readFileSync(join(ctx, 'action.json'), 'utf8')) as Record<string, { digest: string }>;
    const m = await manifest(`${reg.host}/zstd/action-app@${map.app!.digest}`);
    expect(m.layers.slice(1).map((l) => l.mediaType)).toEqual([ZSTD, ZSTD]);
    // Level 5 is not the CLI's level 3: other bytes, same content.
    expect(m.layers.slice(1).map((l) => l.digest)).not.toEqual(
      (await manifest(`${reg.host}/zstd/z-app@${zmap.app!.digest}`)).layers.slice(1).map((l) => l.digest),
    );
    expect(await diffIds(`${reg.host}/zstd/action-app@${map.app!.digest}`)).toEqual(
      await diffIds(`${reg.host}/zstd/z-app@${zmap.app!.digest}`),
    );
  });

  it('rejects bad settings before any I/O, naming the option', async () => {
    const cases: [string[], RegExp][] = [
      [['--compression', 'brotli'], /--compression must be gzip or zstd, got "brotli"/],
      [['--compression', 'zstd', '--zstd-level', '25'], /--zstd-level must be 1-19/],
    ];
    for (const [args, msg] of cases) {
      const r = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--push', ...args], { env: { ...process.env, NAME: 'bad' } });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
    const tags = await fetch(`http://${reg.host}/v2/zstd/bad-app/tags/list`);
    expect(tags.status).toBe(404);
  });

  // The machine's own Node (Debian's 20 here; the suite itself runs on the npm package's 24)
  // predates zlib zstd.
  const oldNode = existsSync('/usr/bin/node') ? '/usr/bin/node' : 'node';
  const systemNode = spawnSync(oldNode, ['-p', 'typeof require("zlib").createZstdCompress'], { encoding: 'utf8' });
  it.skipIf(systemNode.stdout.trim() !== 'undefined')('on a Node.js without zstd, says which Node it needs', async () => {
    const r = spawnSync(oldNode, [CLI, 'plan', '--config', join(ctx, 'oci-build.yml'), '--compression', 'zstd'], {
      encoding: 'utf8',
      env: { ...process.env, NAME: 'old' },
    });
    expect(r.status).toBe(2);
    // A Node older than 22 (Debian's) is stopped by the CLI's version check before the zstd one.
    const major = Number(spawnSync(oldNode, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).stdout.trim());
    expect(r.stderr).toMatch(
      major < 22
        ? /^oci-build: needs Node\.js 22 or later, but .* is Node \d+/
        : /zstd needs Node\.js with zlib zstd support \(22\.15\+ or 23\.8\+/,
    );
  });
});
