import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCopySource } from '../src/config/sources.js';
import type { CopyStep, DirStep, FileStep, Step } from '../src/config/model.js';
import { FsView } from '../src/build/fsview.js';
import { stepEntries, type Owner } from '../src/build/steps.js';
import { probeable, probeEntries, settleEntries, PROBE_OWNER } from '../src/build/step-probe.js';
import type { LayerEntry } from '../src/layer/types.js';
import { chainKey } from '../src/build/chain-key.js';

/**
 * Issue 16 (S9): a layer keyed without the file system below it. settle(probe, fs) must be
 * exactly what stepEntries gives on that file system, for every kind of step it accepts, or a
 * chain key would name the wrong layer (and a build using settle would change digests).
 */

let ctx: string;
const pos = { file: '/x/oci-build.yml', line: 3, column: 5 };

beforeAll(() => {
  ctx = mkdtempSync(join(tmpdir(), 'step-probe-'));
  mkdirSync(join(ctx, 'src/lib/deep'), { recursive: true });
  mkdirSync(join(ctx, 'src/empty'));
  writeFileSync(join(ctx, 'src/a.txt'), 'a\n');
  writeFileSync(join(ctx, 'src/run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(join(ctx, 'src/lib/deep/x.js'), 'x\n');
  linkSync(join(ctx, 'src/a.txt'), join(ctx, 'src/lib/a-link.txt'));
  symlinkSync('a.txt', join(ctx, 'src/sym'));
  writeFileSync(join(ctx, 'one.bin'), Buffer.alloc(1000, 7));
});
afterAll(() => {
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

async function copy(patterns: string[], to: string, extra: Partial<CopyStep> = {}): Promise<CopyStep> {
  const sources = [];
  for (const p of patterns) sources.push((await resolveCopySource(ctx, p)).source!);
  return { kind: 'copy', sources, to, pos, ...extra };
}

function resolver(o: string): Promise<Owner> {
  if (o === 'app') return Promise.resolve({ uid: 1000, gid: 1001 });
  const [u, g] = o.split(':').map(Number);
  return Promise.resolve({ uid: u!, gid: g ?? u! });
}

/** Plain fields of entries (no streams), in the order given. */
const plain = (es: LayerEntry[]) =>
  es.map(({ path, type, mode, uid, gid, size, linkname }) => ({ path, type, mode, uid, gid, size, linkname }));

const filesystems: [string, FsView][] = [
  ['empty', new FsView()],
  ['debian-like', FsView.fromListing(new Map(['/usr', '/usr/local', '/usr/local/bin', '/opt', '/etc'].map((p) => [p, { type: 'dir' }])))],
  [
    'destination exists',
    FsView.fromListing(
      new Map<string, { type: string }>([
        ['/app', { type: 'dir' }],
        ['/app/lib', { type: 'dir' }],
        ['/app/lib/deep', { type: 'symlink' }],
        ['/srv', { type: 'symlink' }],
      ]),
    ),
  ],
];

async function steps(): Promise<[string, Step][]> {
  const file: FileStep = { kind: 'file', path: '/etc/app/conf.ini', content: 'k=v\n', pos };
  const dir: DirStep = { kind: 'dir', path: '/app/lib/work', pos };
  return [
    ['a directory tree', await copy(['src'], '/app')],
    ['a directory tree with an owner name', await copy(['src'], '/app/', { owner: 'app' })],
    [
      'files into a directory, owner uid:gid and mode',
      await copy(['src/a.txt', 'one.bin'], '/usr/local/bin/', { owner: '7:8', mode: 0o700 }),
    ],
    ['one file to a path', await copy(['one.bin'], '/opt/tools/one.bin')],
    ['a glob', await copy(['src/*.txt'], '/srv/data')],
    ["Docker's rules, into a directory", await copy(['src'], '/app/', { dockerRules: true, owner: 'app', mode: 0o750 })],
    ["Docker's rules, two sources", await copy(['src/run.sh', 'one.bin'], '/usr/local/bin', { dockerRules: true })],
    ['a file step', file],
    ['a file step with an owner', { ...file, owner: 'app' }],
    ['a dir step', dir],
    ['a dir step with an owner', { ...dir, owner: 'app' }],
  ];
}

describe('step probe (settle(probe, fs) = stepEntries(fs))', () => {
  it('gives the entries stepEntries does, on every file system', async () => {
    for (const [name, step] of await steps()) {
      expect(probeable(step), name).toBe(true);
      const probe = await probeEntries(step, { context: ctx, platform: 'linux/amd64' });
      for (const [fsName, fs] of filesystems) {
        const real = await stepEntries(step, { context: ctx, platform: 'linux/amd64', fs, resolveOwner: resolver });
        const settled = await settleEntries(step, probe, fs, resolver);
        expect(plain(settled), `${name} on ${fsName}`).toEqual(plain(real));
      }
    }
  });

  it('marks the entries that take the owner, and only those', async () => {
    const step = await copy(['src'], '/app/', { owner: 'app' });
    const probe = await probeEntries(step, { context: ctx, platform: 'linux/amd64' });
    const owned = probe.filter((e) => e.uid === PROBE_OWNER.uid).map((e) => e.path);
    expect(owned).toContain('/app/a.txt');
    expect(owned).toContain('/app');
    // Parents above the destination stay root's.
    expect(probe.every((e) => e.path.startsWith('/app'))).toBe(true);
    expect(plain(await settleEntries(step, probe, new FsView(), resolver)).every((e) => e.uid === 1000)).toBe(true);
  });

  it('leaves out the steps whose entries depend on more of the file system below', async () => {
    expect(probeable(await copy(['one.bin'], '/app', { dockerRules: true }))).toBe(false);
    expect(probeable(await copy(['one.bin'], '/opt/', { extract: true }))).toBe(false);
    expect(probeable({ kind: 'copy', sources: [{ pattern: '/out', matches: [], isGlob: false }], to: '/o', from: 'build', pos })).toBe(
      false,
    );
  });

  it('a chain key changes with the layers below, a file content, and the owner', async () => {
    const opts = { mtime: 0, compression: { algorithm: 'gzip' as const, level: 1 } };
    const step = await copy(['src'], '/app');
    const probe = await probeEntries(step, { context: ctx, platform: 'linux/amd64' });
    const content = (h: string) => (e: LayerEntry) => (e.type === 'file' ? (`sha256:${h.repeat(64)}` as const) : undefined);
    const key = (s: CopyStep, below: string[], h = 'a') => chainKey(s, probe, content(h), { platform: 'linux/amd64', below }, opts);
    const base = key(step, ['sha256:1']);
    expect(key(step, ['sha256:1'])).toBe(base);
    expect(key(step, ['sha256:2'])).not.toBe(base);
    expect(key(step, ['sha256:1', 'sha256:3'])).not.toBe(base);
    expect(key(step, ['sha256:1'], 'b')).not.toBe(base);
    expect(key({ ...step, owner: 'app' }, ['sha256:1'])).not.toBe(base);
    expect(key({ ...step, mode: 0o600 }, ['sha256:1'])).not.toBe(base);
    expect(chainKey(step, probe, content('a'), { platform: 'linux/arm64', below: ['sha256:1'] }, opts)).not.toBe(base);
    expect(chainKey(step, probe, content('a'), { platform: 'linux/amd64', below: ['sha256:1'] }, { ...opts, mtime: 1 })).not.toBe(base);
    // A copied file whose content is not known has no chain key (never one without its content).
    expect(chainKey(step, probe, () => undefined, { platform: 'linux/amd64', below: ['sha256:1'] }, opts)).toBeUndefined();
  });
});
