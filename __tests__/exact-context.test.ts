import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCopySource } from '../src/config/sources.js';
import type { CopyStep } from '../src/config/model.js';
import { FsView } from '../src/build/fsview.js';
import { stepEntries, type StepContext } from '../src/build/steps.js';
import { createTarStream } from '../src/layer/tarwriter.js';
import { readTar, type TarHeader } from '../src/layer/tarstream.js';
import { Readable } from 'node:stream';

/** Issue 12, exact copies out of the build context: rewrites while reading, hardlinks, symlinked directories, file names. */

let work: string;
beforeAll(() => { work = mkdtempSync(join(tmpdir(), 'exact-context-')); });
afterAll(() => { if (work) rmSync(work, { recursive: true, force: true }); });

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
        if (!rewritten && seen > (1 << 20)) {
          rewritten = true;
          const fd = openSync(join(ctxDir, 'big.bin'), 'r+'); // same inode, same size
          writeSync(fd, Buffer.alloc(size, 'b'), 0, size, 0);
          closeSync(fd);
        }
      }
    })();
    await expect(drain).rejects.toThrow(/\/opt\/big\.bin changed while building the layer: big\.bin in the build context was written to while it was read: its mtime, ctime changed/);
    expect(rewritten).toBe(true);
  });

  it('an untouched file writes as before', async () => {
    const ctxDir = context('still');
    writeFileSync(join(ctxDir, 'f.txt'), 'hello');
    const layer = await layerOf(await copyStep(ctxDir, ['f.txt'], '/f.txt'), ctxDir);
    expect(layer.map((e) => [e.header.name, e.content])).toEqual([['f.txt', 'hello']]);
  });
});
