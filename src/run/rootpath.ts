import { lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

/**
 * Path resolution inside a root file system the way a chrooted process sees it: symlinks are
 * followed (absolute targets from the root, relative ones from their directory) and `..` stops
 * at the root, so no resolution ever leaves `root` — whatever links a layer or a command planted.
 * Only this module turns image paths into host paths under a rootfs.
 */

export class RootfsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RootfsError';
  }
}

const MAX_HOPS = 40;

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Splits an image path into its segments ('' and '.' dropped; '..' kept). */
export function segmentsOf(p: string): string[] {
  return p.split('/').filter((s) => s !== '' && s !== '.');
}

export interface ResolveOptions {
  /** Follow a symlink in the last segment too (for reading), or stop at it (for replacing it). */
  followLast: boolean;
  /** Create missing directories (root-owned, 0755) on the way instead of failing. */
  mkdirs?: boolean;
}

export class RootResolver {
  /** Unresolved directory path (segments joined) -> host path of the real directory. */
  private readonly dirs = new Map<string, string>();

  constructor(readonly root: string) {}

  /** Forget cached resolutions (after a directory or symlink was removed or replaced). */
  invalidate(): void {
    this.dirs.clear();
  }

  /**
   * Host path of the image path `segs` inside the root, or undefined when a segment does not
   * exist. Throws RootfsError when a non-final segment exists but is not a directory, or on a
   * symlink loop.
   */
  resolve(segs: readonly string[], opts: ResolveOptions): string | undefined {
    const stack: string[] = [];
    const queue = [...segs];
    let hops = 0;
    while (queue.length) {
      const seg = queue.shift()!;
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        stack.pop();
        continue;
      }
      const host = join(this.root, ...stack, seg);
      const last = queue.length === 0;
      const st = lstatOrUndefined(host);
      if (!st) {
        if (!opts.mkdirs || last) {
          if (last) {
            stack.push(seg);
            return join(this.root, ...stack);
          }
          return undefined;
        }
        mkdirSync(host, { mode: 0o755 });
        stack.push(seg);
        continue;
      }
      if (st.isSymbolicLink()) {
        if (last && !opts.followLast) {
          stack.push(seg);
          break;
        }
        if (++hops > MAX_HOPS) throw new RootfsError(`too many levels of symbolic links at /${[...stack, seg].join('/')}`);
        const target = readlinkSync(host);
        if (target.startsWith('/')) stack.length = 0;
        queue.unshift(...segmentsOf(target));
        continue;
      }
      if (!last && !st.isDirectory()) {
        throw new RootfsError(`/${[...stack, seg].join('/')} is not a directory`);
      }
      stack.push(seg);
    }
    return join(this.root, ...stack);
  }

  /**
   * Host path of the directory `segs` (symlinks followed inside the root); with `mkdirs`, missing
   * directories are created. Undefined when missing (without mkdirs). Cached until invalidate().
   */
  dir(segs: readonly string[], mkdirs: boolean): string | undefined {
    if (segs.length === 0) return this.root;
    const key = segs.join('/');
    const hit = this.dirs.get(key);
    if (hit !== undefined) return hit;
    const host = this.resolve(segs, { followLast: true, mkdirs });
    if (host === undefined) return undefined;
    const st = lstatOrUndefined(host);
    if (!st) {
      if (!mkdirs) return undefined;
      mkdirSync(host, { mode: 0o755 });
    } else if (!st.isDirectory()) {
      throw new RootfsError(`/${segs.join('/')} is not a directory`);
    }
    this.dirs.set(key, host);
    return host;
  }

  /** Host path of an existing file or directory (symlinks followed), or undefined. */
  existing(imagePath: string): { host: string; stats: Stats } | undefined {
    const host = this.resolve(segmentsOf(imagePath), { followLast: true });
    if (host === undefined) return undefined;
    const stats = lstatOrUndefined(host);
    return stats ? { host, stats } : undefined;
  }
}
