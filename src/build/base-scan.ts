import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomic } from '../cache/atomic.js';
import type { FsTree } from '../layer/fstree.js';
import { DiffIdMismatchError, scanLayers, type LayerProbe, type LayerSource, type WantFile } from '../layer/reader.js';
import type { Digest } from '../oci/digest.js';
import { BaseImageError, type BaseImage } from './base.js';
import type { BlobFetcher } from '../image/fetch.js';
import { FsView } from './fsview.js';

/** The users and groups of an image (/etc/passwd and /etc/group), for owner names. */
export interface OwnerFiles {
  passwd?: string;
  group?: string;
}

export interface BaseFiles {
  fs: FsView;
  owners: OwnerFiles;
}

/**
 * Another reader of a base's layers (the SBOM's inventory), served by the same pass: its files
 * are buffered too and it gets the tree, so a cold build reads the base once.
 */
export interface BaseTreeReader {
  want: WantFile;
  tree(diffIds: readonly Digest[], tree: FsTree): Promise<void>;
  /** Its probe of one base layer's big files for the same pass (none: it has what it needs of that layer). */
  probe?(diffId: Digest, open: LayerSource): Promise<LayerProbe | undefined>;
}

/**
 * Lists a base image's final file system and reads its users and groups: once per base per
 * run, and once per machine when there is a cache directory (kept by manifest digest).
 */
export class BaseScanner {
  private readonly scans = new Map<string, Promise<BaseFiles>>();
  private readonly done = new Set<string>();

  constructor(
    private readonly fetcher: BlobFetcher,
    private readonly cacheDir: string | undefined,
    private readonly alsoRead?: BaseTreeReader,
  ) {}

  /** True when the scan of this base (by manifest digest) is finished or saved: it costs nothing more. */
  alreadyScanned(digest: string): boolean {
    return this.done.has(digest) || existsSync(this.savedPath(digest) ?? '\0');
  }

  /** True when this run's scan of the base has finished. */
  finished(digest: string): boolean {
    return this.done.has(digest);
  }

  scan(base: BaseImage): Promise<BaseFiles> {
    const key = base.digest ?? 'scratch';
    let p = this.scans.get(key);
    if (!p) {
      p = this.read(base);
      p.then(
        () => this.done.add(key),
        () => {
          /* reported to the variants that wait for it */
        },
      );
      this.scans.set(key, p);
    }
    return p;
  }

  /** scanLayers' options that serve the other reader in the same pass. */
  private alsoReading(diffIds: readonly Digest[], openers: LayerSource[]) {
    const r = this.alsoRead!;
    return {
      alsoWant: r.want,
      onTree: (t: FsTree) => r.tree(diffIds, t),
      ...(r.probe ? { probes: async (i: number) => r.probe!(diffIds[i]!, openers[i]!) } : {}),
    };
  }

  private savedPath(digest: string): string | undefined {
    return this.cacheDir ? join(this.cacheDir, 'scans', `${digest.slice(7)}.json`) : undefined;
  }

  private async read(base: BaseImage): Promise<BaseFiles> {
    if (!base.repo || base.layers.length === 0) return { fs: new FsView(), owners: {} };
    const saved = base.digest ? this.savedPath(base.digest) : undefined;
    if (saved) {
      try {
        const doc = JSON.parse(await readFile(saved, 'utf8')) as { version: 1; paths: [string, string][]; owners: OwnerFiles };
        if (doc.version === 1) return { fs: FsView.fromListing(new Map(doc.paths.map(([p, type]) => [p, { type }]))), owners: doc.owners };
      } catch {
        /* not scanned yet */
      }
    }
    // The scan reads each layer as it downloads (the first streams; the others download
    // meanwhile and are read from the store when the scan gets to them).
    for (const l of base.layers.slice(1))
      this.fetcher.ensureLocal(l.digest, base.repo).catch(() => {
        /* the scan's open reports it */
      });
    const openers = base.layers.map((l) => () => this.fetcher.openThrough(l.digest, base.repo));
    // One pass over the base layers: the final tree and the user and group files.
    // The diff_ids are checked on the way: a base whose config does not describe its layers is
    // refused here, not pushed for a runtime to refuse.
    const { files, paths } = await scanLayers(openers, {
      wanted: ['/etc/passwd', '/etc/group'],
      listPaths: true,
      diffIds: base.config.rootfs.diff_ids,
      ...(this.alsoRead ? this.alsoReading(base.config.rootfs.diff_ids, openers) : {}),
    }).catch((err: unknown) => {
      if (!(err instanceof DiffIdMismatchError)) throw err;
      throw new BaseImageError(
        base.name,
        `${err.message}: the base image is inconsistent (a runtime such as containerd refuses to pull what is built on it); rebuild it, or use another base`,
      );
    });
    const listing = paths ?? new Map();
    const owners = { passwd: files.get('/etc/passwd')?.toString('utf8'), group: files.get('/etc/group')?.toString('utf8') };
    if (saved) await writeAtomic(saved, JSON.stringify({ version: 1, paths: [...listing].map(([p, info]) => [p, info.type]), owners }));
    return { fs: FsView.fromListing(listing), owners };
  }
}
