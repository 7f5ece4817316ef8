import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeSync,
  createWriteStream,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCopySource } from '../src/config/sources.js';
import type { CopyStep } from '../src/config/model.js';
import { FsView } from '../src/build/fsview.js';
import { stepEntries, type StepContext } from '../src/build/steps.js';
import { createTarStream } from '../src/layer/tarwriter.js';
import { readTar, type TarHeader } from '../src/layer/tarstream.js';
import type { Readable } from 'node:stream';
import { run } from './helpers/exec.js';

/** Issue 12, exact copies out of the build context: rewrites while reading, hardlinks, symlinked directories, file names. */

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'exact-context-'));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function context(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  return dir;
}

async function copyStep(ctxDir: string, patterns: string[], to: string): Promise<CopyStep> {
  const sources = [];
  for (const p of patterns) {
    const r = await resolveCopySource(ctxDir, p);
    expect(r.problems).toEqual([]);
    sources.push(r.source!);
  }
  return { kind: 'copy', sources, to, pos: { file: join(ctxDir, 'oci-build.yml'), line: 7, column: 9 } };
}

function stepContext(ctxDir: string): StepContext {
  return { context: ctxDir, platform: 'linux/amd64', fs: new FsView(), resolveOwner: async () => ({ uid: 0, gid: 0 }) };
}

/** Headers and contents of the layer the entries make. */
async function layerOf(step: CopyStep, ctxDir: string): Promise<{ header: TarHeader; content: string }[]> {
  const out: { header: TarHeader; content: string }[] = [];
  const tar = createTarStream(await stepEntries(step, stepContext(ctxDir)), new Date(0));
  for await (const { header, body } of readTar(tar)) {
    const parts: Buffer[] = [];
    for await (const b of body) parts.push(b);
    out.push({ header, content: Buffer.concat(parts).toString() });
  }
  return out;
}

describe('a source file rewritten in place while its layer is written', () => {
  it('fails the write naming the file, instead of pushing a mix of old and new bytes', async () => {
    const ctxDir = context('torn');
    const size = 4 << 20;
    writeFileSync(join(ctxDir, 'big.bin'), Buffer.alloc(size, 'a'));
    const entries = await stepEntries(await copyStep(ctxDir, ['big.bin'], '/opt/big.bin'), stepContext(ctxDir));
    const tar = createTarStream(entries, new Date(0));
    let seen = 0;
    let rewritten = false;
    const drain = (async () => {
      for await (const chunk of tar as Readable) {
        seen += (chunk as Buffer).length;
        if (!rewritten && seen > 1 << 20) {
          rewritten = true;
          const fd = openSync(join(ctxDir, 'big.bin'), 'r+'); // same inode, same size
          writeSync(fd, Buffer.alloc(size, 'b'), 0, size, 0);
          closeSync(fd);
        }
      }
    })();
    await expect(drain).rejects.toThrow(
      /\/opt\/big\.bin changed while building the layer: big\.bin in the build context was written to while it was read: its mtime, ctime changed/,
    );
    expect(rewritten).toBe(true);
  });

  it('an untouched file writes as before', async () => {
    const ctxDir = context('still');
    writeFileSync(join(ctxDir, 'f.txt'), 'hello');
    const layer = await layerOf(await copyStep(ctxDir, ['f.txt'], '/f.txt'), ctxDir);
    expect(layer.map((e) => [e.header.name, e.content])).toEqual([['f.txt', 'hello']]);
  });
});

describe('hardlinks in the build context', () => {
  it('stay hardlinks: the first path in sorted order holds the content, the others link to it', async () => {
    const ctxDir = context('links');
    mkdirSync(join(ctxDir, 'd'));
    writeFileSync(join(ctxDir, 'd/z.txt'), 'shared');
    linkSync(join(ctxDir, 'd/z.txt'), join(ctxDir, 'd/a.txt'));
    linkSync(join(ctxDir, 'd/z.txt'), join(ctxDir, 'd/m.txt'));
    writeFileSync(join(ctxDir, 'd/solo.txt'), 'solo');
    const layer = await layerOf(await copyStep(ctxDir, ['d'], '/app/'), ctxDir);
    const rows = layer.map(({ header: h, content }) => [h.name, h.type, h.type === 'hardlink' ? h.linkname : content]);
    expect(rows).toEqual([
      ['app/', 'dir', ''],
      ['app/a.txt', 'file', 'shared'],
      ['app/m.txt', 'hardlink', 'app/a.txt'],
      ['app/solo.txt', 'file', 'solo'],
      ['app/z.txt', 'hardlink', 'app/a.txt'],
    ]);
  });

  it('GNU tar extracts them as one inode', async () => {
    const ctxDir = context('links-gnu');
    writeFileSync(join(ctxDir, 'b'), 'x');
    linkSync(join(ctxDir, 'b'), join(ctxDir, 'a'));
    const step = await copyStep(ctxDir, ['a', 'b'], '/x/');
    const tarPath = join(work, 'links.tar');
    await pipeline(createTarStream(await stepEntries(step, stepContext(ctxDir)), new Date(0)), createWriteStream(tarPath));
    const out = context('links-out');
    await run('tar', ['-xf', tarPath, '-C', out]);
    expect(statSync(join(out, 'x/a')).ino).toBe(statSync(join(out, 'x/b')).ino);
    expect(statSync(join(out, 'x/a')).nlink).toBe(2);
  });
});

describe('copy: d/ where d is a symlink to a directory', () => {
  it("copies the directory's contents, as Docker and buildah do", async () => {
    const ctxDir = context('symdir');
    mkdirSync(join(ctxDir, 'real/sub'), { recursive: true });
    writeFileSync(join(ctxDir, 'real/sub/f.txt'), 'f');
    symlinkSync('real', join(ctxDir, 'd'));
    const layer = await layerOf(await copyStep(ctxDir, ['d/'], '/d/'), ctxDir);
    expect(layer.map(({ header: h }) => [h.name, h.type])).toEqual([
      ['d/', 'dir'],
      ['d/sub/', 'dir'],
      ['d/sub/f.txt', 'file'],
    ]);
  });

  it('without the slash the symlink itself is copied (unchanged)', async () => {
    const ctxDir = context('symdir-noslash');
    mkdirSync(join(ctxDir, 'real'));
    symlinkSync('real', join(ctxDir, 'd'));
    const layer = await layerOf(await copyStep(ctxDir, ['d'], '/opt/d'), ctxDir);
    expect(layer.map(({ header: h }) => [h.name, h.type, h.linkname])).toEqual([
      ['opt/', 'dir', ''],
      ['opt/d', 'symlink', 'real'],
    ]);
  });
});

describe('file names that are not UTF-8', () => {
  it('are refused naming the build file line, the directory and the bytes', async () => {
    const ctxDir = context('latin1');
    mkdirSync(join(ctxDir, 'docs'));
    writeFileSync(join(ctxDir, 'docs/ok.txt'), 'ok');
    writeFileSync(Buffer.concat([Buffer.from(join(ctxDir, 'docs/caf')), Buffer.from([0xe9]), Buffer.from('.txt')]), 'latin-1 name');
    const step = await copyStep(ctxDir, ['docs'], '/docs/');
    await expect(stepEntries(step, stepContext(ctxDir))).rejects.toThrow(
      /oci-build\.yml:7: docs \(in the build context .*\) has a file name that is not valid UTF-8: "caf\\xe9\.txt"; rename it/,
    );
  });
});

describe('a glob matching a file name that is not UTF-8', () => {
  it('is a problem naming the directory, not "does not exist"', async () => {
    const ctxDir = context('latin1-glob');
    writeFileSync(Buffer.concat([Buffer.from(join(ctxDir, 'caf')), Buffer.from([0xe9])]), 'x');
    const r = await resolveCopySource(ctxDir, 'caf*');
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.message).toMatch(new RegExp(`a file name in ${ctxDir} is not valid UTF-8`));
    expect(r.problems[0]!.hint).toMatch(/rename the file/);
  });
});
