import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../oci/digest.js';
import type { BlobOpener } from '../oci/layer.js';
import { ownerTag, trackDirectory } from './cleanup.js';
import { removeLeftovers } from './sandbox.js';
import { extractLayer } from './extract.js';

/**
 * Root file systems for `run:` steps and `copy: from:`, extracted from layers only when a step
 * needs one, and at most once per distinct layer chain in a build.
 *
 * - A *snapshot* is the read-only file system of a chain of layers (keyed by the chain of
 *   diffIDs). It is made from the longest chain prefix that already has one (cloned with
 *   `cp -a --reflink=auto`) plus the remaining layers, or from nothing.
 * - A *working* rootfs is a private, writable clone of a snapshot that one variant advances
 *   step by step: run: commands change it in place, copy/file layers are applied to it.
 * - At the end of a variant that others start from or copy from, its working rootfs becomes the
 *   snapshot of its final chain (no copy), so `from:` children and `copy: from:` readers reuse it.
 *
 * Everything lives under one temporary directory in the cache directory, removed at the end
 * of the build and on interrupt.
 */

export interface ChainLayer {
  diffId: Digest;
  /** Opens the layer blob (compressed or not). */
  open: BlobOpener;
  /** For messages. */
  label: string;
}

export interface WorkingRootfs {
  dir: string;
  /** Layers the directory holds, bottom first. */
  chain: ChainLayer[];
}

export function chainKey(chain: readonly { diffId: Digest }[]): string {
  const h = createHash('sha256');
  for (const l of chain) h.update(`${l.diffId}\n`);
  return h.digest('hex');
}

async function clone(src: string, dst: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('cp', ['-a', '--reflink=auto', `${src}/.`, dst], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-2000);
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`copying a root file system failed (cp exited ${code}): ${err.trim()}`)),
    );
  });
}

export class RootfsCache {
  readonly top: string;
  private readonly snapshots = new Map<string, Promise<string>>();
  private readonly untrack: () => void;
  private seq = 0;
  /** Layers extracted and rootfs copies made, for logs and tests. */
  readonly stats = { layersExtracted: 0, clones: 0 };

  /**
   * `log` gets one line per layer extracted and per copy (info); `note` what extraction skipped
   * on purpose (debug).
   */
  constructor(
    parent: string,
    private readonly log: (message: string) => void = () => {},
    private readonly note: (message: string) => void = () => {},
  ) {
    mkdirSync(parent, { recursive: true });
    for (const n of removeLeftovers(parent)) log(`rootfs: removed ${n}, left by a build that was killed`);
    this.top = join(parent, `rootfs-${ownerTag()}-${randomBytes(4).toString('hex')}`);
    mkdirSync(this.top, { mode: 0o700 });
    this.untrack = trackDirectory(this.top);
  }

  private newDir(kind: 's' | 'w'): string {
    const dir = join(this.top, `${kind}${++this.seq}`);
    mkdirSync(dir, { mode: 0o755 });
    return dir;
  }

  /** Applies layers on top of a working rootfs (in order). */
  async apply(work: WorkingRootfs, layers: readonly ChainLayer[]): Promise<void> {
    for (const l of layers) {
      const t = Date.now();
      const st = await extractLayer(work.dir, await l.open(), { label: l.label, note: this.note });
      this.stats.layersExtracted++;
      work.chain.push(l);
      this.log(
        `rootfs: extracted ${l.label}: ${st.entries} entries${st.skipped ? ` (${st.skipped} skipped)` : ''} in ${Date.now() - t} ms`,
      );
    }
  }

  /** The read-only file system of `chain` (do not modify the directory). */
  snapshot(chain: readonly ChainLayer[]): Promise<string> {
    const key = chainKey(chain);
    let p = this.snapshots.get(key);
    if (!p) {
      p = (async () => {
        let start = 0;
        let from: string | undefined;
        for (let i = chain.length - 1; i > 0; i--) {
          const prefix = this.snapshots.get(chainKey(chain.slice(0, i)));
          if (prefix) {
            from = await prefix;
            start = i;
            break;
          }
        }
        const dir = this.newDir('s');
        if (from) await this.copy(from, dir);
        await this.apply({ dir, chain: chain.slice(0, start) }, chain.slice(start));
        return dir;
      })();
      this.snapshots.set(key, p);
      p.catch(() => {
        if (this.snapshots.get(key) === p) this.snapshots.delete(key);
      });
    }
    return p;
  }

  /**
   * A private, writable copy of `chain`'s file system. `exclusive`: nothing else in this build
   * will ask for that chain, so when no snapshot of it exists the layers are extracted straight
   * into the working directory (no snapshot, no copy of every file: on ext4, creating a tree's
   * inodes a second time right after others were deleted is the slow part of a cold build).
   */
  async checkout(chain: readonly ChainLayer[], opts: { exclusive?: boolean } = {}): Promise<WorkingRootfs> {
    const dir = this.newDir('w');
    if (chain.length && opts.exclusive && !this.snapshots.has(chainKey(chain))) {
      const work: WorkingRootfs = { dir, chain: [] };
      await this.apply(work, chain);
      return work;
    }
    if (chain.length) {
      await this.copy(await this.snapshot(chain), dir);
    }
    return { dir, chain: [...chain] };
  }

  private async copy(from: string, to: string): Promise<void> {
    const t = Date.now();
    await clone(from, to);
    this.stats.clones++;
    this.log(`rootfs: copied ${from.slice(this.top.length + 1)} to ${to.slice(this.top.length + 1)} in ${Date.now() - t} ms`);
  }

  /** Hands a working rootfs over as the snapshot of the chain it holds; it must not change after. */
  async adopt(work: WorkingRootfs): Promise<void> {
    const key = chainKey(work.chain);
    if (this.snapshots.has(key)) {
      await this.discard(work);
      return;
    }
    this.snapshots.set(key, Promise.resolve(work.dir));
  }

  /** Removes a working rootfs that is no longer needed. */
  async discard(work: WorkingRootfs): Promise<void> {
    await rm(work.dir, { recursive: true, force: true });
  }

  /** Removes everything (end of the build). */
  async dispose(): Promise<void> {
    await Promise.allSettled([...this.snapshots.values()]);
    await rm(this.top, { recursive: true, force: true });
    this.untrack();
  }

  /** Synchronous removal, for exit paths. */
  disposeSync(): void {
    rmSync(this.top, { recursive: true, force: true });
    this.untrack();
  }
}
