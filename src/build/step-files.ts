import type { Layer } from '../oci/layer.js';
import type { LayerEntry } from '../layer/types.js';
import type { OwnerFiles } from './base-scan.js';
import { FsView } from './fsview.js';
import { listLayerCached } from './layer-listing.js';

/** A file system and its users as a variant's steps see it. */
export interface FilesSoFar {
  fs: FsView | undefined;
  owners: OwnerFiles;
}

/**
 * The file system a variant's next step sees, known at once (eager) or on first need (lazy):
 * a fresh runner building from the registry's records computes every key from diffIDs and the
 * steps' own inputs (src/build/chain-key.ts), so the base is scanned, and the cached layers on
 * top of it listed, only when a step must really be made.
 */
export class StepFiles {
  fs: FsView;
  owners: OwnerFiles;
  private start: (() => Promise<FilesSoFar>) | undefined;
  /** Cached layers on top of `start`, in order, whose listings are not applied yet. */
  private readonly unlisted: Layer[] = [];

  constructor(
    private readonly cacheDir: string | undefined,
    known: FilesSoFar | { later: () => Promise<FilesSoFar> },
  ) {
    if ('later' in known) {
      this.start = known.later;
      this.fs = new FsView();
      this.owners = {};
    } else {
      this.fs = known.fs?.clone() ?? new FsView();
      this.owners = known.owners;
    }
  }

  /** Not listed yet: the steps so far were all found by keys that need no file system. */
  get lazy(): boolean {
    return this.start !== undefined;
  }

  /** A layer taken from the cache is on top: listed now, or when the files are first wanted. */
  async onCached(layer: Layer): Promise<void> {
    if (this.start) this.unlisted.push(layer);
    else await this.see(layer);
  }

  /** Makes fs and owners what they are after every step so far (scans the start, lists the layers). */
  async list(): Promise<void> {
    const start = this.start;
    if (!start) return;
    this.start = undefined;
    const f = await start();
    this.fs = f.fs?.clone() ?? new FsView();
    this.owners = f.owners;
    for (const l of this.unlisted.splice(0)) await this.see(l);
  }

  /** A snapshot for the variants built from this one (listed when they first need it). */
  snapshot(): { listed: boolean; files: () => Promise<FilesSoFar> } {
    let p: Promise<FilesSoFar> | undefined;
    return {
      listed: !this.lazy,
      files: () => {
        p ??= this.list().then(() => ({ fs: this.fs.clone(), owners: this.owners }));
        return p;
      },
    };
  }

  private async see(layer: Layer): Promise<void> {
    const listing = await listLayerCached(layer, this.cacheDir);
    for (const d of listing.opaque) this.fs.clear(d);
    this.fs.apply(listing.entries as LayerEntry[]);
    for (const d of listing.deleted) this.fs.remove(d);
    if (listing.files.passwd !== undefined || listing.files.group !== undefined) this.owners = { ...this.owners, ...listing.files };
  }
}
