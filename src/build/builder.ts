import type { BuildFile, VariantSpec } from '../config/model.js';
import type { Platform } from '../oci/types.js';
import { formatPlatform } from '../oci/platform.js';
import type { BlobStore } from '../layer/blobstore.js';
import { writeLayer } from '../layer/writer.js';
import { resolveOwner, scanLayers } from '../layer/reader.js';
import type { RegistryClient } from '../registry/client.js';
import { formatBytes, formatMs, type Logger } from '../log.js';
import { assemble, createdTime } from './assemble.js';
import { resolveBase, type BaseImage } from './base.js';
import { BlobFetcher } from './fetch.js';
import { FsView } from './fsview.js';
import type { BuiltImage, ImageLayer } from './image.js';
import { describeStep, stepEntries, type Owner } from './steps.js';

export interface BuildOptions {
  /** SOURCE_DATE_EPOCH: seconds; timestamps of layers and configs. Unset means the epoch. */
  sourceDateEpoch?: number;
  gzipLevel: number;
  logger: Logger;
  /** Where a variant's progress goes (the pipeline buffers it to print one group per variant). */
  variantLogger?: (variant: string) => Logger;
}

/** Builds images. A publisher (registry, OCI layout, archive) takes the result from here. */
export interface Builder {
  /** Builds each variant for each of its platforms; images come back in the platforms' order. */
  build(bf: BuildFile, variants: VariantSpec[], platformsOf: (v: VariantSpec) => Platform[]): Promise<Map<string, BuiltImage[]>>;
}

/** What a variant leaves behind for variants built `from` it. */
interface VariantState {
  image: BuiltImage;
  fs: FsView | undefined;
  owners: OwnerFiles;
  baseAnnotations: Record<string, string>;
}

interface OwnerFiles { passwd?: string; group?: string }

export class DaemonlessBuilder implements Builder {
  readonly fetcher: BlobFetcher;
  private readonly bases = new Map<string, Promise<BaseImage>>();
  private readonly scans = new Map<string, Promise<{ fs: FsView; owners: OwnerFiles }>>();
  layersWritten = 0;

  constructor(private readonly client: RegistryClient, private readonly store: BlobStore, private readonly opts: BuildOptions) {
    this.fetcher = new BlobFetcher(client, store);
  }

  async build(bf: BuildFile, variants: VariantSpec[], platformsOf: (v: VariantSpec) => Platform[]): Promise<Map<string, BuiltImage[]>> {
    const states = new Map<string, Promise<VariantState>>();
    const byName = new Map(variants.map((v) => [v.name, v]));
    const start = (v: VariantSpec, platform: Platform): Promise<VariantState> => {
      const key = `${v.name}|${formatPlatform(platform)}`;
      let p = states.get(key);
      if (!p) {
        const parent = v.from ? byName.get(v.from) : undefined;
        if (v.from && !parent) throw new Error(`variant ${v.name}: from: ${v.from} was not selected for this build`);
        p = (parent ? start(parent, platform) : Promise.resolve(undefined)).then((ps) => this.buildVariant(bf, v, platform, ps));
        states.set(key, p);
      }
      return p;
    };
    // Every variant and platform starts at once; `from` chains wait on their parent only.
    const jobs = variants.flatMap((v) => platformsOf(v).map((platform) => ({ v, promise: start(v, platform) })));
    const results = await Promise.allSettled(jobs.map((j) => j.promise));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const out = new Map<string, BuiltImage[]>();
    results.forEach((r, i) => {
      if (r.status !== 'fulfilled') return;
      const name = jobs[i]!.v.name;
      out.set(name, [...(out.get(name) ?? []), r.value.image]);
    });
    return out;
  }

  private async buildVariant(bf: BuildFile, v: VariantSpec, platform: Platform, parent: VariantState | undefined): Promise<VariantState> {
    const logger = this.opts.variantLogger?.(v.name) ?? this.opts.logger;
    const t0 = Date.now();
    // Log lines say which platform when a variant declares several.
    const label = v.platforms ? `${v.name} ${formatPlatform(platform)}` : v.name;
    let parentLayers: ImageLayer[];
    let parentConfig;
    let fs: FsView | undefined;
    let owners: OwnerFiles;
    let baseAnnotations: Record<string, string>;
    if (parent) {
      parentLayers = parent.image.layers;
      parentConfig = parent.image.config;
      fs = parent.fs?.clone();
      owners = parent.owners;
      baseAnnotations = parent.baseAnnotations;
    } else {
      const base = await this.base(v.base ?? 'scratch', platform);
      parentConfig = base.config;
      parentLayers = base.layers.map((d, i) => ({
        descriptor: d,
        diffId: base.config.rootfs.diff_ids[i]!,
        source: base.repo ? { kind: 'remote' as const, repo: base.repo } : { kind: 'local' as const },
        createdBy: 'base',
      }));
      baseAnnotations = base.digest
        ? { 'org.opencontainers.image.base.name': base.name, 'org.opencontainers.image.base.digest': base.digest }
        : {};
      owners = {};
      if (v.steps.length) {
        const scan = await this.scan(base);
        fs = scan.fs.clone();
        owners = scan.owners;
      }
      logger.info(`[${label}] resolve base: ${base.name}${base.digest ? `@${base.digest}` : ''} (${formatPlatform(platform)}, ${base.layers.length} layers) in ${formatMs(Date.now() - t0)}`);
    }
    fs ??= new FsView();
    // Entries are computed in order (each step sees the file system the previous ones left);
    // the layers are then written, hashed and compressed concurrently.
    const planned: { createdBy: string; entries: Awaited<ReturnType<typeof stepEntries>> }[] = [];
    for (const step of v.steps) {
      const entries = await stepEntries(step, {
        context: bf.context,
        platform: formatPlatform(platform),
        fs,
        resolveOwner: async (o: string): Promise<Owner> => resolveOwnerIn(o, owners, v.name),
      });
      fs.apply(entries);
      planned.push({ createdBy: `oci-build ${describeStep(step)}`, entries });
    }
    const mtime = new Date((this.opts.sourceDateEpoch ?? 0) * 1000);
    // The image spec's manifest schema wants at least one layer: a scratch variant with
    // only settings gets one empty layer.
    if (parentLayers.length === 0 && planned.length === 0) planned.push({ createdBy: 'oci-build empty layer', entries: [] });
    const newLayers = await Promise.all(planned.map(async ({ createdBy, entries }) => {
      const t = Date.now();
      const built = await writeLayer(entries, this.store, { mtime, level: this.opts.gzipLevel });
      this.layersWritten++;
      logger.info(`[${label}] layer ${built.descriptor.digest.slice(7, 19)}: ${createdBy.replace(/^oci-build /, '')} (${entries.length} entries, ${formatBytes(built.uncompressedSize)} -> ${formatBytes(built.descriptor.size)}) in ${formatMs(Date.now() - t)}`);
      return { descriptor: built.descriptor, diffId: built.diffId, source: { kind: 'local' as const }, createdBy };
    }));
    const image = assemble({
      variant: v, platform, parentConfig, parentLayers, newLayers, baseAnnotations,
      created: createdTime(this.opts.sourceDateEpoch),
    });
    await this.store.putBytes(image.configDescriptor.digest, image.configBytes);
    await this.store.putBytes(image.manifestDescriptor.digest, image.manifestBytes);
    logger.info(`[${label}] built ${image.manifestDescriptor.digest} (${image.layers.length} layers, ${image.newLayers} new, ${formatBytes(image.totalSize)}) in ${formatMs(Date.now() - t0)}`);
    return { image, fs, owners, baseAnnotations };
  }

  private base(ref: string, platform: Platform): Promise<BaseImage> {
    const key = `${ref}|${formatPlatform(platform)}`;
    let p = this.bases.get(key);
    if (!p) {
      p = resolveBase(this.client, ref, platform);
      this.bases.set(key, p);
    }
    return p;
  }

  /** Lists the base's file system and reads its users and groups, once per base per run. */
  private scan(base: BaseImage): Promise<{ fs: FsView; owners: OwnerFiles }> {
    const key = base.digest ?? 'scratch';
    let p = this.scans.get(key);
    if (!p) {
      p = (async () => {
        if (!base.repo || base.layers.length === 0) return { fs: new FsView(), owners: {} };
        const repo = base.repo;
        await Promise.all(base.layers.map((l) => this.fetcher.ensureLocal(l.digest, { kind: 'remote', repo })));
        const openers = base.layers.map((l) => () => this.store.open(l.digest));
        // One pass over the base layers: the final tree and the user and group files.
        const { files, paths } = await scanLayers(openers, { wanted: ['/etc/passwd', '/etc/group'], listPaths: true });
        const listing = paths ?? new Map();
        return {
          fs: FsView.fromListing(listing),
          owners: { passwd: files.get('/etc/passwd')?.toString('utf8'), group: files.get('/etc/group')?.toString('utf8') },
        };
      })();
      this.scans.set(key, p);
    }
    return p;
  }
}

function resolveOwnerIn(owner: string, files: OwnerFiles, variant: string): Owner {
  try {
    return resolveOwner(owner, files.passwd, files.group);
  } catch (err) {
    throw new Error(`variant ${variant}: ${(err as Error).message}`);
  }
}
