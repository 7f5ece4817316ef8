import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase, type BaseImages } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';

/**
 * File system errors through the CLI: a full disk (a 1 MiB tmpfs) under an output or the
 * cache, a source the user cannot read, a path too long: each names the build file line and
 * step or the directory, says what to do, and nothing is pushed nor any tag moved.
 */

let reg: TestRegistry;
let base: BaseImages;
let root: string;
const mounts: string[] = [];

async function smallDisk(name: string): Promise<string> {
  const dir = join(root, name);
  mkdirSync(dir);
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

const yaml = (image: string, baseRef: string, copy = 'big.bin', to = '/big.bin') => `version: 1
variants:
  app:
    image: ${image}
    base: ${baseRef}
    steps:
      - copy: ${copy}
        to: ${to}
`;

async function tags(repo: string): Promise<Record<string, string>> {
  const r = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`], { allowFail: true });
  if (r.code !== 0) return {};
  const out: Record<string, string> = {};
  for (const t of (JSON.parse(r.stdout) as { Tags: string[] }).Tags) {
    // --raw: attestation tags (sha256-...) are artifacts, which skopeo will not inspect otherwise.
    out[t] = createHash('sha256')
      .update((await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/${repo}:${t}`])).stdout)
      .digest('hex');
  }
  return out;
}

beforeAll(async () => {
  reg = await startRegistry();
  base = await pushBusyboxBase(reg.host);
  root = mkdtempSync(join(tmpdir(), 'oci-build-io-'));
  chmodSync(root, 0o755);
}, 300_000);

afterAll(async () => {
  for (const m of mounts) await run('umount', [m], { allowFail: true });
  await reg?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('a full disk', () => {
  it('under --output oci:DIR fails before the push: the existing tag stays, nothing new is pushed', async () => {
    const ctx = mkdtempSync(join(root, 'out-'));
    writeFileSync(join(ctx, 'big.bin'), 'small\n');
    writeFileSync(join(ctx, 'oci-build.yml'), yaml(`${reg.host}/io/out`, base.single));
    const first = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', join(ctx, 'cache')]);
    expect(first.code, first.stderr).toBe(0);
    const before = await tags('io/out');
    expect(Object.keys(before)).toContain('v1');
    // Now a layer larger than the disk the output goes to.
    writeFileSync(join(ctx, 'big.bin'), randomBytes(3 << 20));
    const disk = await smallDisk('out-disk');
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--push',
      '--tag',
      'v1',
      '--tag',
      'v2',
      '--output',
      `oci:${disk}/layout`,
      '--cache-dir',
      join(ctx, 'cache'),
    ]);
    // Found by the free-disk check before any work (src/plan/prereq.ts), with ENOSPC's exit code.
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`not enough free disk for output ${disk}/layout: ${disk} has 1.0 MiB free`);
    expect(await tags('io/out')).toEqual(before);
  });

  it('under the cache names the cache directory and the fix, before any work', async () => {
    const ctx = mkdtempSync(join(root, 'cache-'));
    writeFileSync(join(ctx, 'big.bin'), randomBytes(3 << 20));
    writeFileSync(join(ctx, 'oci-build.yml'), yaml(`${reg.host}/io/cache`, 'scratch'));
    const disk = await smallDisk('cache-disk');
    const r = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', disk]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`not enough free disk for the layer cache (base layers and new layers): ${disk} has 1.0 MiB free`);
    expect(r.stderr).toMatch(/--cache-dir/);
    expect(await tags('io/cache')).toEqual({});
  });
});

describe('a full disk, fetching the base', () => {
  it('under the cache names the cache directory and the fix', async () => {
    const ctx = mkdtempSync(join(root, 'fetch-'));
    writeFileSync(join(ctx, 'big.bin'), 'small\n');
    writeFileSync(join(ctx, 'oci-build.yml'), yaml(`${reg.host}/io/fetch`, base.single));
    const disk = await smallDisk('fetch-disk');
    const r = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', disk]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`not enough free disk for the layer cache (base layers and new layers): ${disk} has`);
    expect(r.stderr).toMatch(/free some space there, or point it elsewhere with --cache-dir/);
    expect(await tags('io/fetch')).toEqual({});
  });
});

describe('unreadable and unreachable sources (bad input: exit 2)', () => {
  const asNobody = async (ctx: string) => {
    const cache = join(ctx, 'cache');
    mkdirSync(cache);
    chownSync(cache, 65534, 65534);
    return await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', cache], {
      uid: 65534,
      gid: 65534,
      env: { ...process.env, HOME: cache },
    });
  };

  it('a source file without read permission', async () => {
    const ctx = mkdtempSync(join(root, 'eacces-file-'));
    chmodSync(ctx, 0o755);
    writeFileSync(join(ctx, 'secret.txt'), 'x\n', { mode: 0o600 });
    writeFileSync(join(ctx, 'oci-build.yml'), yaml(`${reg.host}/io/eacces`, 'scratch', 'secret.txt', '/secret.txt'), { mode: 0o644 });
    const r = await asNobody(ctx);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(
      `${join(ctx, 'oci-build.yml')}:7: variant app: copy secret.txt /secret.txt: cannot read ${join(ctx, 'secret.txt')}: permission denied (EACCES)`,
    );
    expect(r.stderr).toMatch(/chmod a\+r/);
    expect(await tags('io/eacces')).toEqual({});
  });

  it('a directory without read permission inside a copied directory', async () => {
    const ctx = mkdtempSync(join(root, 'eacces-dir-'));
    chmodSync(ctx, 0o755);
    mkdirSync(join(ctx, 'tree', 'private'), { recursive: true });
    chmodSync(join(ctx, 'tree'), 0o755);
    writeFileSync(join(ctx, 'tree', 'a.txt'), 'a\n', { mode: 0o644 });
    chmodSync(join(ctx, 'tree', 'private'), 0o700);
    writeFileSync(join(ctx, 'oci-build.yml'), yaml(`${reg.host}/io/eacces`, 'scratch', 'tree', '/tree'), { mode: 0o644 });
    const r = await asNobody(ctx);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(
      `${join(ctx, 'oci-build.yml')}:7: variant app: copy tree /tree: cannot read ${join(ctx, 'tree', 'private')}: permission denied (EACCES)`,
    );
    expect(r.stderr).toMatch(/a\+rx for a directory/);
  });

  it('a path longer than the system allows (ENAMETOOLONG)', async () => {
    const ctx = mkdtempSync(join(root, 'long-'));
    const name = 'n'.repeat(200);
    // 25 levels of 200-byte names: each name is fine, the whole path is over 4096 bytes.
    await run(process.execPath, [
      '-e',
      `const fs = require('node:fs'); process.chdir(process.argv[1]); for (let i = 0; i <= 25; i++) { const n = i ? '${name}' : 'deep'; fs.mkdirSync(n); process.chdir(n); } fs.writeFileSync('f', 'x')`,
      ctx,
    ]);
    writeFileSync(join(ctx, 'oci-build.yml'), yaml(`${reg.host}/io/long`, 'scratch', 'deep', '/deep'));
    const r = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', join(ctx, 'cache')]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`${join(ctx, 'oci-build.yml')}:7: variant app: copy deep /deep: ${join(ctx, 'deep', name)}`);
    expect(r.stderr).toMatch(/is too long \(ENAMETOOLONG: the limits are 255 bytes for one name and 4096 for a whole path\); shorten/);
    expect(await tags('io/long')).toEqual({});
  });
});
