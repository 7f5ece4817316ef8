import {
  createReadStream,
  createWriteStream,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  lstatSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Header, Parser, Pax, type ReadEntry } from 'tar';
import { BlobStore } from '../src/layer/blobstore.js';
import { comparePaths, encodeEntryHeader, prepareEntries } from '../src/layer/tarwriter.js';
import type { LayerEntry } from '../src/layer/types.js';
import { writeLayer } from '../src/layer/writer.js';
import { MediaType } from '../src/oci/mediatypes.js';
import { run } from './helpers/exec.js';

const MTIME = new Date(1_700_000_000 * 1000); // 2023-11-14 22:13:20 UTC
const UTC = { ...process.env, TZ: 'UTC', LC_ALL: 'C' };
const isRoot = process.getuid?.() === 0;

let work: string;
let store: BlobStore;
let coopFile: string;
const COOP = Buffer.from('#!/bin/sh\necho coop\n');
const CONF = Buffer.from('key = "value"\n');
const LONG_DIR = `/opt/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const LONG_FILE = `${LONG_DIR}/${'f'.repeat(40)}.txt`;
const LONG_TARGET = `../${'t'.repeat(120)}`;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'layer-writer-'));
  store = new BlobStore(join(work, 'blobs'));
  coopFile = join(work, 'coop');
  writeFileSync(coopFile, COOP);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function fileFromDisk(path: string, size: number, mode: number, uid = 0, gid = 0): LayerEntry {
  return { path, type: 'file', mode, uid, gid, size, open: () => createReadStream(coopFile) };
}
function fileFromBuffer(path: string, buf: Buffer, mode = 0o644, uid = 0, gid = 0): LayerEntry {
  return { path, type: 'file', mode, uid, gid, size: buf.length, open: () => Readable.from([buf]) };
}
const dir = (path: string, mode = 0o755, uid = 0, gid = 0): LayerEntry => ({ path, type: 'dir', mode, uid, gid });

function sampleEntries(): LayerEntry[] {
  // Deliberately out of order: the writer sorts.
  return [
    fileFromDisk('/usr/local/bin/coop', COOP.length, 0o4755, 1000, 1000),
    { path: '/usr/local/bin/coop-hard', type: 'hardlink', mode: 0o4755, uid: 1000, gid: 1000, linkname: '/usr/local/bin/coop' },
    { path: '/usr/bin/coop', type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: '../local/bin/coop' },
    fileFromBuffer('/etc/coop/app.conf', CONF, 0o640, 1000, 50),
    dir('/usr/local/bin'),
    dir('/usr/local'),
    dir('/usr'),
    dir('/usr/bin'),
    dir('/etc/coop', 0o2750, 1000, 50),
    dir('/etc'),
    dir('/opt'),
    dir(LONG_DIR.slice(0, LONG_DIR.lastIndexOf('/'))),
    dir(LONG_DIR, 0o700, 65534, 65534),
    fileFromBuffer(LONG_FILE, Buffer.from('long\n'), 0o600, 65534, 65534),
    { path: `${LONG_DIR}/long-link`, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: LONG_TARGET },
    dir('/tmp', 0o1777),
  ];
}

async function sha256File(path: string): Promise<string> {
  return (await run('sha256sum', [path])).stdout.split(' ')[0]!;
}

interface Listed {
  perms: string;
  owner: string;
  size: number;
  date: string;
  name: string;
  link?: string;
}

/** Parses GNU `tar -tv --full-time` lines. */
function parseListing(out: string): Listed[] {
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const m = /^(\S{10})\s+(\S+)\s+(\d+)\s+(\S+ \S+)\s+(.*)$/.exec(line);
      if (!m) throw new Error(`unexpected tar line: ${line}`);
      let name = m[5]!;
      let link: string | undefined;
      const sym = name.indexOf(' -> ');
      const hard = name.indexOf(' link to ');
      if (sym >= 0) {
        link = name.slice(sym + 4);
        name = name.slice(0, sym);
      } else if (hard >= 0) {
        link = name.slice(hard + 9);
        name = name.slice(0, hard);
      }
      return { perms: m[1]!, owner: m[2]!, size: Number(m[3]), date: m[4]!, name, ...(link !== undefined ? { link } : {}) };
    });
}

async function listBlob(path: string, numeric = true): Promise<Listed[]> {
  const args = [...(numeric ? ['--numeric-owner'] : []), '--quoting-style=literal', '--full-time', '-tvzf', path];
  return parseListing((await run('tar', args, { env: UTC })).stdout);
}

/** Every entry (including pax header fields) as node-tar's Parser decodes it. */
async function parseEntries(tarBytes: Buffer): Promise<ReadEntry[]> {
  const entries: ReadEntry[] = [];
  await new Promise<void>((resolve, reject) => {
    const p = new Parser({
      onReadEntry: (e) => {
        entries.push(e);
        e.resume();
      },
    });
    p.on('end', resolve);
    p.on('error', reject);
    p.on('warn', (code: string, msg: string) => reject(new Error(`${code} ${msg}`)));
    p.end(tarBytes);
  });
  return entries;
}

describe('writeLayer', () => {
  it('writes a deterministic gzip layer the system tar reads with names, modes, owners, links and mtimes', async () => {
    const built = await writeLayer(sampleEntries(), store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } });
    const blob = store.path(built.descriptor.digest);
    expect(built.descriptor.mediaType).toBe(MediaType.OciLayerGzip);

    const listed = await listBlob(blob);
    const byName = new Map(listed.map((l) => [l.name, l]));
    const names = listed.map((l) => l.name);
    expect(names).toEqual([
      'etc/',
      'etc/coop/',
      'etc/coop/app.conf',
      'opt/',
      `${LONG_DIR.slice(1, LONG_DIR.lastIndexOf('/'))}/`,
      `${LONG_DIR.slice(1)}/`,
      `${LONG_DIR.slice(1)}/${'f'.repeat(40)}.txt`,
      `${LONG_DIR.slice(1)}/long-link`,
      'tmp/',
      'usr/',
      'usr/bin/',
      'usr/bin/coop',
      'usr/local/',
      'usr/local/bin/',
      'usr/local/bin/coop',
      'usr/local/bin/coop-hard',
    ]);
    for (const l of listed) expect(l.date).toBe('2023-11-14 22:13:20');
    expect(byName.get('usr/local/bin/coop')).toMatchObject({ perms: '-rwsr-xr-x', owner: '1000/1000', size: COOP.length });
    expect(byName.get('usr/local/bin/coop-hard')).toMatchObject({ perms: 'hrwsr-xr-x', link: 'usr/local/bin/coop', size: 0 });
    expect(byName.get('usr/bin/coop')).toMatchObject({ perms: 'lrwxrwxrwx', owner: '0/0', link: '../local/bin/coop' });
    expect(byName.get('etc/coop/')).toMatchObject({ perms: 'drwxr-s---', owner: '1000/50' });
    expect(byName.get('etc/coop/app.conf')).toMatchObject({ perms: '-rw-r-----', owner: '1000/50', size: CONF.length });
    expect(byName.get('tmp/')).toMatchObject({ perms: 'drwxrwxrwt', owner: '0/0' });
    expect(byName.get(`${LONG_DIR.slice(1)}/${'f'.repeat(40)}.txt`)).toMatchObject({ perms: '-rw-------', owner: '65534/65534', size: 5 });
    expect(byName.get(`${LONG_DIR.slice(1)}/long-link`)).toMatchObject({ link: LONG_TARGET });
    expect(LONG_FILE.length).toBeGreaterThan(100);
    expect(LONG_TARGET.length).toBeGreaterThan(100);

    // Without --numeric-owner tar prints user names when the archive has them: it must not.
    const plain = (await run('tar', ['--full-time', '-tvzf', blob], { env: UTC })).stdout;
    expect(plain).not.toMatch(/root|nobody|nogroup|daemon/);
    for (const l of await listBlob(blob, false)) expect(l.owner).toMatch(/^\d+\/\d+$/);

    // Header details: no uname/gname, no atime/ctime, mtime exact.
    const tarBytes = gunzipSync(readFileSync(blob));
    const entries = await parseEntries(tarBytes);
    expect(entries).toHaveLength(names.length);
    for (const e of entries) {
      expect(e.uname ?? '').toBe('');
      expect(e.gname ?? '').toBe('');
      expect(e.atime).toBeUndefined();
      expect(e.ctime).toBeUndefined();
      expect(e.mtime?.getTime()).toBe(MTIME.getTime());
    }
    expect(entries.find((e) => e.path === LONG_FILE.slice(1))).toBeDefined();
    // Ends with two zero blocks, whole blocks only.
    expect(tarBytes.length % 512).toBe(0);
    expect(tarBytes.subarray(-1024).every((b) => b === 0)).toBe(true);
  });

  it('reports diffID, digest and sizes that match sha256sum/gzip, with a reproducible gzip header', async () => {
    const built = await writeLayer(sampleEntries(), store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 9 } });
    const blob = store.path(built.descriptor.digest);
    expect(`sha256:${await sha256File(blob)}`).toBe(built.descriptor.digest);
    expect(statSync(blob).size).toBe(built.descriptor.size);
    const diff = await run('sh', ['-c', `gzip -dc '${blob}' | sha256sum`]);
    expect(`sha256:${diff.stdout.split(' ')[0]}`).toBe(built.diffId);
    const wc = await run('sh', ['-c', `gzip -dc '${blob}' | wc -c`]);
    expect(Number(wc.stdout.trim())).toBe(built.uncompressedSize);
    const head = readFileSync(blob).subarray(0, 10);
    expect([head[0], head[1], head[2]]).toEqual([0x1f, 0x8b, 8]);
    expect(head.readUInt32LE(4)).toBe(0); // MTIME
    expect(head[9]).toBe(3); // OS = Unix on every host
    expect(readdirSync(join(work, 'blobs', 'tmp'))).toEqual([]);
  });

  it('is deterministic: same entries (any input order, fresh streams) give the same diffID and digest', async () => {
    const a = await writeLayer(sampleEntries(), store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } });
    const b = await writeLayer(sampleEntries().reverse(), store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } });
    expect(b.diffId).toBe(a.diffId);
    expect(b.descriptor).toEqual(a.descriptor);
    expect(b.uncompressedSize).toBe(a.uncompressedSize);
    // A different mtime changes the tar; a different level changes only the blob.
    const c = await writeLayer(sampleEntries(), store, { mtime: new Date(0), compression: { algorithm: 'gzip', level: 6 } });
    expect(c.diffId).not.toBe(a.diffId);
    const d = await writeLayer(sampleEntries(), store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 1 } });
    expect(d.diffId).toBe(a.diffId);
    expect(d.descriptor.digest).not.toBe(a.descriptor.digest);
    // Sub-second parts of the mtime are dropped (tar has whole seconds).
    const e = await writeLayer(sampleEntries(), store, {
      mtime: new Date(MTIME.getTime() + 999),
      compression: { algorithm: 'gzip', level: 6 },
    });
    expect(e.diffId).toBe(a.diffId);
  });

  it('extracts with the system tar to the expected files, modes, owners and links', async () => {
    const built = await writeLayer(sampleEntries(), store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } });
    const out = mkdtempSync(join(work, 'x-'));
    await run('tar', ['--numeric-owner', '-xpzf', store.path(built.descriptor.digest), '-C', out]);
    expect(readFileSync(join(out, 'usr/local/bin/coop'))).toEqual(COOP);
    expect(readFileSync(join(out, 'etc/coop/app.conf'))).toEqual(CONF);
    expect(readFileSync(join(out, LONG_FILE), 'utf8')).toBe('long\n');
    const coop = statSync(join(out, 'usr/local/bin/coop'));
    const hard = statSync(join(out, 'usr/local/bin/coop-hard'));
    expect(hard.ino).toBe(coop.ino);
    expect(coop.nlink).toBe(2);
    expect(readlinkSync(join(out, 'usr/bin/coop'))).toBe('../local/bin/coop');
    expect(lstatSync(join(out, 'usr/bin/coop')).isSymbolicLink()).toBe(true);
    expect(statSync(join(out, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(coop.mtime.getTime()).toBe(MTIME.getTime());
  });

  // Only root's tar restores owners and setuid/setgid bits: reported as skipped otherwise.
  it.skipIf(!isRoot)('extracts, as root, with the owners and setuid/setgid modes it recorded', async () => {
    const built = await writeLayer(sampleEntries(), store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } });
    const out = mkdtempSync(join(work, 'x-'));
    await run('tar', ['--numeric-owner', '-xpzf', store.path(built.descriptor.digest), '-C', out]);
    const coop = statSync(join(out, 'usr/local/bin/coop'));
    expect(coop.mode & 0o7777).toBe(0o4755);
    expect([coop.uid, coop.gid]).toEqual([1000, 1000]);
    const conf = statSync(join(out, 'etc/coop'));
    expect([conf.uid, conf.gid, conf.mode & 0o7777]).toEqual([1000, 50, 0o2750]);
  });

  it('sorts parents before children and siblings bytewise', async () => {
    const paths = ['/a-b', '/a/b/c', '/a.c', '/b', '/a', '/a/b', '/A', '/a/b-c', '/a/b/c/d', '/é', '/z'];
    expect([...paths].sort(comparePaths)).toEqual(['/A', '/a', '/a/b', '/a/b/c', '/a/b/c/d', '/a/b-c', '/a-b', '/a.c', '/b', '/z', '/é']);
    const entries = paths.map((p) => dir(p));
    const built = await writeLayer(entries, store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } });
    const names = (await listBlob(store.path(built.descriptor.digest))).map((l) => l.name);
    expect(names).toEqual(['A/', 'a/', 'a/b/', 'a/b/c/', 'a/b/c/d/', 'a/b-c/', 'a-b/', 'a.c/', 'b/', 'z/', 'é/']);
  });

  it('moves content to the first path of a hardlink group so the target precedes its links', async () => {
    const entries: LayerEntry[] = [
      dir('/a'),
      dir('/z'),
      fileFromBuffer('/z/file', Buffer.from('shared\n'), 0o755, 7, 8),
      { path: '/a/link', type: 'hardlink', mode: 0o755, uid: 7, gid: 8, linkname: '/z/file' },
      { path: '/m/link2', type: 'hardlink', mode: 0o755, uid: 7, gid: 8, linkname: '/a/link' },
      { path: '/lower', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, linkname: '/usr/bin/in-lower-layer' },
    ];
    const sorted = prepareEntries(entries);
    expect(sorted.map((e) => [e.path, e.type, e.linkname])).toEqual([
      ['/a', 'dir', undefined],
      ['/a/link', 'file', undefined],
      ['/lower', 'hardlink', '/usr/bin/in-lower-layer'],
      ['/m/link2', 'hardlink', '/a/link'],
      ['/z', 'dir', undefined],
      ['/z/file', 'hardlink', '/a/link'],
    ]);
    const built = await writeLayer(
      entries.filter((e) => e.path !== '/lower'),
      store,
      { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } },
    );
    const out = mkdtempSync(join(work, 'h-'));
    await run('tar', ['-xpzf', store.path(built.descriptor.digest), '-C', out]);
    const ino = statSync(join(out, 'z/file')).ino;
    expect(statSync(join(out, 'a/link')).ino).toBe(ino);
    expect(statSync(join(out, 'm/link2')).ino).toBe(ino);
    expect(readFileSync(join(out, 'z/file'), 'utf8')).toBe('shared\n');
    // The caller's entries are not modified.
    expect(entries[2]!.type).toBe('file');
    expect(() => prepareEntries([dir('/d'), { path: '/l', type: 'hardlink', mode: 0, uid: 0, gid: 0, linkname: '/d' }])).toThrow(
      /is a directory/,
    );
  });

  it('rejects duplicate paths, naming the path', async () => {
    const entries = [dir('/etc'), fileFromBuffer('/etc/x', CONF), fileFromBuffer('/etc/x', COOP)];
    await expect(writeLayer(entries, store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } })).rejects.toThrow(
      /duplicate path in layer: \/etc\/x/,
    );
  });

  it('rejects invalid paths and entries', async () => {
    for (const p of ['etc/x', '/etc/', '/etc/../x', '/', '/a//b']) {
      await expect(writeLayer([dir(p)], store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } })).rejects.toThrow(
        /absolute, normalized/,
      );
    }
    await expect(
      writeLayer([{ path: '/f', type: 'file', mode: 0o644, uid: 0, gid: 0 }], store, {
        mtime: MTIME,
        compression: { algorithm: 'gzip', level: 6 },
      }),
    ).rejects.toThrow(/\/f: a file needs open/);
    await expect(
      writeLayer([{ path: '/s', type: 'symlink', mode: 0o777, uid: 0, gid: 0 }], store, {
        mtime: MTIME,
        compression: { algorithm: 'gzip', level: 6 },
      }),
    ).rejects.toThrow(/\/s: a symlink needs a linkname/);
    await expect(writeLayer([dir('/d', 0o755, -1)], store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } })).rejects.toThrow(
      /uid -1/,
    );
    await expect(writeLayer([dir('/d')], store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 10 } })).rejects.toThrow(/level/);
  });

  it('reads small files by readPath into the same bytes open() gives, and fails on a size that moved', async () => {
    const src = mkdtempSync(join(tmpdir(), 'oci-build-readpath-'));
    try {
      const sizes = [0, 1, 511, 512, 513, 4096, 64 << 10, (64 << 10) + 1];
      const files = sizes.map((n, i) => {
        const host = join(src, `f${i}`);
        writeFileSync(host, Buffer.alloc(n, 0x41 + i));
        const e: LayerEntry = {
          path: `/app/f${i}`,
          type: 'file',
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: n,
          open: () => Readable.from([readFileSync(host)]),
        };
        return { e, host };
      });
      const opts = { mtime: MTIME, compression: { algorithm: 'gzip' as const, level: 1 } };
      const viaOpen = await writeLayer([dir('/app'), ...files.map((f) => f.e)], store, opts);
      const viaPath = await writeLayer([dir('/app'), ...files.map((f) => ({ ...f.e, readPath: f.host }))], store, opts);
      expect(viaPath.diffId).toBe(viaOpen.diffId);
      expect(viaPath.descriptor.digest).toBe(viaOpen.descriptor.digest);
      const grown: LayerEntry = { ...files[4]!.e, readPath: files[4]!.host, size: 100 };
      await expect(writeLayer([grown], store, opts)).rejects.toThrow(
        /\/app\/f4 changed while building the layer: expected 100 bytes, read more/,
      );
      const shrunk: LayerEntry = { ...files[4]!.e, readPath: files[4]!.host, size: 600 };
      await expect(writeLayer([shrunk], store, opts)).rejects.toThrow(
        /\/app\/f4 changed while building the layer: expected 600 bytes, read 513/,
      );
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('reads by readPath a small file that follows a long pax header at the end of a 1 MiB piece', async () => {
    const src = mkdtempSync(join(tmpdir(), 'oci-build-readpath-pax-'));
    try {
      // /app (512) + 15 x (512 + 64 KiB) + 512 + 55 KiB = 1 MiB - 512: the piece is not full yet;
      // then a file with 3 KB of xattrs (a long pax header) and 64 KiB read into the same piece.
      const sizes = [...Array.from({ length: 15 }, () => 65536), 56320, 65536];
      const files = sizes.map((n, i) => {
        const host = join(src, `f${String(i).padStart(2, '0')}`);
        writeFileSync(host, Buffer.alloc(n, 0x30 + i));
        const e: LayerEntry = {
          path: `/app/f${String(i).padStart(2, '0')}`,
          type: 'file',
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: n,
          open: () => Readable.from([readFileSync(host)]),
          ...(i === sizes.length - 1 ? { xattrs: { 'user.big': Buffer.alloc(3000, 0x78) } } : {}),
        };
        return { e, host };
      });
      const opts = { mtime: MTIME, compression: { algorithm: 'gzip' as const, level: 1 } };
      const viaOpen = await writeLayer([dir('/app'), ...files.map((f) => f.e)], store, opts);
      const viaPath = await writeLayer([dir('/app'), ...files.map((f) => ({ ...f.e, readPath: f.host }))], store, opts);
      expect(viaPath.diffId).toBe(viaOpen.diffId);
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  it('fails naming the file when its stream is shorter or longer than size, and removes the temp file', async () => {
    const short: LayerEntry = {
      path: '/app/short',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 100,
      open: () => Readable.from([Buffer.alloc(60)]),
    };
    await expect(writeLayer([dir('/app'), short], store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } })).rejects.toThrow(
      /\/app\/short changed while building the layer: expected 100 bytes, read 60/,
    );
    const long: LayerEntry = {
      path: '/app/long',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 10,
      open: () => Readable.from([Buffer.alloc(8), Buffer.alloc(8)]),
    };
    await expect(writeLayer([long], store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } })).rejects.toThrow(
      /\/app\/long changed while building the layer: expected 10 bytes/,
    );
    const broken: LayerEntry = {
      path: '/app/gone',
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      size: 10,
      open: () => createReadStream(join(work, 'does-not-exist')),
    };
    await expect(writeLayer([broken], store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } })).rejects.toThrow(/ENOENT/);
    expect(readdirSync(join(work, 'blobs', 'tmp'))).toEqual([]);
  });

  it('writes an empty layer as two zero blocks', async () => {
    const built = await writeLayer([], store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 6 } });
    expect(built.uncompressedSize).toBe(1024);
    expect(built.diffId).toBe(`sha256:${createHash('sha256').update(Buffer.alloc(1024)).digest('hex')}`);
    expect(built.diffId).toBe('sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
  });

  it('uses pax records for non-ASCII names and sizes over 8 GiB', async () => {
    const name = '/srv/données/naïve-ü.txt';
    const built = await writeLayer([fileFromBuffer(name, Buffer.from('x'))], store, {
      mtime: MTIME,
      compression: { algorithm: 'gzip', level: 6 },
    });
    const listed = await listBlob(store.path(built.descriptor.digest));
    expect(listed.map((l) => l.name)).toEqual([name.slice(1)]);

    const huge = 9 * 1024 ** 3;
    const hdr = encodeEntryHeader(
      { path: '/big', type: 'file', mode: 0o644, uid: 0, gid: 0, size: huge, open: () => Readable.from([]) },
      MTIME,
    );
    expect(hdr.length).toBe(3 * 512);
    expect(String.fromCharCode(hdr[156]!)).toBe('x');
    expect(hdr.subarray(512, 1024).toString('utf8')).toContain(`size=${huge}\n`);
    const pax = Pax.parse(hdr.subarray(512, 1024).toString('utf8').replace(/\0+$/, ''));
    const decoded = new Header(hdr, 1024, pax);
    expect(decoded.cksumValid).toBe(true);
    expect([decoded.path, decoded.size, decoded.type]).toEqual(['big', huge, 'File']);
  });

  it('streams a 64 MiB file without holding it in memory', async () => {
    const big = join(work, 'big.bin');
    const size = 64 << 20;
    await new Promise<void>((resolve, reject) => {
      const ws = createWriteStream(big);
      ws.on('error', reject);
      ws.on('finish', resolve);
      const chunk = randomBytes(1 << 20);
      let i = 0;
      const write = () => {
        while (i < 64) {
          i++;
          // Vary chunks a little so the data does not compress to nothing.
          chunk[0] = i;
          if (!ws.write(Buffer.from(chunk))) {
            ws.once('drain', write);
            return;
          }
        }
        ws.end();
      };
      write();
    });
    const entry: LayerEntry = { path: '/data/big.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, size, open: () => createReadStream(big) };
    (globalThis as { gc?: () => void }).gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    let built: Awaited<ReturnType<typeof writeLayer>>;
    try {
      built = await writeLayer([dir('/data'), entry], store, { mtime: MTIME, compression: { algorithm: 'gzip', level: 1 } });
    } finally {
      clearInterval(timer);
    }
    peak = Math.max(peak, process.memoryUsage().rss);
    const growth = peak - base;
    console.log(`rss growth while writing a 64 MiB layer: ${(growth / 2 ** 20).toFixed(1)} MiB`);
    expect(growth).toBeLessThan(48 << 20);
    expect(built.uncompressedSize).toBe(512 + 512 + size + 1024);
    const diff = await run('sh', ['-c', `gzip -dc '${store.path(built.descriptor.digest)}' | sha256sum`]);
    expect(`sha256:${diff.stdout.split(' ')[0]}`).toBe(built.diffId);
    rmSync(big);
  });
});
