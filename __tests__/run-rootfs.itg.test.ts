import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { extractLayer } from '../src/run/extract.js';
import { diffSnapshots, takeSnapshot } from '../src/run/snapshot.js';
import { RootfsCache } from '../src/run/rootfs.js';
import { sha256 } from '../src/oci/digest.js';
import { rawTar, type RawEntry } from './helpers/raw-layers.js';

/**
 * The pieces of run: steps in-process (as root): layer extraction with OCI whiteout semantics,
 * the before/after diff that becomes a run layer, and the rootfs cache's one extraction per chain.
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oci-build-rootfs-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function fresh(): string {
  const d = join(dir, `r${++n}`);
  mkdirSync(d);
  return d;
}

async function apply(root: string, entries: RawEntry[], gzip = false): Promise<string[]> {
  const notes: string[] = [];
  const tar = rawTar(entries);
  await extractLayer(root, Readable.from([gzip ? gzipSync(tar) : tar]), { label: 'test layer', note: (m) => notes.push(m) });
  return notes;
}

const ls = (p: string) => readdirSync(p).sort();

describe.skipIf(process.getuid?.() !== 0)('layer extraction', () => {
  it('keeps owners, modes (setuid too), symlinks and hardlinks; applies whiteouts and opaque directories', async () => {
    const root = fresh();
    await apply(
      root,
      [
        { name: 'd/', type: 'Directory' },
        { name: 'd/old', content: 'old' },
        { name: 'd/sub/', type: 'Directory', mode: 0o750, uid: 7, gid: 8 },
        { name: 'd/sub/f', content: 'f' },
        { name: 'keep', content: 'keep' },
        { name: 'gone', content: 'gone' },
        { name: 'link', type: 'SymbolicLink', linkpath: 'keep', uid: 3, gid: 4 },
        { name: 'suid', content: '#!/bin/sh\n', mode: 0o4755, uid: 1000, gid: 50 },
        { name: 'hard', type: 'Link', linkpath: 'keep' },
        { name: 'e/', type: 'Directory' },
        { name: 'e/lower', content: 'lower' },
      ],
      true,
    );
    expect(lstatSync(join(root, 'suid')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(root, 'suid')).uid).toBe(1000);
    expect(lstatSync(join(root, 'd/sub')).mode & 0o7777).toBe(0o750);
    expect(lstatSync(join(root, 'link')).uid).toBe(3);
    expect(readlinkSync(join(root, 'link'))).toBe('keep');
    expect(lstatSync(join(root, 'hard')).ino).toBe(lstatSync(join(root, 'keep')).ino);

    await apply(root, [
      { name: 'd/.wh..wh..opq', content: '' },
      { name: 'd/new', content: 'new' },
      { name: 'd/sub2/', type: 'Directory' },
      { name: '.wh.gone', content: '' },
      { name: 'e/kept', content: 'kept' },
      { name: 'e/.wh..wh..opq', content: '' }, // after a child of this layer: only lower content goes
      { name: '.wh..wh.plnk', content: '' }, // aufs metadata: ignored
    ]);
    expect(ls(join(root, 'd'))).toEqual(['new', 'sub2']);
    expect(ls(join(root, 'e'))).toEqual(['kept']);
    expect(ls(root)).toEqual(['d', 'e', 'hard', 'keep', 'link', 'suid']);
  });

  it('resolves parents through symlinks inside the root (a merged /usr base), and replaces across types', async () => {
    const root = fresh();
    await apply(root, [
      { name: 'usr/bin/', type: 'Directory' },
      { name: 'bin', type: 'SymbolicLink', linkpath: 'usr/bin' },
      { name: 'x/', type: 'Directory' },
      { name: 'x/inside', content: 'x' },
      { name: 'f', content: 'file' },
    ]);
    const notes = await apply(root, [
      { name: 'bin/tool', content: 'tool' },
      { name: 'x', content: 'now a file' }, // a file over a directory replaces it
      { name: 'f/', type: 'Directory' }, // a directory over a file replaces it
      { name: 'dev/null', type: 'CharacterDevice' as RawEntry['type'] },
    ]);
    expect(readFileSync(join(root, 'usr/bin/tool'), 'utf8')).toBe('tool');
    expect(lstatSync(join(root, 'bin')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(root, 'x'), 'utf8')).toBe('now a file');
    expect(lstatSync(join(root, 'f')).isDirectory()).toBe(true);
    expect(notes).toEqual(['test layer: skipped device node /dev/null']);
  });
});

describe.skipIf(process.getuid?.() !== 0)('snapshot diff', () => {
  it('lists added, changed and deleted paths: one whiteout per deleted subtree, hardlinks as links', async () => {
    const root = fresh();
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/conf'), 'a');
    writeFileSync(join(root, 'etc/same'), 'same');
    writeFileSync(join(root, 'etc/mode'), 'm');
    mkdirSync(join(root, 'old/deep/er'), { recursive: true });
    writeFileSync(join(root, 'old/deep/er/f'), 'f');
    mkdirSync(join(root, 'proc'));
    const before = takeSnapshot(root);
    writeFileSync(join(root, 'etc/conf'), 'b'); // same size, new content: mtime/ctime
    chmodSync(join(root, 'etc/mode'), 0o600);
    rmSync(join(root, 'old'), { recursive: true });
    mkdirSync(join(root, 'new'));
    chownSync(join(root, 'new'), 1000, 1000);
    writeFileSync(join(root, 'new/a'), 'aa');
    linkSync(join(root, 'new/a'), join(root, 'new/b'));
    symlinkSync('a', join(root, 'new/c'));
    writeFileSync(join(root, 'proc/ignored'), 'mounted over in the sandbox');
    const changes = diffSnapshots(root, before, takeSnapshot(root));
    const summary = changes.entries
      .map((e) => `${e.path} ${e.type}${e.linkname ? ` -> ${e.linkname}` : ''} ${e.mode.toString(8)} ${e.uid}:${e.gid}`)
      .sort();
    expect(summary).toEqual([
      '/.wh.old file 644 0:0',
      '/etc/conf file 644 0:0',
      '/etc/mode file 600 0:0',
      '/new dir 755 1000:1000',
      '/new/a file 644 0:0',
      '/new/b hardlink -> /new/a 644 0:0',
      '/new/c symlink -> a 777 0:0',
    ]);
    expect(changes.deleted).toEqual(['/old']);
    const conf = changes.entries.find((e) => e.path === '/etc/conf')!;
    const chunks: Buffer[] = [];
    for await (const c of conf.open!()) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('b');
  });
});

describe.skipIf(process.getuid?.() !== 0)('rootfs cache', () => {
  it('extracts a chain once and reuses prefixes; checkouts are private copies', async () => {
    const layer = (entries: RawEntry[]) => {
      const tar = rawTar(entries);
      return { diffId: sha256(tar), label: entries[0]!.name, open: () => Readable.from([tar]) };
    };
    const l1 = layer([{ name: 'one', content: '1' }]);
    const l2 = layer([{ name: 'two', content: '2' }]);
    const l3 = layer([{ name: 'three', content: '3' }]);
    const logs: string[] = [];
    const cache = new RootfsCache(join(dir, 'cache'), (m) => logs.push(m));
    const [a, b] = await Promise.all([cache.snapshot([l1, l2]), cache.snapshot([l1, l2])]);
    expect(a).toBe(b);
    expect(cache.stats.layersExtracted).toBe(2);
    const w1 = await cache.checkout([l1, l2]);
    const w2 = await cache.checkout([l1, l2]);
    writeFileSync(join(w1.dir, 'private'), 'w1');
    expect(ls(w2.dir)).toEqual(['one', 'two']);
    await cache.apply(w1, [l3]);
    await cache.adopt(w1);
    const s3 = await cache.snapshot([l1, l2, l3]);
    expect(s3).toBe(w1.dir);
    expect(cache.stats.layersExtracted).toBe(3);
    await cache.dispose();
    expect(() => lstatSync(cache.top)).toThrow();
    expect(logs.filter((l) => l.startsWith('rootfs: extracted'))).toHaveLength(3);
  });

  it('an exclusive checkout extracts into the working directory (no snapshot, no copy), unless a snapshot exists', async () => {
    const layer = (name: string) => {
      const tar = rawTar([{ name, content: name }]);
      return { diffId: sha256(tar), label: name, open: () => Readable.from([tar]) };
    };
    const l1 = layer('one');
    const l2 = layer('two');
    const cache = new RootfsCache(join(dir, 'cache-x'));
    const w = await cache.checkout([l1, l2], { exclusive: true });
    expect(ls(w.dir)).toEqual(['one', 'two']);
    expect(w.chain.map((l) => l.label)).toEqual(['one', 'two']);
    expect(cache.stats).toEqual({ layersExtracted: 2, clones: 0 });
    // With a snapshot of the chain already there, it is copied as before.
    await cache.snapshot([l1]);
    const w2 = await cache.checkout([l1], { exclusive: true });
    expect(ls(w2.dir)).toEqual(['one']);
    expect(cache.stats).toEqual({ layersExtracted: 3, clones: 1 });
    await cache.dispose();
  });
});
