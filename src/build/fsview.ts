import type { LayerEntry } from '../layer/types.js';

export type FsNodeType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

/**
 * What paths exist in an image's file system at a point of the build: the base image's
 * final tree plus the entries of each layer written so far. Used to decide which parent
 * directories a layer must create (only missing ones: an entry for an existing directory
 * or symlink would override its owner, mode or link in the image).
 */
export class FsView {
  private readonly nodes: Map<string, FsNodeType>;

  constructor(nodes?: Map<string, FsNodeType>) {
    this.nodes = nodes ?? new Map([['/', 'dir']]);
    this.nodes.set('/', 'dir');
  }

  static fromListing(listing: Map<string, { type: string }>): FsView {
    const nodes = new Map<string, FsNodeType>();
    for (const [p, info] of listing) {
      const t = info.type;
      nodes.set(normalize(p), t === 'file' || t === 'dir' || t === 'symlink' || t === 'hardlink' ? t : 'other');
    }
    return new FsView(nodes);
  }

  has(path: string): boolean {
    return this.nodes.has(normalize(path));
  }

  type(path: string): FsNodeType | undefined {
    return this.nodes.get(normalize(path));
  }

  clone(): FsView {
    return new FsView(new Map(this.nodes));
  }

  apply(entries: LayerEntry[]): void {
    for (const e of entries) this.nodes.set(normalize(e.path), e.type);
  }

  /** Removes everything below a directory, keeping the directory (an opaque whiteout). */
  clear(dir: string): void {
    const prefix = normalize(dir) === '/' ? '/' : `${normalize(dir)}/`;
    for (const k of [...this.nodes.keys()]) if (k !== '/' && k.startsWith(prefix)) this.nodes.delete(k);
  }

  /** Removes a path and everything below it (what a run: step deleted). */
  remove(path: string): void {
    const p = normalize(path);
    if (p === '/') return;
    this.nodes.delete(p);
    const prefix = `${p}/`;
    for (const k of [...this.nodes.keys()]) if (k.startsWith(prefix)) this.nodes.delete(k);
  }
}

export function normalize(p: string): string {
  // Already normal (a walk's paths are): the same string, not a copy kept per path.
  if (p.charCodeAt(0) === 0x2f && !p.endsWith('/') && !p.endsWith('/.') && !p.includes('//') && !p.includes('/./')) return p;
  const parts = p.split('/').filter((s) => s && s !== '.');
  return `/${parts.join('/')}`;
}

/** Ancestors of an absolute path, outermost first, excluding "/" and the path itself. */
export function ancestors(p: string): string[] {
  const n = normalize(p);
  const out: string[] = [];
  for (let i = n.indexOf('/', 1); i > 0; i = n.indexOf('/', i + 1)) out.push(n.slice(0, i));
  return out;
}
