import { openSource } from '../layer/source.js';
import { constants, lstatSync, openSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { LayerEntry } from '../layer/types.js';
import { comparePaths } from '../layer/tarwriter.js';
import { whiteoutPath } from '../layer/whiteout.js';
import { readTreeXattrs, readTreeXattrsAsync, xattrsKey, type Xattrs } from './xattrs.js';

/**
 * What a `run:` command changed in a root file system: an lstat snapshot of every path before
 * and after (type, mode, owner, size, mtime, ctime, inode, link target), compared path by path.
 * ctime catches any write or metadata change even when a tool restores mtime; the inode catches
 * a file replaced by another; extended attributes (file capabilities, user.*, trusted.*) are
 * compared too, so a directory whose only change is an attribute is in the layer. The result is the layer: added and changed entries with their
 * content read from the rootfs, and one `.wh.` whiteout per deleted subtree.
 */

export type NodeKind = 'file' | 'dir' | 'symlink' | 'other';

export interface NodeInfo {
  kind: NodeKind;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  nlink: bigint;
  link?: string;
  /** Carried extended attributes of files and directories. */
  xattrs?: Xattrs;
}

/** Image path -> metadata. */
export type Snapshot = Map<string, NodeInfo>;

/**
 * Paths that never go into a layer: what the sandbox mounts over the image (/proc, /sys, /dev
 * and the bind-mounted /etc/resolv.conf and /etc/hosts). Whole subtrees for the directories.
 */
export const SANDBOX_PATHS = ['/proc', '/sys', '/dev', '/etc/resolv.conf', '/etc/hosts'];

export function isSandboxPath(p: string): boolean {
  return SANDBOX_PATHS.some((s) => p === s || p.startsWith(`${s}/`));
}

function kindOf(st: Pick<Stats, 'isFile' | 'isDirectory' | 'isSymbolicLink'>): NodeKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** lstat of every path under root (root itself excluded), skipping the sandbox paths. */
export function takeSnapshot(root: string): Snapshot {
  const out = walkTree(root);
  addXattrs(out, resolve(root), readTreeXattrs(resolve(root)));
  return out;
}

/** takeSnapshot with getfattr running during the lstat walk (the two take about as long). */
export async function takeSnapshotAsync(root: string): Promise<Snapshot> {
  const xattrs = readTreeXattrsAsync(resolve(root));
  // A getfattr that fails to start rejects before the walk ends; handled when awaited below.
  xattrs.catch(() => {});
  const out = walkTree(root);
  addXattrs(out, resolve(root), await xattrs);
  return out;
}

function walkTree(root: string): Snapshot {
  const out: Snapshot = new Map();
  const walk = (host: string, image: string) => {
    for (const name of readdirSync(host)) {
      const p = image === '/' ? `/${name}` : `${image}/${name}`;
      if (isSandboxPath(p)) continue;
      const h = join(host, name);
      const st = lstatSync(h, { bigint: true });
      const kind = kindOf(st);
      const info: NodeInfo = {
        kind,
        mode: Number(st.mode & 0o7777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: st.size,
        mtimeNs: st.mtimeNs,
        ctimeNs: st.ctimeNs,
        ino: st.ino,
        nlink: st.nlink,
      };
      if (kind === 'symlink') info.link = readlinkSync(h);
      out.set(p, info);
      if (kind === 'dir') walk(h, p);
    }
  };
  walk(root, '/');
  return out;
}

/** getfattr's answer (one run for the whole tree; it lists only paths that have attributes). */
function addXattrs(out: Snapshot, top: string, xattrs: Map<string, Xattrs>): void {
  for (const [host, x] of xattrs) {
    const info = out.get(host.slice(top.length));
    if (info && (info.kind === 'file' || info.kind === 'dir')) info.xattrs = x;
  }
}

function changed(b: NodeInfo | undefined, a: NodeInfo): boolean {
  if (!b || b.kind !== a.kind) return true;
  if (b.mode !== a.mode || b.uid !== a.uid || b.gid !== a.gid) return true;
  if (xattrsKey(b.xattrs) !== xattrsKey(a.xattrs)) return true;
  // A directory's own mtime moves with every file created or removed in it: that is not a change
  // of the directory (its children say what changed), so directories compare by metadata only.
  if (a.kind === 'dir') return false;
  return b.size !== a.size || b.mtimeNs !== a.mtimeNs || b.ctimeNs !== a.ctimeNs || b.ino !== a.ino || b.link !== a.link;
}

export interface Changes {
  /** Entries for the layer: added and changed paths, whiteouts for deletions. */
  entries: LayerEntry[];
  /** Deleted paths (the top of each deleted subtree), for keeping a file-system view in sync. */
  deleted: string[];
  /** Paths left out on purpose (sockets, FIFOs, device nodes the command created). */
  skipped: string[];
}

const noContent = (): Readable => Readable.from([]);

export function diffSnapshots(root: string, before: Snapshot, after: Snapshot): Changes {
  const entries: LayerEntry[] = [];
  const skipped: string[] = [];
  const files: { path: string; info: NodeInfo }[] = [];
  for (const [p, a] of after) {
    if (!changed(before.get(p), a)) continue;
    const host = join(root, p);
    switch (a.kind) {
      case 'dir':
        entries.push({ path: p, type: 'dir', mode: a.mode, uid: a.uid, gid: a.gid, ...(a.xattrs ? { xattrs: a.xattrs } : {}) });
        break;
      case 'symlink':
        entries.push({ path: p, type: 'symlink', mode: 0o777, uid: a.uid, gid: a.gid, linkname: a.link! });
        break;
      case 'file':
        files.push({ path: p, info: a });
        entries.push({
          path: p,
          type: 'file',
          mode: a.mode,
          uid: a.uid,
          gid: a.gid,
          size: Number(a.size),
          ...(a.xattrs ? { xattrs: a.xattrs } : {}),
          // O_NOFOLLOW: the walk saw a regular file here and nothing runs in the rootfs any more.
          open: () => openSource(host, Number(a.size), openSync(host, constants.O_RDONLY | constants.O_NOFOLLOW)),
        });
        break;
      default:
        skipped.push(p);
    }
  }
  // Files sharing an inode (hardlinks) become one file and links to it. A new link changes the
  // inode's ctime, so every path of a changed inode is in `files`.
  const byInode = new Map<bigint, string[]>();
  for (const f of files) {
    if (f.info.nlink < 2n) continue;
    const list = byInode.get(f.info.ino) ?? [];
    list.push(f.path);
    byInode.set(f.info.ino, list);
  }
  if (byInode.size) {
    const linkTo = new Map<string, string>();
    for (const paths of byInode.values()) {
      if (paths.length < 2) continue;
      paths.sort(comparePaths);
      for (const p of paths.slice(1)) linkTo.set(p, paths[0]!);
    }
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const target = linkTo.get(e.path);
      if (target) entries[i] = { path: e.path, type: 'hardlink', mode: e.mode, uid: e.uid, gid: e.gid, linkname: target };
    }
  }
  // Deletions: one whiteout for the top of each deleted subtree. Below a path whose type changed
  // (a directory replaced by a file), the replacing entry removes the old content already.
  const deleted: string[] = [];
  for (const p of before.keys()) {
    if (after.has(p)) continue;
    const parent = posix.dirname(p);
    if (parent !== '/') {
      const pa = after.get(parent);
      if (!pa || pa.kind !== 'dir' || before.get(parent)?.kind !== 'dir') continue;
    }
    deleted.push(p);
    entries.push({ path: whiteoutPath(p), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, open: noContent });
  }
  deleted.sort(comparePaths);
  return { entries, deleted, skipped };
}
