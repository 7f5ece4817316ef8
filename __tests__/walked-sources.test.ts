import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveCopySource } from '../src/config/sources.js';
import type { CopyStep, VariantSpec } from '../src/config/model.js';
import type { Plan } from '../src/plan/plan.js';
import { FsView } from '../src/build/fsview.js';
import { stepEntries, type StepContext } from '../src/build/steps.js';
import { checkSources } from '../src/plan/prereq.js';
import { walkedSources, sigFields } from '../src/build/walked.js';
import { createTarStream } from '../src/layer/tarwriter.js';

/** Issue 16 (S8): the prerequisite walk's listings and stats serve the copy walk, which makes the same layer. */

/** The diff ID main's copy walk gives this tree (mtime 0, root owner, normalized modes). */
const FIXED_DIFF_ID = 'a1f6f02d6e8784bf21edd4e93bf225950655475497ac008db258dc073031e7d0';

let work: string;
let ctx: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'walked-'));
  ctx = join(work, 'ctx');
  const tree = join(ctx, 'tree');
  for (const d of ['a/lib/internal', 'a/node_modules/b/dist', '@s/c/bin', '.bin']) mkdirSync(join(tree, d), { recursive: true });
  writeFileSync(join(tree, 'a/index.js'), 'module.exports = 1;\n');
  writeFileSync(join(tree, 'a/lib/internal/x.js'), 'x'.repeat(3000));
  writeFileSync(join(tree, 'a/node_modules/b/dist/b.js'), 'b\n');
  writeFileSync(join(tree, '@s/c/bin/cli.js'), '#!/usr/bin/env node\n');
  chmodSync(join(tree, '@s/c/bin/cli.js'), 0o700);
  linkSync(join(tree, 'a/index.js'), join(tree, 'a/same.js'));
  symlinkSync('../@s/c/bin/cli.js', join(tree, '.bin/c'));
  for (const f of ['a/index.js', 'a/lib/internal/x.js', 'a/node_modules/b/dist/b.js', '@s/c/bin/cli.js'])
    utimesSync(join(tree, f), 1_600_000_000, 1_600_000_000);
});
afterAll(() => {
  walkedSources.clear();
  if (work) rmSync(work, { recursive: true, force: true });
});
afterEach(() => walkedSources.clear());

async function copyStep(): Promise<CopyStep> {
  const r = await resolveCopySource(ctx, 'tree/');
  expect(r.problems).toEqual([]);
  return { kind: 'copy', sources: [r.source!], to: '/app/', pos: { file: join(ctx, 'oci-build.yml'), line: 5, column: 7 } };
}

function stepContext(): StepContext {
  return { context: ctx, platform: 'linux/amd64', fs: new FsView(), resolveOwner: async () => ({ uid: 0, gid: 0 }) };
}

function planOf(step: CopyStep): Plan {
  const v = { name: 'v', base: 'scratch', steps: [step] } as unknown as VariantSpec;
  return { variants: [v] } as unknown as Plan;
}

/** sha256 of the layer's uncompressed tar (its diff ID). */
async function diffId(step: CopyStep): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createTarStream(await stepEntries(step, stepContext()), new Date(0))) h.update(c as Buffer);
  return h.digest('hex');
}

describe('the prerequisite walk handed to the copy walk', () => {
  it('makes the same layer as a copy that walks the tree itself, and leaves nothing behind', async () => {
    const step = await copyStep();
    const alone = await diffId(step);
    expect(walkedSources.size).toBe(0);
    const bytes = await checkSources(planOf(step));
    expect(bytes).toBe(20 + 3000 + 2 + 20 + 20); // the hardlink's bytes count twice: an upper bound is all the disk check needs
    expect(walkedSources.size).toBeGreaterThan(10);
    expect(await diffId(step)).toBe(alone);
    // Every path and listing the copy reached was taken; left: the copy source itself, which copyInto stats on its own.
    expect(walkedSources.size).toBe(1);
  });

  it('gives the copy the stat the tree had at the check, keeping modes, hardlinks and symlinks', async () => {
    const step = await copyStep();
    await checkSources(planOf(step));
    const entries = await stepEntries(step, stepContext());
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect(byPath.get('/app/@s/c/bin/cli.js')).toMatchObject({ type: 'file', mode: 0o755 });
    expect(byPath.get('/app/a/lib/internal/x.js')).toMatchObject({ type: 'file', mode: 0o644, size: 3000 });
    expect(byPath.get('/app/a/same.js')).toMatchObject({ type: 'hardlink', linkname: '/app/a/index.js' });
    expect(byPath.get('/app/.bin/c')).toMatchObject({ type: 'symlink', linkname: '../@s/c/bin/cli.js' });
    const x = byPath.get('/app/a/lib/internal/x.js')!;
    expect(sigFields(x.hostStat!).size).toBe(3000);
  });

  it('keeps the layer main made for this tree (fixed diff ID)', async () => {
    const step = await copyStep();
    await checkSources(planOf(step));
    expect(await diffId(step)).toBe(FIXED_DIFF_ID);
  });
});
