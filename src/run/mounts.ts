import { lstatSync, mkdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { RootResolver, segmentsOf } from './rootpath.js';

/**
 * The extra mounts of one step (Dockerfile `RUN --mount`) as the sandbox gets them: a host
 * directory or file bound at an image path, or an empty tmpfs. Their mount points are made in
 * the rootfs only for the command's run (BuildKit removes its mount stubs too), so neither the
 * mounted content nor the stubs ever reach the layer.
 */
export interface StepMount {
  /** Absolute image path. */
  target: string;
  kind: 'bind' | 'tmpfs';
  /** Host path bound there (bind). */
  source?: string;
  /** The source is a file (a secret), so the mount point is an empty file. */
  file?: boolean;
  readonly: boolean;
  /** tmpfs size in bytes. */
  size?: number;
}

/** A mount with its target resolved inside the rootfs (symlinks followed there, never out of it). */
export interface SandboxMount extends StepMount {
  /** The real path inside the container (no symlinks left). */
  destination: string;
  /** That path on the host, under the rootfs. */
  host: string;
}

export interface PlacedMounts {
  mounts: SandboxMount[];
  /** Removes the mount points this step created (only those still empty). */
  remove(): void;
}

function lstatMaybe(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Makes each mount's point in the rootfs where it is missing; throws naming the target otherwise. */
export function placeMounts(rootfs: string, wanted: readonly StepMount[]): PlacedMounts {
  const r = new RootResolver(rootfs);
  const created: { host: string; dir: boolean }[] = [];
  const remove = () => {
    for (const c of created.reverse()) {
      try {
        if (c.dir) rmdirSync(c.host);
        else if (lstatSync(c.host).size === 0) unlinkSync(c.host);
      } catch {
        /* the command put something there: it stays, as in the layer */
      }
    }
    created.length = 0;
  };
  const mounts: SandboxMount[] = [];
  try {
    for (const m of wanted) {
      const segs = segmentsOf(m.target);
      if (!segs.length || segs.includes('..')) throw new Error(`mount target ${m.target} must be an absolute path below /`);
      for (let i = 1; i <= segs.length; i++) {
        const last = i === segs.length;
        const host = r.resolve(segs.slice(0, i), { followLast: true });
        const st = host === undefined ? undefined : lstatMaybe(host);
        if (!st) {
          // The missing segment is created under its (resolved) parent.
          const parent = i === 1 ? rootfs : r.resolve(segs.slice(0, i - 1), { followLast: true })!;
          const at = `${parent}/${segs[i - 1]}`;
          if (last && m.file) writeFileSync(at, '', { mode: 0o644, flag: 'wx' });
          else mkdirSync(at, { mode: 0o755 });
          created.push({ host: at, dir: !(last && m.file) });
          r.invalidate();
          continue;
        }
        if (!last && !st?.isDirectory()) throw new Error(`mount target ${m.target}: /${segs.slice(0, i).join('/')} is not a directory`);
        if (last && (m.file ? !st?.isFile() : !st?.isDirectory()))
          throw new Error(`mount target ${m.target} is ${m.file ? 'not a regular file' : 'not a directory'} in the image`);
      }
      const host = r.resolve(segs, { followLast: true })!;
      const rel = relative(rootfs, host);
      if (rel.startsWith('..')) throw new Error(`mount target ${m.target} resolves outside the root file system`);
      mounts.push({ ...m, host, destination: `/${rel}` });
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { mounts, remove };
}

/** The mounts as OCI runtime spec entries (runc). */
export function specMounts(mounts: readonly SandboxMount[]): Record<string, unknown>[] {
  return mounts.map((m) =>
    m.kind === 'tmpfs'
      ? {
          destination: m.destination,
          type: 'tmpfs',
          source: 'tmpfs',
          options: ['nosuid', 'nodev', 'mode=1777', ...(m.size ? [`size=${m.size}`] : [])],
        }
      : {
          destination: m.destination,
          type: 'bind',
          source: m.source!,
          options: ['rbind', m.readonly ? 'ro' : 'rw', 'nosuid', 'nodev'],
        },
  );
}

/** One line per mount for the chroot sandbox's setup script: kind, source, host target, ro|rw, size (tab-separated). */
export function chrootMountLines(mounts: readonly SandboxMount[]): string {
  return mounts
    .map((m) => {
      for (const p of [m.source ?? '', m.host])
        if (/[\t\n]/.test(p))
          throw new Error(`run: mount path ${JSON.stringify(p)} has a tab or newline; the chroot sandbox cannot mount it`);
      return [m.kind, m.source ?? '-', m.host, m.readonly ? 'ro' : 'rw', m.size ? String(m.size) : '-'].join('\t');
    })
    .join('\n');
}
