import type { BigIntStats } from 'node:fs';
import { statSig, type StatSig } from '../cache/file-hasher.js';

/**
 * What a path's lstat told, as the copy walk needs it: the stat signature (size, times, inode,
 * device, mode: see statSig) and the link count. One string and a number, not a BigIntStats
 * (some twenty heap objects): a node_modules tree has 100,000 of them.
 */
export interface WalkedStat {
  sig: StatSig;
  nlink: number;
}

export function walkedStat(st: BigIntStats): WalkedStat {
  return { sig: statSig(st), nlink: Number(st.nlink) };
}

/** The fields of a signature the copy walk reads (see statSig for the order). */
export function sigFields(sig: StatSig): { size: number; mode: number; devIno: string } {
  const [size, , , ino, dev, mode] = sig.split(':');
  return { size: Number(size), mode: Number(mode), devIno: `${dev}:${ino}` };
}

/**
 * The prerequisite walk's findings (src/plan/prereq.ts), handed to the copy steps' walk
 * (src/build/steps.ts) so a tree is read once per build, not twice: each directory's sorted
 * names and each path's stat, taken (and forgotten) by the first copy that reaches it. A path
 * not found here (a second copy of the same tree, a followed symlink, a walk of another
 * build) is read again. The copy then reads the tree as it was at the prerequisite check,
 * seconds earlier; a file written since is caught as before by the stat after its read.
 * Cleared at the end of each build (src/pipeline.ts), so nothing outlives it.
 */
export class WalkedSources {
  private readonly stats = new Map<string, WalkedStat>();
  private readonly listings = new Map<string, string[]>();

  stat(path: string, st: WalkedStat): void {
    this.stats.set(path, st);
  }

  /** Only names that decoded as UTF-8: a directory with another is read again by the copy, which names the bad one. */
  listing(dir: string, sortedNames: string[]): void {
    if (!sortedNames.some((n) => n.includes('\uFFFD'))) this.listings.set(dir, sortedNames);
  }

  takeStat(path: string): WalkedStat | undefined {
    const s = this.stats.get(path);
    if (s) this.stats.delete(path);
    return s;
  }

  takeListing(dir: string): string[] | undefined {
    const l = this.listings.get(dir);
    if (l) this.listings.delete(dir);
    return l;
  }

  get size(): number {
    return this.stats.size + this.listings.size;
  }

  clear(): void {
    this.stats.clear();
    this.listings.clear();
  }
}

/** The current build's walk (one build at a time per process: the CLI, the action, a test). */
export const walkedSources = new WalkedSources();
