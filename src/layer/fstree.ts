/**
 * The final file system being assembled from layers, bottom to top, with OCI whiteout rules:
 * every path's metadata, and the content of the files a reader chose to buffer. A snapshot of it
 * (plain JSON) lets a later scan continue from these layers without reading them again.
 */
import { posix } from 'node:path';
import { comparePaths } from './tarwriter.js';

export type PathType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** What the final filesystem holds at a path. */
export interface PathInfo {
  type: PathType;
  /** Permission bits (0o7777 mask). */
  mode: number;
  uid: number;
  gid: number;
  /** Symlinks: the target as stored. Hardlinks: the target as an absolute image path. */
  linkname?: string;
  /** Files: size in bytes. */
  size?: number;
  /** A parent directory no layer has an entry for (created on extraction as root 0755). */
  implicit?: boolean;
}

const MAX_SYMLINK_HOPS = 40;

/** One path of a snapshot: [path, metadata, buffered content as base64]. */
export type SnapshotEntry = [string, PathInfo] | [string, PathInfo, string];

export interface TreeSnapshot {
  entries: SnapshotEntry[];
}

/** A path one layer writes: what it is, and its content when it is a wanted file. */
export interface ChangedPath {
  info: PathInfo;
  content?: Buffer;
}

export interface LayerChanges {
  /** Entries by absolute path in tar order (a later entry for the same path wins). */
  records: Map<string, ChangedPath>;
  /** Absolute paths deleted from lower layers (`.wh.<name>`). */
  whiteouts: string[];
  /** Directories whose lower content is hidden (`.wh..wh..opq`). */
  opaques: string[];
}

interface Node {
  info: PathInfo;
  /** Buffered content of wanted files (and of hardlinks to them); undefined when not read. */
  content?: Buffer;
  children?: Map<string, Node>;
}

const implicitDir = (): Node => ({ info: { type: 'dir', mode: 0o755, uid: 0, gid: 0, implicit: true }, children: new Map() });

function segments(path: string): string[] {
  return path.split('/').filter((s) => s.length > 0);
}

/** The final filesystem being assembled from layers, bottom to top. */
export class FsTree {
  readonly root: Node = implicitDir();

  get(path: string): Node | undefined {
    let node: Node | undefined = this.root;
    for (const s of segments(path)) {
      node = node.children?.get(s);
      if (!node) return undefined;
    }
    return node;
  }

  /** The parent directory node of path, creating missing (or non-directory) ancestors as implicit dirs. */
  private parentOf(path: string): Node {
    let node = this.root;
    const segs = segments(path);
    for (const s of segs.slice(0, -1)) {
      let child = node.children!.get(s);
      if (!child?.children) {
        // A missing parent, or a non-directory where a directory is needed: extraction makes a dir.
        child = implicitDir();
        node.children!.set(s, child);
      }
      node = child;
    }
    return node;
  }

  remove(path: string): void {
    const segs = segments(path);
    const name = segs.pop();
    if (name === undefined) return;
    let node: Node | undefined = this.root;
    for (const s of segs) {
      node = node.children?.get(s);
      if (!node) return;
    }
    node.children?.delete(name);
  }

  apply(changes: LayerChanges): void {
    // Whiteouts and opaque markers only hide lower layers, so they go first.
    for (const w of changes.whiteouts) this.remove(w);
    for (const d of changes.opaques) this.get(d)?.children?.clear();
    const paths = [...changes.records.keys()].sort(comparePaths);
    for (const path of paths) {
      const rec = changes.records.get(path)!;
      const parent = this.parentOf(path);
      const name = posix.basename(path);
      const existing = parent.children!.get(name);
      if (existing && existing.children && rec.info.type === 'dir') {
        existing.info = rec.info; // a directory over a directory keeps its children
      } else {
        const node: Node = { info: rec.info };
        if (rec.content !== undefined) node.content = rec.content;
        if (rec.info.type === 'dir') node.children = new Map();
        parent.children!.set(name, node);
      }
    }
    // A hardlink shares its target's content as of this layer.
    for (const path of paths) {
      const rec = changes.records.get(path)!;
      if (rec.info.type !== 'hardlink') continue;
      const node = this.get(path);
      const target = this.get(rec.info.linkname!);
      if (node && target && (target.info.type === 'file' || target.info.type === 'hardlink') && target.content !== undefined) {
        node.content = target.content;
      }
    }
  }

  /**
   * The tree as plain data, parents before children. Regular files whose content was not
   * buffered are left out: nothing a later scan resolves can depend on them (a path under one
   * becomes an implicit directory, as under a missing one; a hardlink to one has no content),
   * except those `keep` names (a reader that lists them later, e.g. the SBOM's executables).
   */
  snapshot(keep?: (path: string, info: PathInfo) => boolean): TreeSnapshot {
    const entries: SnapshotEntry[] = [];
    const walk = (node: Node, prefix: string) => {
      for (const [name, child] of node.children ?? []) {
        const p = `${prefix}/${name}`;
        if (child.info.type === 'file' && child.content === undefined && !keep?.(p, child.info)) continue;
        entries.push(child.content !== undefined ? [p, child.info, child.content.toString('base64')] : [p, child.info]);
        walk(child, p);
      }
    };
    walk(this.root, '');
    return { entries };
  }

  static fromSnapshot(s: TreeSnapshot): FsTree {
    const tree = new FsTree();
    for (const [path, info, content] of s.entries) {
      const node: Node = { info };
      if (content !== undefined) node.content = Buffer.from(content, 'base64');
      if (info.type === 'dir') node.children = new Map();
      tree.parentOf(path).children!.set(posix.basename(path), node);
    }
    return tree;
  }

  list(): Map<string, PathInfo> {
    const out = new Map<string, PathInfo>();
    const walk = (node: Node, prefix: string) => {
      if (!node.children) return;
      for (const name of [...node.children.keys()].sort((a, b) => comparePaths(a, b))) {
        const child = node.children.get(name)!;
        const p = `${prefix}/${name}`;
        out.set(p, { ...child.info });
        walk(child, p);
      }
    };
    walk(this.root, '');
    return out;
  }

  /**
   * Content of the regular file at path, following symlinks (in any component) within the image.
   * `need` names a path whose content this pass did not buffer.
   */
  resolveFile(path: string): { content: Buffer | null } | { need: string } {
    let segs = segments(path);
    let hops = 0;
    restart: for (;;) {
      let node = this.root;
      let cur = '';
      for (let i = 0; i < segs.length; i++) {
        const child = node.children?.get(segs[i]!);
        if (!child) return { content: null };
        cur += `/${segs[i]}`;
        if (child.info.type === 'symlink') {
          if (++hops > MAX_SYMLINK_HOPS) return { content: null };
          const link = child.info.linkname ?? '';
          const target = link.startsWith('/') ? link : posix.join(posix.dirname(cur), link);
          segs = [...segments(posix.normalize(`/${target}`)), ...segs.slice(i + 1)];
          continue restart;
        }
        node = child;
      }
      switch (node.info.type) {
        case 'file':
          return node.content !== undefined ? { content: node.content } : { need: cur };
        case 'hardlink':
          return node.content !== undefined ? { content: node.content } : { need: node.info.linkname! };
        default:
          return { content: null };
      }
    }
  }
}
