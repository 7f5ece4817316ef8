import { createReadStream, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, linkSync, chmodSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStore } from '../src/layer/blobstore.js';
import { listPaths, readFilesFromLayers, scanLayers, type LayerSource } from '../src/layer/reader.js';
import { detectCompression } from '../src/layer/decompress.js';
import { whiteoutName, whiteoutOf, whiteoutPath } from '../src/layer/whiteout.js';
import { parseGroup, parsePasswd, resolveOwner } from '../src/image/users.js';
import type { LayerEntry } from '../src/layer/types.js';
import { writeLayer } from '../src/layer/writer.js';
import { run } from './helpers/exec.js';
import { BASE_GROUP, BASE_PASSWD } from './helpers/base-image.js';

let work: string;
let store: BlobStore;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'layer-reader-'));
  store = new BlobStore(join(work, 'blobs'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Spec = Record<string, string | { dir: true; mode?: number } | { symlink: string } | { hardlink: string }>;

/** Builds a tree from a spec and packs it with the system tar (gzip, zstd or none). */
async function systemTar(name: string, spec: Spec, compression: 'gzip' | 'zstd' | 'none', extra: string[] = []): Promise<string> {
  const root = join(work, `${name}-root`);
  mkdirSync(root, { recursive: true });
  for (const [p, v] of Object.entries(spec)) {
    const abs = join(root, p);
    mkdirSync(dirname(abs), { recursive: true });
    if (typeof v === 'string') writeFileSync(abs, v);
    else if ('dir' in v) {
      mkdirSync(abs, { recursive: true });
      if (v.mode !== undefined) chmodSync(abs, v.mode);
    } else if ('symlink' in v) symlinkSync(v.symlink, abs);
    else linkSync(join(root, v.hardlink), abs);
  }
  const out = join(work, `${name}.tar${compression === 'gzip' ? '.gz' : compression === 'zstd' ? '.zst' : ''}`);
  const flag = compression === 'gzip' ? ['-z'] : compression === 'zstd' ? ['--zstd'] : [];
  await run('tar', ['--sort=name', '--numeric-owner', ...extra, ...flag, '-cf', out, '-C', root, '.']);
  return out;
}

const fromFile =
  (path: string): LayerSource =>
  () =>
    createReadStream(path);

const buf = (s: string) => Buffer.from(s);
const fileEntry = (path: string, content: string, mode = 0o644, uid = 0, gid = 0): LayerEntry => ({
  path,
  type: 'file',
  mode,
  uid,
  gid,
  size: Buffer.byteLength(content),
  open: () => Readable.from([buf(content)]),
});
const dirEntry = (path: string, mode = 0o755, uid = 0, gid = 0): LayerEntry => ({ path, type: 'dir', mode, uid, gid });

describe('readFilesFromLayers / listPaths', () => {
  let layers: LayerSource[];

  beforeAll(async () => {
    // 1: gzip base made by the system tar.
    const l1 = await systemTar(
      'l1',
      {
        'etc/passwd': 'root:x:0:0::/root:/bin/sh\n',
        'etc/group': 'root:x:0:\n',
        'etc/motd': 'hello\n',
        'opt/a/1': 'one',
        'opt/a/2': 'two',
        'opt/b/x': 'x',
        'bin/busybox': 'BB',
        'bin/sh': { symlink: 'busybox' },
        'srv/d/child': 'c',
        'srv/f': 'file',
        'var/lib/thing': { dir: true, mode: 0o750 },
        [`long/${'n'.repeat(150)}`]: 'gnu long name',
        [`long/${'s'.repeat(120)}`]: { symlink: `../${'t'.repeat(130)}` },
      },
      'gzip',
    );
    // 2: uncompressed, with whiteouts and an opaque directory, made by the system tar.
    const l2 = await systemTar(
      'l2',
      {
        'etc/.wh.motd': '',
        'etc/passwd': BASE_PASSWD,
        'opt/a/.wh..wh..opq': '',
        'opt/a/3': 'three',
        'opt/.wh.b': '',
        'srv/d': 'now a file', // file replaces a directory (children go)
        'srv/f/inner': 'dir now', // directory replaces a file
        'usr/share/group.real': BASE_GROUP,
        'usr/data/.wh.nothing-there': '',
      },
      'none',
      ['--owner=1000', '--group=1000'],
    );
    // 3: zstd, /etc/group becomes a symlink to a file that is not on the wanted list.
    const l3 = await systemTar(
      'l3',
      {
        'etc/.wh.group': '',
        'etc/group': { symlink: '../usr/share/group.real' },
        'etc/0hosts': '127.0.0.1 localhost\n',
        'etc/hosts': { hardlink: 'etc/0hosts' },
      },
      'zstd',
    );
    // 4: written by our writer; removes /etc/0hosts (the hardlink keeps the content).
    const built = await writeLayer(
      [
        dirEntry('/etc'),
        { path: '/etc/.wh.0hosts', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, open: () => Readable.from([]) },
        dirEntry('/usr/local/bin', 0o755),
        fileEntry('/usr/local/bin/coop', '#!/bin/sh\n', 0o4755, 1000, 1000),
      ],
      store,
      { mtime: new Date(0), compression: { algorithm: 'gzip', level: 6 } },
    );
    layers = [fromFile(l1), fromFile(l2), fromFile(l3), async () => store.open(built.descriptor.digest)];
  });

  it('detects compression by magic bytes', () => {
    expect(detectCompression(gzipSync(Buffer.from('x')))).toBe('gzip');
    expect(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('zstd');
    expect(detectCompression(Buffer.from('etc/passwd'))).toBe('none');
    expect(detectCompression(Buffer.alloc(0))).toBe('none');
  });

  it('returns the final content of wanted files after whiteouts, following symlinks and hardlinks', async () => {
    const files = await readFilesFromLayers(layers, [
      '/etc/passwd',
      '/etc/group',
      '/etc/motd',
      '/etc/hosts',
      '/etc/0hosts',
      '/opt/a/1',
      '/opt/a/3',
      '/srv/d/child',
      '/srv/f/inner',
      '/missing',
      '/etc',
      '/bin/sh',
    ]);
    expect(files.get('/etc/passwd')?.toString()).toBe(BASE_PASSWD);
    expect(files.get('/etc/group')?.toString()).toBe(BASE_GROUP); // via symlink, second pass
    expect(files.get('/etc/motd')).toBeNull(); // whiteout
    expect(files.get('/etc/hosts')?.toString()).toBe('127.0.0.1 localhost\n'); // hardlink survives target removal
    expect(files.get('/etc/0hosts')).toBeNull();
    expect(files.get('/opt/a/1')).toBeNull(); // opaque dir
    expect(files.get('/opt/a/3')?.toString()).toBe('three');
    expect(files.get('/srv/d/child')).toBeNull(); // dir replaced by file
    expect(files.get('/srv/f/inner')?.toString()).toBe('dir now');
    expect(files.get('/missing')).toBeNull();
    expect(files.get('/etc')).toBeNull(); // a directory is not a file
    expect(files.get('/bin/sh')?.toString()).toBe('BB'); // relative symlink
  });

  it('lists every final path with type, mode, owner and link target', async () => {
    const paths = await listPaths(layers);
    expect(paths.has('/etc/motd')).toBe(false);
    expect(paths.has('/opt/a/1')).toBe(false);
    expect(paths.has('/opt/a/2')).toBe(false);
    expect(paths.has('/opt/b')).toBe(false);
    expect(paths.has('/opt/b/x')).toBe(false);
    expect(paths.has('/srv/d/child')).toBe(false);
    expect(paths.has('/etc/0hosts')).toBe(false);
    expect([...paths.keys()].some((p) => p.includes('.wh.'))).toBe(false);
    expect(paths.get('/opt/a/3')).toMatchObject({ type: 'file', uid: 1000, gid: 1000, size: 5 });
    expect(paths.get('/opt/a')).toMatchObject({ type: 'dir' });
    expect(paths.get('/srv/d')).toMatchObject({ type: 'file' });
    expect(paths.get('/srv/f')).toMatchObject({ type: 'dir' });
    expect(paths.get('/bin/sh')).toMatchObject({ type: 'symlink', linkname: 'busybox' });
    expect(paths.get('/etc/group')).toMatchObject({ type: 'symlink', linkname: '../usr/share/group.real' });
    expect(paths.get('/etc/hosts')).toMatchObject({ type: 'hardlink', linkname: '/etc/0hosts' });
    expect(paths.get('/var/lib/thing')).toMatchObject({ type: 'dir', mode: 0o750 });
    // GNU long-name / long-link headers of the system tar.
    expect(paths.get(`/long/${'n'.repeat(150)}`)).toMatchObject({ type: 'file', size: 13 });
    expect(paths.get(`/long/${'s'.repeat(120)}`)).toMatchObject({ type: 'symlink', linkname: `../${'t'.repeat(130)}` });
    expect(paths.get('/usr/local/bin/coop')).toMatchObject({ type: 'file', mode: 0o4755, uid: 1000, gid: 1000 });
    // /usr/local has no entry of its own: an implicit root-owned 0755 parent.
    expect(paths.get('/usr/local')).toEqual({ type: 'dir', mode: 0o755, uid: 0, gid: 0, implicit: true });
    expect(paths.get('/usr')).toMatchObject({ type: 'dir', uid: 1000 });
    // Parents come before children.
    const keys = [...paths.keys()];
    expect(keys.indexOf('/usr')).toBeLessThan(keys.indexOf('/usr/local/bin/coop'));
  });

  it('does both in one pass with scanLayers', async () => {
    let opened = 0;
    const counted = layers.map((l) => () => {
      opened++;
      return l();
    });
    const scan = await scanLayers(counted, { wanted: ['/etc/passwd'], listPaths: true });
    expect(opened).toBe(4);
    expect(scan.files.get('/etc/passwd')?.toString()).toBe(BASE_PASSWD);
    expect(scan.paths?.get('/etc/passwd')).toMatchObject({ type: 'file' });
    // A wanted hardlink whose target was not wanted costs a second pass over the layers.
    opened = 0;
    const hosts = await readFilesFromLayers(counted, ['/etc/hosts']);
    expect(hosts.get('/etc/hosts')?.toString()).toBe('127.0.0.1 localhost\n');
    expect(opened).toBe(8);
  });

  it('applies a whiteout only to lower layers, not to the same layer', async () => {
    const l1 = await systemTar('same1', { 'app/x': 'old', 'app/keep': 'k' }, 'gzip');
    const l2 = await systemTar('same2', { 'app/.wh.x': '', 'app/x/y': 'new', 'app/.wh..wh..opq': '', 'app/z': 'z' }, 'gzip');
    const files = await readFilesFromLayers([fromFile(l1), fromFile(l2)], ['/app/x/y', '/app/keep', '/app/z']);
    expect(files.get('/app/x/y')?.toString()).toBe('new');
    expect(files.get('/app/keep')).toBeNull();
    expect(files.get('/app/z')?.toString()).toBe('z');
  });

  it('accepts empty layers and readers that return a promise', async () => {
    const empty = await writeLayer([], store, { mtime: new Date(0), compression: { algorithm: 'gzip', level: 6 } });
    const l1 = await systemTar('e1', { 'etc/passwd': 'a:x:1:1::/:/bin/sh\n' }, 'none');
    const files = await readFilesFromLayers(
      [async () => store.open(empty.descriptor.digest), fromFile(l1), () => Readable.from([Buffer.alloc(1024)])],
      ['/etc/passwd'],
    );
    expect(files.get('/etc/passwd')?.toString()).toBe('a:x:1:1::/:/bin/sh\n');
    expect((await listPaths([])).size).toBe(0);
  });

  it('fails with the layer number on corrupt or truncated layers', async () => {
    const good = await systemTar('c1', { 'etc/passwd': 'x' }, 'gzip');
    const bytes = readFileSync(good);
    await expect(
      readFilesFromLayers([fromFile(good), () => Readable.from([bytes.subarray(0, bytes.length - 20)])], ['/etc/passwd']),
    ).rejects.toThrow(/base layer 2 of 2/);
    await expect(
      readFilesFromLayers([() => Readable.from([Buffer.from('this is not a tar archive at all'.repeat(40))])], ['/etc/passwd']),
    ).rejects.toThrow(/base layer 1 of 1: not a valid tar/);
    await expect(
      readFilesFromLayers(
        [
          () => {
            throw new Error('blob missing');
          },
        ],
        ['/etc/passwd'],
      ),
    ).rejects.toThrow(/base layer 1 of 1: blob missing/);
    const failing = new Readable({
      read() {
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(listPaths([() => failing])).rejects.toThrow(/base layer 1 of 1: connection reset/);
  });

  it('streams large non-wanted files without buffering them', async () => {
    const size = 32 << 20;
    const big: LayerEntry = {
      path: '/data/big',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size,
      open: () =>
        Readable.from(
          (function* () {
            for (let i = 0; i < 32; i++) yield Buffer.alloc(1 << 20, i);
          })(),
        ),
    };
    const built = await writeLayer([dirEntry('/data'), big, dirEntry('/etc'), fileEntry('/etc/passwd', 'p\n')], store, {
      mtime: new Date(0),
      compression: { algorithm: 'gzip', level: 1 },
    });
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    try {
      const scan = await scanLayers([() => store.open(built.descriptor.digest)], { wanted: ['/etc/passwd'], listPaths: true });
      expect(scan.files.get('/etc/passwd')?.toString()).toBe('p\n');
      expect(scan.paths?.get('/data/big')).toMatchObject({ size });
    } finally {
      clearInterval(timer);
    }
    expect(peak - base).toBeLessThan(24 << 20);
  });
});

describe('passwd / group / resolveOwner', () => {
  it('parses passwd and group files', () => {
    expect(parsePasswd(`# comment\n${BASE_PASSWD}+nis\nbroken:x:abc:1\n`)).toEqual([
      { name: 'root', uid: 0, gid: 0, gecos: 'root', home: '/root', shell: '/bin/sh' },
      { name: 'app', uid: 1000, gid: 1000, gecos: 'app', home: '/home/app', shell: '/bin/sh' },
      { name: 'nobody', uid: 65534, gid: 65534, gecos: 'nobody', home: '/nonexistent', shell: '/bin/false' },
    ]);
    expect(parseGroup(BASE_GROUP)).toEqual([
      { name: 'root', gid: 0, members: [] },
      { name: 'app', gid: 1000, members: [] },
      { name: 'staff', gid: 50, members: ['app'] },
      { name: 'nogroup', gid: 65534, members: [] },
    ]);
  });

  const passwd = `${BASE_PASSWD}worker:x:1001:50:w:/home/worker:/bin/sh\n`;
  const table: Array<[string, { uid: number; gid: number }]> = [
    ['1000', { uid: 1000, gid: 1000 }],
    ['0', { uid: 0, gid: 0 }],
    ['1000:50', { uid: 1000, gid: 50 }],
    ['app', { uid: 1000, gid: 1000 }],
    ['worker', { uid: 1001, gid: 50 }], // primary group from passwd
    ['worker:app', { uid: 1001, gid: 1000 }],
    ['app:staff', { uid: 1000, gid: 50 }],
    ['app:0', { uid: 1000, gid: 0 }],
    ['65534:nogroup', { uid: 65534, gid: 65534 }],
    [' root ', { uid: 0, gid: 0 }],
    ['4294967295', { uid: 4294967295, gid: 4294967295 }],
  ];
  for (const [owner, want] of table) {
    it(`resolves "${owner}"`, () => {
      expect(resolveOwner(owner, passwd, BASE_GROUP)).toEqual(want);
    });
  }

  it('resolves numeric owners without passwd/group files', () => {
    expect(resolveOwner('1000')).toEqual({ uid: 1000, gid: 1000 });
    expect(resolveOwner('1000:2000')).toEqual({ uid: 1000, gid: 2000 });
  });

  it('explains unknown names and invalid owners', () => {
    expect(() => resolveOwner('ghost', passwd, BASE_GROUP)).toThrow(
      /owner "ghost": user "ghost" is not in the base image's \/etc\/passwd; use numeric ids/,
    );
    expect(() => resolveOwner('app:ghosts', passwd, BASE_GROUP)).toThrow(
      /group "ghosts" is not in the base image's \/etc\/group; use numeric ids/,
    );
    expect(() => resolveOwner('1000:ghosts', passwd, BASE_GROUP)).toThrow(/group "ghosts" is not in the base image's \/etc\/group/);
    expect(() => resolveOwner('app')).toThrow(
      /user "app" is not in the base image's \/etc\/passwd \(the base image has no \/etc\/passwd\); use numeric ids/,
    );
    expect(() => resolveOwner('0:staff', passwd)).toThrow(/the base image has no \/etc\/group/);
    for (const bad of ['', ':', ':1000', '1000:', 'a:b:c', '4294967296']) {
      expect(() => resolveOwner(bad, passwd, BASE_GROUP), bad).toThrow(/invalid owner/);
    }
  });
});

describe('whiteout names (src/layer/whiteout.ts)', () => {
  it('classifies deletes, opaque markers, reserved names and ordinary entries', () => {
    expect(whiteoutOf('/etc/.wh.motd')).toEqual({ kind: 'delete', path: '/etc/motd' });
    expect(whiteoutOf('/.wh.opt')).toEqual({ kind: 'delete', path: '/opt' });
    expect(whiteoutOf('/var/cache/.wh..wh..opq')).toEqual({ kind: 'opaque', dir: '/var/cache' });
    expect(whiteoutOf('/x/.wh..wh.plnk')).toEqual({ kind: 'reserved' });
    expect(whiteoutOf('/etc/motd.wh.x')).toBeUndefined();
    expect(whiteoutName('.wh...')).toEqual({ kind: 'delete', name: '..' }); // the extractor refuses it
    expect(whiteoutPath('/etc/motd')).toBe('/etc/.wh.motd');
  });
});
