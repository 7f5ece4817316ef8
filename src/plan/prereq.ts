import { accessSync, constants, lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { CopyStep, VariantSpec } from '../config/model.js';
import type { Plan } from './plan.js';
import { platformSpecs } from '../config/per-platform.js';
import { describeStep } from '../build/steps.js';
import { IoError, stepIoError } from '../errors/io.js';
import { walkedSources, walkedStat } from '../build/walked.js';

/**
 * Checks made before any work, so a build does not fail half-way for a reason known at the
 * start: every source file readable (naming the first one that is not), and enough free disk in
 * the cache and output directories for the base layers and the new layers. (Root or sudo for
 * run: steps is checked by src/run/privilege.ts; the Node version by src/cli-entry.ts.)
 */
export class PrereqError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrereqError';
  }
}

function copySources(s: CopyStep): string[] {
  const all = [...s.sources, ...Object.values(s.platformSources ?? {}).flat()];
  return [...new Set(all.flatMap((x) => x.matches))];
}

const euid = process.geteuid?.();

/**
 * Readable (and searchable, for a directory) as the stat alone tells, without access(2): root
 * reads and searches everything (CAP_DAC_OVERRIDE), and for the file's owner the owner bits
 * decide (an ACL's owner entry is those bits). Anything else (group, other, ACLs) is left to
 * access(2). A node_modules tree is 100,000 files: one system call fewer each.
 */
function surelyAccessible(st: BigIntStats, dir: boolean): boolean {
  if (euid === undefined) return false;
  if (euid === 0) return true;
  if (Number(st.uid) !== euid) return false;
  const mode = Number(st.mode);
  return dir ? (mode & 0o500) === 0o500 : (mode & 0o400) !== 0;
}

/**
 * Walks the copy sources of every variant; returns the bytes they hold. Throws on the first
 * unreadable path. What it reads (listings, stats) is left in walkedSources for the copy
 * steps' walk, which would otherwise read the same tree again.
 */
export async function checkSources(p: Plan): Promise<number> {
  let bytes = 0;
  const seen = new Set<string>();
  const visit = async (v: VariantSpec, index: number, path: string): Promise<void> => {
    if (seen.has(path)) return;
    seen.add(path);
    // Synchronous: a tree of 100,000 files took two trips each through libuv's thread pool
    // (busy on a shared machine) for checks that take microseconds on cached inodes.
    const st = lstatSync(path, { bigint: true });
    walkedSources.stat(path, walkedStat(st));
    if (st.isSymbolicLink()) return;
    const mode = st.isDirectory() ? constants.R_OK | constants.X_OK : constants.R_OK;
    // Thrown as is: the caller names the step, the build file line and the fix (src/errors/io.ts).
    if (!surelyAccessible(st, st.isDirectory())) accessSync(path, mode);
    if (st.isFile()) bytes += Number(st.size);
    if (st.isDirectory()) {
      // Sorted as the copy walk sorts (UTF-16 code units), so it can take the list as is.
      const names = readdirSync(path).sort();
      walkedSources.listing(path, names);
      for (const name of names) await visit(v, index, join(path, name));
    }
  };
  for (const v of p.variants.flatMap(platformSpecs)) {
    for (const [i, s] of v.steps.entries()) {
      if (s.kind !== 'copy' || s.from !== undefined) continue;
      try {
        for (const m of copySources(s)) await visit(v, i, m);
      } catch (err) {
        throw stepIoError(err, `${s.pos.file}:${s.pos.line}`, `variant ${v.name}: ${describeStep(s)}`, 'cache');
      }
    }
  }
  return bytes;
}

/** Free bytes for this user on the file system that holds `path` (or its nearest existing parent). */
async function freeBytes(path: string): Promise<{ at: string; free: number }> {
  let at = resolve(path);
  for (;;) {
    try {
      const s = await statfs(at);
      return { at, free: s.bavail * s.bsize };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw err;
      at = dirname(at);
    }
  }
}

const MiB = 1 << 20;

/**
 * Enough free space where the build writes: the cache directory gets the base layers not yet
 * in it and the new layers (estimated by the bytes of their sources, as if they did not
 * compress); every output gets the whole images.
 */
export async function checkDisk(dirs: { cache: string; outputs: string[] }, need: { baseBytes: number; newBytes: number }): Promise<void> {
  const want = [
    { dir: dirs.cache, bytes: need.baseBytes + need.newBytes, what: 'the layer cache (base layers and new layers)' },
    ...dirs.outputs.map((o) => ({ dir: dirname(resolve(o)), bytes: need.baseBytes + need.newBytes, what: `output ${o}` })),
  ];
  for (const w of want) {
    const { at, free } = await freeBytes(w.dir);
    if (free < w.bytes) {
      // ENOSPC, found before any work: the same exit code as running out of space half-way.
      throw new IoError(
        `not enough free disk for ${w.what}: ${at} has ${(free / MiB).toFixed(1)} MiB free, the build needs about ${(w.bytes / MiB).toFixed(1)} MiB (fix: free some space there, or point it elsewhere with --cache-dir / the output path)`,
        'ENOSPC',
        1,
      );
    }
  }
}
