import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { lstatSync, readdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { busyboxTar, pushRawImage, rawTar, type RawEntry } from './helpers/raw-layers.js';
import { cli } from './helpers/cli.js';

/**
 * Hostile base layers (issue 5): a build with a run: step extracts them into its working rootfs.
 * Whatever the layer says, nothing may be written, linked or deleted outside that rootfs:
 * - sanitized (the build goes on): absolute names (`/x` is `<rootfs>/x`), symlinks to `/` or
 *   `../..` followed by files through them (resolved inside the rootfs, as chroot would), a
 *   hardlink to an absolute path (links the rootfs's file), whiteouts through such symlinks;
 * - refused (the build fails, saying which entry and why): `..` in a name, in a hardlink target
 *   or in a whiteout (`.wh...`), and a hardlink whose target is not in the rootfs.
 * Sentinel files on the host (in /tmp, where the escapes aim) are checked after each build.
 */

let reg: TestRegistry;
let ctx: string;
let bb: Buffer;
const id = randomBytes(4).toString('hex');
const up = '../'.repeat(12);
const sentinel = `/tmp/oci-build-sentinel-${id}`;
const evil = (n: string) => `/tmp/oci-build-evil-${n}-${id}`;

async function buildWith(tag: string, entries: RawEntry[], command: string): Promise<{ code: number; stderr: string }> {
  await pushRawImage(reg.host, `evil/base:${tag}`, [bb, rawTar(entries)]);
  const dir = join(ctx, tag);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'oci-build.yml'),
    `version: 1
variants:
  victim:
    base: ${reg.host}/evil/base:${tag}
    image: ${reg.host}/evil/victim
    steps:
      - run: ${JSON.stringify(command)}
`,
  );
  const r = await cli(['build', '--config', join(dir, 'oci-build.yml'), '--push', '--tag', tag, '--cache-dir', join(dir, 'cache')]);
  // Success or failure, no temporary root file system is left behind.
  expect(readdirSync(join(dir, 'cache')).filter((n) => n.startsWith('rootfs-'))).toEqual([]);
  return { code: r.code, stderr: r.stderr };
}

const present = (p: string) => {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

function hostUntouched(): void {
  expect(readFileSync(sentinel, 'utf8')).toBe('host sentinel\n');
  expect(statSync(sentinel).nlink).toBe(1);
  for (const n of ['dotdot', 'abs', 'sym', 'up', 'run', 'hl', 'wh']) expect(present(evil(n)), evil(n)).toBe(false);
}

beforeAll(async () => {
  reg = await startRegistry();
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-evil-'));
  bb = await busyboxTar();
  writeFileSync(sentinel, 'host sentinel\n');
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
  rmSync(sentinel, { force: true });
  for (const n of ['dotdot', 'abs', 'sym', 'up', 'run', 'hl', 'wh']) rmSync(evil(n), { force: true });
});

describe('hostile base layers cannot write outside the working rootfs', () => {
  it('sanitizes absolute names, symlinked parents (to / and ../..), hardlinks and whiteouts through them', async () => {
    const r = await buildWith(
      'sanitized',
      [
        { name: evil('abs'), content: 'absolute\n' }, // "/tmp/…": lands in <rootfs>/tmp/…
        { name: 'escape', type: 'SymbolicLink', linkpath: '/' },
        { name: `escape${evil('sym')}`, content: 'through a symlink to /\n' },
        { name: 'climb', type: 'SymbolicLink', linkpath: up.slice(0, -1) },
        { name: `climb${evil('up')}`, content: 'through a symlink to ../..\n' },
        { name: `tmp/oci-build-sentinel-${id}`, content: "the image's own file\n" },
        { name: 'hl', type: 'Link', linkpath: sentinel }, // absolute: the rootfs's file, not the host's
        { name: 'hl2', type: 'Link', linkpath: `escape${sentinel}` },
        { name: `escape/tmp/.wh.oci-build-sentinel-${id}-nothing`, content: '' },
        { name: `climb/tmp/.wh.${sentinel.slice(5)}`, content: '' }, // deletes the rootfs's copy only
      ],
      `cat ${evil('abs')} ${evil('sym')} ${evil('up')} /hl /hl2; ls -l /hl; test ! -e ${sentinel} && echo sentinel-whited-out; echo from-run > ${evil('run')}; ln -s /hl ${evil('hl')}`,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('| absolute');
    expect(r.stderr).toContain('| through a symlink to /');
    expect(r.stderr).toContain('| through a symlink to ../..');
    expect(r.stderr).toMatch(/\| the image's own file\n.*\| the image's own file/s);
    expect(r.stderr).toContain('| sentinel-whited-out');
    hostUntouched();
  });

  const refused: [string, RawEntry[], RegExp][] = [
    [
      'a name with ../ segments',
      [{ name: `${up}tmp/oci-build-evil-dotdot-${id}`, content: 'x' }],
      /entry "(\.\.\/)+tmp\/oci-build-evil-dotdot-[0-9a-f]+" has a "\.\." segment/,
    ],
    [
      'a name that climbs after a real directory',
      [{ name: `tmp/../../tmp/oci-build-evil-dotdot-${id}`, content: 'x' }],
      /has a "\.\." segment/,
    ],
    [
      'a hardlink to a host file through ../',
      [{ name: 'hl', type: 'Link', linkpath: `${up}${sentinel.slice(1)}` }],
      /hardlink target "(\.\.\/)+tmp\/oci-build-sentinel-[0-9a-f]+" has a "\.\." segment/,
    ],
    [
      'a hardlink to a path missing in the rootfs',
      [{ name: 'hl', type: 'Link', linkpath: sentinel }],
      /hardlink target "\/tmp\/oci-build-sentinel-[0-9a-f]+" does not exist in the root file system/,
    ],
    ['a whiteout of ..', [{ name: 'tmp/.wh...', content: '' }], /whiteout "\.wh\.\.\." names no valid file/],
    ['a whiteout with ../ segments', [{ name: `${up}tmp/.wh.oci-build-sentinel-${id}`, content: '' }], /has a "\.\." segment/],
  ];
  for (const [what, entries, message] of refused) {
    it(`refuses ${what}: the build fails with a clear error and the host is untouched`, async () => {
      const tag = `refused-${refused.findIndex((x) => x[0] === what)}`;
      const r = await buildWith(tag, entries, `echo ran > ${evil('run')}`);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/base layer 2 of 2/);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain('| ran');
      hostUntouched();
    });
  }
});
