import { openSource } from '../layer/source.js';
import { constants, lstatSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { globRegex } from '../config/glob.js';
import { isIgnored, parseDockerignore } from '../config/ignore-patterns.js';
import type { CopyStep } from '../config/model.js';
import type { LayerEntry } from '../layer/types.js';
import { RootResolver, segmentsOf } from './rootpath.js';
import { readTreeXattrs, type Xattrs } from './xattrs.js';

/**
 * `copy` with `from: <variant>`: paths out of another variant's final file system (a snapshot
 * directory), with Docker's `COPY --from` rules: a directory's contents go into `to`, a file goes
 * to `to` (or into it when `to` ends with /); the source path itself is followed if it is a
 * symlink (inside that image), symlinks below it are copied as symlinks. Owners and modes are
 * kept from that image unless the step sets `owner` / `mode` (mode: files only), and so are
 * extended attributes (file capabilities, user.*, trusted.*; one getfattr per step).
 * BuildKit's --parents and --exclude work as with the build context: a match keeps its
 * directories relative to the image root (or a `/./` pivot), and a path an --exclude pattern
 * matches (relative to the image root, or to the directory being copied) is left out with
 * everything under it.
 */

export interface CopyFromOptions {
  /** The source variant's root file system (read only). */
  root: string;
  /** The step's owner, resolved against the destination image; undefined keeps the source's. */
  owner?: { uid: number; gid: number };
  /** True when the destination image has the path (an existing directory is not overridden). */
  exists(path: string): boolean;
  add(e: LayerEntry): void;
  note?: (message: string) => void;
  fail(message: string): never;
}

const GLOB = /[*?[]/;

/** Image paths matching an absolute pattern in the root (globs per segment; dotfiles only when the pattern starts with a dot). */
function expand(r: RootResolver, pattern: string): string[] {
  let found = ['/'];
  for (const seg of segmentsOf(pattern)) {
    const next: string[] = [];
    for (const base of found) {
      if (!GLOB.test(seg)) {
        next.push(posix.join(base, seg));
        continue;
      }
      const dir = r.existing(base);
      if (!dir || !dir.stats.isDirectory()) continue;
      const re = globRegex(seg);
      for (const name of readdirSync(dir.host).sort()) {
        if (name.startsWith('.') && !seg.startsWith('.')) continue;
        if (re.test(name)) next.push(posix.join(base, name));
      }
    }
    found = next;
  }
  return found.filter((p) => r.existing(p) !== undefined);
}

/** Adds the copy's entries; returns the destination directory when the copy targets one. */
export function copyFromImage(step: CopyStep, opts: CopyFromOptions): string | undefined {
  const r = new RootResolver(opts.root);
  const intoDir = step.to.endsWith('/') || step.sources.length > 1 || step.sources.some((s) => s.isGlob || s.parentsOf !== undefined);
  const to = posix.normalize(step.to).replace(/(.)\/$/, '$1');
  let destDir: string | undefined = intoDir ? to : undefined;
  const owner = (uid: number, gid: number) => opts.owner ?? { uid, gid };
  // One getfattr over that image for the whole step (a glob may match hundreds of paths).
  let xattrs: Map<string, Xattrs> | undefined;
  const withXattrs = (host: string) => {
    xattrs ??= readTreeXattrs(resolve(opts.root));
    const x = xattrs.get(resolve(host));
    return x ? { xattrs: x } : {};
  };

  const node = (host: string, dest: string): boolean => {
    const st = lstatSync(host);
    const o = owner(st.uid, st.gid);
    if (st.isSymbolicLink()) {
      opts.add({ path: dest, type: 'symlink', mode: 0o777, ...o, linkname: readlinkSync(host) });
      return false;
    }
    if (st.isDirectory()) {
      // Docker's --chmod applies to the copied directories too (the build file's mode: to files only).
      const mode = step.dockerRules && step.mode !== undefined ? step.mode : st.mode & 0o7777;
      if (!opts.exists(dest)) opts.add({ path: dest, type: 'dir', mode, ...o, ...withXattrs(host) });
      return true;
    }
    if (st.isFile()) {
      opts.add({
        path: dest,
        type: 'file',
        mode: step.mode ?? st.mode & 0o7777,
        ...o,
        size: st.size,
        ...withXattrs(host),
        open: () => openSource(host, st.size, openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW)),
      });
      return false;
    }
    opts.note?.(`copy from ${step.from}: ${dest} is a socket, FIFO or device node; skipped`);
    return false;
  };
  const excluded = exclusions(step.exclude);
  const walk = (hostDir: string, destDir: string, imageDir: string, base: string) => {
    for (const name of readdirSync(hostDir).sort()) {
      const host = join(hostDir, name);
      const image = posix.join(imageDir, name);
      if (excluded(image, base)) continue;
      const dest = destDir === '/' ? `/${name}` : `${destDir}/${name}`;
      if (node(host, dest)) walk(host, dest, image, base);
    }
  };

  for (const src of step.sources) {
    const matches = src.isGlob ? expand(r, src.pattern) : [posix.normalize(src.pattern)];
    if (matches.length === 0) opts.fail(`copy from ${step.from}: nothing in that image matches ${src.pattern}`);
    for (const m of matches) {
      if (excluded(m, posix.dirname(m))) continue;
      const found = r.existing(m); // the source path itself is followed (inside that image)
      if (!found) opts.fail(`copy from ${step.from}: ${m} does not exist in that image`);
      // --parents: the match goes to its path below the pivot (a match outside it: as without).
      const kept = src.parentsOf !== undefined ? posix.relative(src.parentsOf, m) : undefined;
      const parents = kept && !kept.startsWith('..') ? kept : undefined;
      if (found.stats.isDirectory()) {
        const dir = parents ? posix.join(to, parents) : to;
        destDir = parents ? to : dir;
        // Docker's rules: a destination COPY creates is a new directory (root or --chown, 0755),
        // not a copy of the source directory's owner and mode.
        if (dir !== '/' && !opts.exists(dir) && !step.dockerRules) {
          const o = owner(found.stats.uid, found.stats.gid);
          opts.add({ path: dir, type: 'dir', mode: found.stats.mode & 0o7777, ...o, ...withXattrs(found.host) });
        }
        walk(found.host, dir, m, m);
      } else {
        const dest = parents ? posix.join(to, parents) : intoDir ? posix.join(to, posix.basename(m)) : to;
        node(found.host, dest);
      }
    }
  }
  return destDir;
}

/** COPY --exclude: whether an image path is left out (its patterns relative to the root, or to `base`, the directory being copied). */
function exclusions(exclude: string[] | undefined): (path: string, base: string) => boolean {
  if (!exclude?.length) return () => false;
  const patterns = parseDockerignore(exclude.join('\n'));
  return (path, base) => isIgnored(path.slice(1), patterns) || (path !== base && isIgnored(posix.relative(base, path), patterns));
}
