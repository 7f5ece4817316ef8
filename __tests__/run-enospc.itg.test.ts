import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase, type BaseImages } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';

/**
 * A run: step that fills the file system of its temporary root file system (the cache
 * directory on a small tmpfs): the build exits 1 naming the build file line, the command, the
 * directory and the fix; nothing is pushed, no tag moves, and the rootfs is removed.
 */

let reg: TestRegistry;
let base: BaseImages;
let root: string;
const mounts: string[] = [];

const buildFile = (command: string) => `version: 1
variants:
  app:
    image: ${reg.host}/enospc/app
    base: ${base.single}
    steps:
      - file: /etc/marker
        content: "one\\n"
      - run: ${command}
`;

/** Tag -> manifest digest, as skopeo reads them from the registry. */
async function tags(repo: string): Promise<Record<string, string>> {
  const r = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`], { allowFail: true });
  if (r.code !== 0) return {};
  const out: Record<string, string> = {};
  for (const t of (JSON.parse(r.stdout) as { Tags: string[] }).Tags) {
    const raw = (await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reg.host}/${repo}:${t}`])).stdout;
    out[t] = createHash('sha256').update(raw).digest('hex');
  }
  return out;
}

beforeAll(async () => {
  reg = await startRegistry();
  base = await pushBusyboxBase(reg.host);
  root = mkdtempSync(join(tmpdir(), 'oci-build-enospc-'));
}, 300_000);

afterAll(async () => {
  for (const m of mounts) await run('umount', [m], { allowFail: true });
  await reg?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('a full disk under the temporary root file system of a run: step', () => {
  it('fails naming the step, the directory and the fix; nothing pushed, no tag moved', async () => {
    const ctx = mkdtempSync(join(root, 'ctx-'));
    const file = join(ctx, 'oci-build.yml');
    // v1 exists before: the failing build must leave it where it is.
    writeFileSync(file, buildFile('[/bin/busybox, touch, /small]'));
    const first = await cli(['build', '--config', file, '--push', '--tag', 'v1', '--cache-dir', join(ctx, 'cache')]);
    expect(first.code, first.stderr).toBe(0);
    const before = await tags('enospc/app');
    expect(Object.keys(before)).toContain('v1');

    // 24 MiB: room for the base and the rootfs (the free-disk check before work passes), not
    // for the 64 MiB the command writes.
    const disk = join(root, 'disk');
    mkdirSync(disk);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', disk]);
    mounts.push(disk);
    writeFileSync(file, buildFile('[/bin/busybox, dd, "if=/dev/zero", "of=/big", "bs=1M", "count=64"]'));
    const r = await cli(['build', '--config', file, '--push', '--tag', 'v1', '--tag', 'v2', '--cache-dir', disk]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:9: run: "\\[.*dd.*\\]" failed with exit code 1: no space left on the device holding the temporary root file system ${disk}/rootfs-[^ ]+ \\([^)]* free\\); free space there, or give a cache directory on a larger file system with --cache-dir`,
      ),
    );
    // Nothing new in the registry, v1 where it was, no v2.
    expect(await tags('enospc/app')).toEqual(before);
    // The temporary root file system is gone with the build.
    expect(readdirSync(disk).filter((n) => n.startsWith('rootfs-'))).toEqual([]);
  });
});
