import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';

/**
 * Issue 12, copies out of the build context as buildah makes them: `COPY d/` through a symlink
 * to a directory copies its contents, and hardlinks stay one inode.
 */

let reg: TestRegistry;
let ctx: string;
const refs: string[] = [];

beforeAll(async () => {
  reg = await startRegistry();
  ctx = mkdtempSync(join(tmpdir(), 'exact-context-itg-'));
  mkdirSync(join(ctx, 'real/sub'), { recursive: true });
  writeFileSync(join(ctx, 'real/sub/f.txt'), 'f\n');
  symlinkSync('real', join(ctx, 'd'));
  mkdirSync(join(ctx, 'h'));
  writeFileSync(join(ctx, 'h/b.txt'), 'shared\n');
  linkSync(join(ctx, 'h/b.txt'), join(ctx, 'h/a.txt'));
});
afterAll(async () => {
  for (const r of refs) await run('podman', ['rmi', '-f', r], { allowFail: true });
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

/** Every path under the image's /d and /h: type, and for files the link count and which paths share the inode. */
async function listing(ref: string): Promise<string> {
  const mnt = (await run('podman', ['image', 'mount', ref])).stdout.trim();
  try {
    const rows = (await run('find', ['d', 'h', '-printf', '%p %y %n %i\n'], { cwd: mnt })).stdout.trim().split('\n').sort();
    // Inode numbers differ between images; name each by the first path that has it.
    const first = new Map<string, string>();
    return rows
      .map((r) => {
        const [p, y, n, ino] = r.split(' ');
        if (!first.has(ino!)) first.set(ino!, p!);
        return y === 'f' ? `${p} f ${n} ${first.get(ino!)}` : `${p} ${y}`;
      })
      .join('\n');
  } finally {
    await run('podman', ['image', 'unmount', ref], { allowFail: true });
  }
}

describe('copy from the build context, compared with buildah', () => {
  it('d/ through a symlink copies the directory; hardlinks stay one inode', async () => {
    writeFileSync(
      join(ctx, 'oci-build.yml'),
      [
        'version: 1',
        'variants:',
        '  ctx:',
        '    base: scratch',
        `    image: ${reg.host}/exact/ctx`,
        '    steps:',
        '      - copy: d/',
        '        to: /d/',
        '      - copy: h',
        '        to: /h/',
      ].join('\n'),
    );
    const r = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--push', '--tag', 'v1']);
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const ours = `${reg.host}/exact/ctx:v1`;
    refs.push(ours);
    await run('podman', ['pull', '--tls-verify=false', ours]);

    writeFileSync(join(ctx, 'Containerfile'), 'FROM scratch\nCOPY d/ /d/\nCOPY h /h/\n');
    const theirs = `localhost/exact-buildah-ctx:${process.pid}`;
    refs.push(theirs);
    await run('buildah', ['bud', '-f', join(ctx, 'Containerfile'), '-t', theirs, ctx]);

    const want = await listing(theirs);
    expect(want).toBe(['d d', 'd/sub d', 'd/sub/f.txt f 1 d/sub/f.txt', 'h d', 'h/a.txt f 2 h/a.txt', 'h/b.txt f 2 h/a.txt'].join('\n'));
    expect(await listing(ours)).toBe(want);
  }, 600_000);
});
