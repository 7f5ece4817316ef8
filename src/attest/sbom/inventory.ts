/**
 * The packages of each image, read as few times as possible. An image's inventory depends only
 * on its ordered layer diffIDs (and on this scanner), so it is kept per diffID list: a rebuild
 * with nothing changed reads no layer at all. A miss continues from the snapshot of the longest
 * prefix scanned before (the base's layers, or the parent variant's image): only the layers on
 * top are read. Kept in memory for the run and, with a cache directory, on disk between runs.
 *
 * Every other pass of the build that reads a layer feeds this one: the base scan (its tree and
 * probes, `baseTreeReader`) and the registry cache's diffID check of a record's layer
 * (`recordLayerCheck`), so no layer is read a second time for the SBOM.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { writeAtomic } from '../../cache/atomic.js';
import { digestHex, sha256, type Digest } from '../../oci/digest.js';
import { FsTree, type LayerChanges, type TreeSnapshot } from '../../layer/fstree.js';
import { applyLayer, type LayerProbe, type LayerSource } from '../../layer/reader.js';
import { executablesOfLayer, LayerExecutables, packagesOfExecutables, rpmPackagesOf } from './executables.js';
import type { FoundPackage } from './packages.js';
import { bigFilesOf, isExecutableCandidate, packagesOfTree, sbomWants, withPackages, keepForBigFiles, type ImagePackages } from './scan.js';

/** Bump when what the scan finds or buffers changes (the parsers, sbomWants, the snapshot's shape). */
const SCANNER = 'sbom-inventory-2';

export interface SbomLayer {
  diffId: Digest;
  /** A layer of the base image (a snapshot is kept where the base's layers end). */
  base: boolean;
  open: LayerSource;
}

/** What the SBOM scans read in this run: the test of "a no-op rebuild reads no layer". */
export interface SbomScanStats {
  images: number;
  /** Images whose inventory was known for their diffID list (no layer read). */
  fromCache: number;
  /** Images whose SBOM the registry held already (a referrer this tool attached; no layer read). */
  fromReferrer: number;
  /** Layers read, and their (compressed) bytes. */
  layersRead: number;
  bytesRead: number;
  /** Layers the SBOM took from another pass of this build (a record's layer checked against its diffID). */
  layersShared: number;
}

export class SbomInventory {
  readonly stats: SbomScanStats = { images: 0, fromCache: 0, fromReferrer: 0, layersRead: 0, bytesRead: 0, layersShared: 0 };
  /** What the SBOM needs of the layers another pass of this run read (by diffID): applied, not read again. */
  private readonly sharedChanges = new Map<Digest, LayerChanges>();
  private readonly packagesByKey = new Map<string, ImagePackages>();
  private readonly treesByKey = new Map<string, TreeSnapshot>();
  private readonly executablesByKey = new Map<string, Record<string, FoundPackage[]>>();

  /** `dir`: where inventories and snapshots persist (none: this run only); `toolVersion` joins the key. */
  constructor(
    private readonly dir: string | undefined,
    private readonly toolVersion: string,
  ) {}

  /** Whether the packages of these layers are known (in memory or on disk): `packages` then reads no layer. */
  async knows(layers: readonly SbomLayer[]): Promise<boolean> {
    return (await this.load(this.packagesByKey, this.keyOf(layers), 'packages')) !== undefined;
  }

  /** Counts an image whose SBOM was taken from the registry instead of made from its layers. */
  reusedFromReferrer(): void {
    this.stats.images++;
    this.stats.fromReferrer++;
  }

  async packages(layers: readonly SbomLayer[]): Promise<ImagePackages> {
    this.stats.images++;
    const key = this.keyOf(layers);
    const known = await this.load(this.packagesByKey, key, 'packages');
    if (known) {
      this.stats.fromCache++;
      return known;
    }
    const found = await this.scan(layers);
    // An incomplete listing (a database this Node cannot read) is not kept for the next run.
    if (found.notes?.length) this.packagesByKey.set(key, found);
    else await this.save(this.packagesByKey, key, 'packages', found);
    return found;
  }

  private async scan(layers: readonly SbomLayer[]): Promise<ImagePackages> {
    // The longest prefix scanned before; its snapshot is where this scan starts.
    let from = 0;
    let tree = new FsTree();
    for (let k = layers.length - 1; k > 0; k--) {
      const snap = await this.load(this.treesByKey, this.keyOf(layers.slice(0, k)), 'tree');
      if (!snap) continue;
      tree = FsTree.fromSnapshot(snap);
      from = k;
      break;
    }
    const baseEnd = layers.filter((l) => l.base).length;
    for (let i = from; i < layers.length; i++) {
      const layer = layers[i]!;
      const shared = this.sharedChanges.get(layer.diffId);
      if (shared) {
        tree.apply(shared);
        this.stats.layersShared++;
      } else {
        // The executables' Go and cargo data are probed in the same pass (no second read of the layer).
        await applyLayer(
          tree,
          this.counted(layer.open),
          `layer ${i + 1} of ${layers.length}`,
          sbomWants,
          undefined,
          await this.executablesProbe(layer),
        );
      }
      if (i + 1 === baseEnd && baseEnd < layers.length) await this.saveTree(layers.slice(0, baseEnd), tree);
    }
    const found = packagesOfTree(tree);
    await this.saveTree(layers, tree);
    return await this.withBigFiles(found, layers, tree);
  }

  /**
   * For the builder's check of a registry record's layer against its recorded diffID: that one
   * read also keeps what the SBOM needs of the layer (its wanted files, its executables' data).
   * False when the layer does not unpack to `diffId` (or cannot be read): nothing is kept then.
   */
  readonly recordLayerCheck = async (diffId: Digest, open: LayerSource): Promise<boolean> => {
    try {
      const probe = await this.executablesProbe({ diffId, open });
      const changes = await applyLayer(new FsTree(), open, `layer ${diffId}`, sbomWants, diffId, probe);
      this.sharedChanges.set(diffId, changes);
      return true;
    } catch {
      return false;
    }
  };

  /**
   * Go build info, cargo-auditable data and the rpm database of the final tree. Executables are
   * probed once per layer (kept per diffID: a new top layer does not re-read the base's binaries).
   */
  private async withBigFiles(found: ImagePackages, layers: readonly SbomLayer[], tree: FsTree): Promise<ImagePackages> {
    const big = bigFilesOf(tree.list());
    const notes = [...big.notes];
    const more: FoundPackage[] = [];
    if (big.executables.size) {
      const perLayer: Record<string, FoundPackage[]>[] = [];
      for (const layer of layers) perLayer.push(await this.executablesOf(layer));
      more.push(...packagesOfExecutables(perLayer, big.executables));
    }
    if (big.rpmdb) {
      try {
        more.push(
          ...(await rpmPackagesOf(
            layers.map((l) => this.counted(l.open)),
            big.rpmdb,
            found.os,
          )),
        );
      } catch (e) {
        notes.push(`rpm packages not listed: ${big.rpmdb}: ${(e as Error).message}`);
      }
    }
    return withPackages(found, more, notes);
  }

  /**
   * The probe of one layer's executables for the pass that reads it (none when that layer's are
   * known); it keeps the result per diffID once the layer is read.
   */
  private async executablesProbe(layer: Pick<SbomLayer, 'diffId' | 'open'>): Promise<LayerProbe | undefined> {
    const key = this.executablesKey(layer);
    if (await this.load(this.executablesByKey, key, 'executables')) return undefined;
    const probe = new LayerExecutables((_p, mode, size) => isExecutableCandidate(mode, size));
    return {
      want: (path, mode, size) => probe.want(path, mode, size),
      file: (path, body, size) => probe.file(path, body, size),
      end: async () => this.save(this.executablesByKey, key, 'executables', await probe.result(this.counted(layer.open))),
    };
  }

  private async executablesOf(layer: SbomLayer): Promise<Record<string, FoundPackage[]>> {
    const key = this.executablesKey(layer);
    const known = await this.load(this.executablesByKey, key, 'executables');
    if (known) return known;
    const found = await executablesOfLayer(this.counted(layer.open), (_p, mode, size) => isExecutableCandidate(mode, size));
    await this.save(this.executablesByKey, key, 'executables', found);
    return found;
  }

  private executablesKey(layer: Pick<SbomLayer, 'diffId'>): string {
    return digestHex(sha256([SCANNER, this.toolVersion, 'executables', layer.diffId].join('\n')));
  }

  /**
   * For the base scan: the tree of a base's layers, built with `sbomWants` among its files, and
   * each layer's executables probed in that same pass.
   */
  readonly baseTreeReader = {
    want: sbomWants,
    probe: (diffId: Digest, open: LayerSource) => this.executablesProbe({ diffId, open }),
    tree: async (diffIds: readonly Digest[], tree: FsTree): Promise<void> => {
      if (await this.load(this.treesByKey, this.keyOfDiffIds(diffIds), 'tree')) return;
      await this.save(this.treesByKey, this.keyOfDiffIds(diffIds), 'tree', tree.snapshot(keepForBigFiles));
    },
  };

  private keyOf(layers: readonly SbomLayer[]): string {
    return this.keyOfDiffIds(layers.map((l) => l.diffId));
  }

  private keyOfDiffIds(diffIds: readonly Digest[]): string {
    return digestHex(sha256([SCANNER, this.toolVersion, ...diffIds].join('\n')));
  }

  private counted(open: LayerSource): LayerSource {
    return async () => {
      this.stats.layersRead++;
      const src: Readable = await open();
      const count = new Transform({
        transform: (chunk: Buffer, _enc, done) => {
          this.stats.bytesRead += chunk.length;
          done(null, chunk);
        },
      });
      src.on('error', (e) => count.destroy(e));
      return src.pipe(count);
    };
  }

  private async saveTree(layers: readonly SbomLayer[], tree: FsTree): Promise<void> {
    await this.save(this.treesByKey, this.keyOf(layers), 'tree', tree.snapshot(keepForBigFiles));
  }

  private file(key: string, kind: string): string | undefined {
    return this.dir ? join(this.dir, `${key}.${kind}.json`) : undefined;
  }

  private async load<T>(memory: Map<string, T>, key: string, kind: string): Promise<T | undefined> {
    const hit = memory.get(key);
    if (hit) return hit;
    const file = this.file(key, kind);
    if (!file) return undefined;
    try {
      const value = JSON.parse(await readFile(file, 'utf8')) as T;
      memory.set(key, value);
      return value;
    } catch {
      return undefined; // absent or unreadable: scanned again (and rewritten)
    }
  }

  private async save<T>(memory: Map<string, T>, key: string, kind: string, value: T): Promise<void> {
    memory.set(key, value);
    const file = this.file(key, kind);
    if (!file) return;
    try {
      await writeAtomic(file, JSON.stringify(value));
    } catch {
      // Only a cache: a full or read-only cache directory means the next build scans again.
    }
  }
}
