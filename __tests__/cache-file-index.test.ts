import { createHash } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileIndex, writeIndex } from '../src/cache/file-index.js';
import { FileHasher, statSig } from '../src/cache/file-hasher.js';

const root = mkdtempSync(join(tmpdir(), 'file-index-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => {
  const d = join(root, `${name}-${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};
const sha = (s: string | Buffer) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const PAST = new Date(Date.now() - 3600_000);
const hex = (c: string) => c.repeat(64);

describe('files.idx (the file hasher records)', () => {
  it('reads back what it wrote, names with tabs, newlines, % and non-ASCII included', async () => {
    const dir = fresh('roundtrip');
    const file = join(dir, 'files.idx');
    const recs: [string, { sig: string; hex: string; usedAt: number }][] = [
      ['/a/b/plain.js', { sig: '10:1:2:3:4:33188', hex: hex('a'), usedAt: 5 }],
      ['/a/b/tab\there', { sig: '11:1:2:3:4:33188', hex: hex('b'), usedAt: 6 }],
      ['/a/new\nline/x', { sig: '12:1:2:3:4:33261', hex: hex('c'), usedAt: 7 }],
      ['/a/b/100%41', { sig: '13:1:2:3:4:33188', hex: hex('d'), usedAt: 8 }],
      ['/a/ünï/çødé', { sig: '14:1:2:3:4:33188', hex: hex('e'), usedAt: 9 }],
      ['/top', { sig: '15:1:2:3:4:33188', hex: hex('f'), usedAt: 10 }],
    ];
    await writeIndex(file, recs);
    const idx = (await FileIndex.read(file))!;
    for (const [p, r] of recs) expect(idx.get(p)).toEqual(r);
    expect(idx.get('/a/b/missing')).toBeUndefined();
    expect(idx.get('/nowhere/x')).toBeUndefined();
    expect(new Map(idx.entries())).toEqual(new Map(recs));
    // One line per record plus one per directory: no path written twice for a directory's files.
    expect(
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.includes('plain.js')),
    ).toEqual([`plain.js\t10:1:2:3:4:33188\t${hex('a')}\t5`]);
  });

  it('a damaged block loses its bad lines only; a cut-off file keeps the directories before the cut', async () => {
    const dir = fresh('damaged');
    const file = join(dir, 'files.idx');
    await writeIndex(file, [
      ['/d1/a', { sig: '1:1:1:1:1:1', hex: hex('1'), usedAt: 1 }],
      ['/d1/b', { sig: '2:1:1:1:1:1', hex: hex('2'), usedAt: 1 }],
      ['/d2/c', { sig: '3:1:1:1:1:1', hex: hex('3'), usedAt: 1 }],
    ]);
    const text = readFileSync(file, 'utf8');
    // Same length, so the block lengths still hold: b's hash is no longer hex.
    writeFileSync(file, text.replace(hex('2'), 'z'.repeat(64)));
    let idx = (await FileIndex.read(file))!;
    expect(idx.get('/d1/a')?.hex).toBe(hex('1'));
    expect(idx.get('/d1/b')).toBeUndefined();
    expect(idx.get('/d2/c')?.hex).toBe(hex('3'));
    writeFileSync(file, text.slice(0, text.length - 10));
    idx = (await FileIndex.read(file))!;
    expect(idx.get('/d1/a')?.hex).toBe(hex('1'));
    expect(idx.get('/d2/c')).toBeUndefined();
    // Another format altogether: no records (the next save rewrites it).
    writeFileSync(file, '{"version":1,"files":{}}');
    expect([...(await FileIndex.read(file))!.entries()]).toEqual([]);
  });

  it('an old files.json is read once (no file hashed again) and replaced by files.idx', async () => {
    const dir = fresh('legacy');
    const cache = join(dir, 'cache');
    mkdirSync(cache);
    const p = join(dir, 'app.js');
    writeFileSync(p, 'console.log(1)');
    utimesSync(p, PAST, PAST);
    const st = statSync(p, { bigint: true });
    // The format 1 record as the previous release wrote it.
    const old = {
      size: String(st.size),
      mtimeNs: String(st.mtimeNs),
      ctimeNs: String(st.ctimeNs),
      ino: String(st.ino),
      dev: String(st.dev),
      mode: Number(st.mode),
      hash: sha('console.log(1)'),
      usedAt: Date.now(),
    };
    writeFileSync(join(cache, 'files.json'), JSON.stringify({ version: 1, files: { [p]: old } }));
    const h = new FileHasher(cache);
    expect(await h.hash(p)).toBe(sha('console.log(1)'));
    expect(h.stats).toMatchObject({ unchanged: 1, hashed: 0 });
    await h.save();
    expect(existsSync(join(cache, 'files.json'))).toBe(false);
    expect((await FileIndex.read(join(cache, 'files.idx')))!.get(p)).toMatchObject({ sig: statSig(st), hex: old.hash.slice(7) });
    const next = new FileHasher(cache);
    expect(await next.hash(p)).toBe(sha('console.log(1)'));
    expect(next.stats).toMatchObject({ unchanged: 1, hashed: 0 });
  });

  it('a same-size rewrite with size and mtime put back is caught by ctime; a rename over it by the inode', async () => {
    const dir = fresh('evidence');
    const cache = join(dir, 'cache');
    const p = join(dir, 'lib.js');
    writeFileSync(p, 'AAAA');
    utimesSync(p, PAST, PAST);
    const build = async () => {
      const h = new FileHasher(cache);
      const d = await h.hash(p);
      await h.save();
      return { d, stats: { ...h.stats } };
    };
    expect((await build()).d).toBe(sha('AAAA'));
    expect((await build()).stats).toMatchObject({ unchanged: 1, hashed: 0 });

    // Same size, mtime set back to what was recorded: only ctime says it changed. (Past the
    // kernel's timestamp tick first: ctime is a coarse clock, a few ms.)
    await new Promise((r) => setTimeout(r, 30));
    const before = statSync(p, { bigint: true });
    writeFileSync(p, 'BBBB');
    utimesSync(p, PAST, PAST);
    const after = statSync(p, { bigint: true });
    expect([after.size, after.mtimeNs, after.ino]).toEqual([before.size, before.mtimeNs, before.ino]);
    let r = await build();
    expect(r.d).toBe(sha('BBBB'));
    expect(r.stats).toMatchObject({ unchanged: 0, hashed: 1 });

    // Another file renamed over it (same size and mtime): a new inode. A hard link keeps the
    // old inode alive, so the new one cannot reuse its number.
    linkSync(p, join(dir, 'keep'));
    const tmp = join(dir, 'lib.js.new');
    writeFileSync(tmp, 'CCCC');
    utimesSync(tmp, PAST, PAST);
    renameSync(tmp, p);
    r = await build();
    expect(r.d).toBe(sha('CCCC'));
    expect(r.stats).toMatchObject({ unchanged: 0, hashed: 1 });
    expect((await build()).stats).toMatchObject({ unchanged: 1, hashed: 0 });
  });
});
