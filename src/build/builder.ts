import { dirname } from 'node:path';
import type { BuildFile, Step, VariantSpec } from '../config/model.js';
import { stepSources } from '../config/graph.js';
import type { ImageConfig, Platform } from '../oci/types.js';
import { formatPlatform } from '../oci/platform.js';
import { RootfsCache, type ChainLayer, type WorkingRootfs } from '../run/rootfs.js';
import { readIdFiles, runStep } from '../run/runstep.js';
import type { Snapshot } from '../run/snapshot.js';
import type { IsolationChoice } from '../run/sandbox.js';
import type { BlobStore } from '../layer/blobstore.js';
import type { LayerCompression } from '../layer/compress.js';
import { LayerProducer, type ProducedLayer } from './layer-producer.js';
import { defaultParallelism } from '../layer/pgzip.js';
import { fileBytes, guessedFs, sameEntries, SPECULATE_BYTES, speculable } from './speculate.js';
import type { LayerEntry } from '../layer/types.js';
import { canExecute, foreignPlatformMessage } from '../run/binfmt.js';
import { type CachedLayer, FileHasher, LayerCache, type RemoteLayers } from '../cache/layer-cache.js';
import { hasDiffId } from '../cache/registry-cache.js';
import { listLayerCached } from './layer-listing.js';
import { copyFromAliasParts } from '../cache/copy-alias.js';
import { whiteoutOf } from '../layer/whiteout.js';
import { resolveOwner } from '../image/users.js';
import type { RegistryClient } from '../registry/client.js';
import { formatBytes, formatMs, type Logger } from '../log.js';
import { assemble, createdTime } from './assemble.js';
import { BaseImageError, resolveBase, type BaseImage } from './base.js';
import { BlobFetcher } from '../image/fetch.js';
import { FsView } from './fsview.js';
import { BaseScanner, type BaseTreeReader, type OwnerFiles } from './base-scan.js';
import type { Layer } from '../oci/layer.js';
import type { BuiltImage } from '../image/image.js';
import { describeStep, dockerUserSpec, stepEntries, type Owner } from './steps.js';
import { stepIoError } from '../errors/io.js';
import type { LayerOrigin, LayerReport } from './report.js';
import type { Progress } from '../progress/progress.js';
import { runStepKeyParts } from './run-key.js';
import { mountKeyParts, prepareMounts, type MountHost } from './run-mounts.js';

export interface BuildOptions {
  /** SOURCE_DATE_EPOCH: seconds; timestamps of layers and configs. Unset means the epoch. */
  sourceDateEpoch?: number;
  /** How new layers are compressed (checked by the plan). */
  compression: LayerCompression;
  logger: Logger;
  /** Where a variant's progress goes (the pipeline buffers it to print one group per variant). */
  variantLogger?: (variant: string) => Logger;
  /** The layer cache's directory; undefined turns the cache off (--no-cache). */
  cacheDir?: string;
  /** How run: steps are isolated (src/run/sandbox.ts); default auto. */
  isolation?: IsolationChoice;
  /** Consulted on a layer cache miss: the registry's records (src/cache/registry-cache.ts). */
  remoteLayers?: RemoteLayers;
  /** Layers being compressed and base layers being fetched are reported here. */
  progress?: Progress;
  /** --rebuild-from: per variant, the step index (0-based) from which the layer cache is ignored. */
  rebuildFrom?: ReadonlyMap<string, number>;
  /** Told what each new layer was keyed by (the key journal `plan --explain` compares against). */
  onLayerKey?: (at: LayerKeyEvent) => void;
  /** Secret values by id for RUN --mount=type=secret (never logged, never in a key or layer). */
  secrets?: ReadonlyMap<string, Buffer>;
  /** Served by the base scan's pass over the base layers (the SBOM's inventory). */
  baseTreeReader?: BaseTreeReader;
}

/** One new layer of a variant and what its cache key was made of. */
export interface LayerKeyEvent {
  variant: string;
  platform: string;
  /** Step index, 0-based. */
  step: number;
  keyParts: Record<string, unknown>;
  diffId: string;
  /** The image the variant starts from: its reference and digest, or the `from` variant. */
  start: { base?: string; digest?: string; from?: string };
}

/** Builds images. A publisher (registry, OCI layout, archive) takes the result from here. */
export interface Builder {
  /** Builds each variant for each of its platforms; images come back in the platforms' order. */
  build(bf: BuildFile, variants: VariantSpec[], platformsOf: (v: VariantSpec) => Platform[]): Promise<Map<string, BuiltImage[]>>;
}

/** A first layer being made while the base is scanned, and the entries it was guessed from. */
interface Speculation {
  entries: LayerEntry[];
  produced: Promise<ProducedLayer>;
  abort: AbortController;
}

/** What a variant leaves behind for variants built `from` it. */
interface VariantState extends VariantFiles {
  image: BuiltImage;
}

/**
 * A variant's final file system as its steps leave it: known as soon as the steps' entries
 * are, while its layers may still be compressing. A `from:` child starts its own steps then.
 */
interface VariantFiles {
  fs: FsView | undefined;
  owners: OwnerFiles;
  baseAnnotations: Record<string, string>;
}

/** A variant being built: its files (early) and its image (when every layer is written). */
interface VariantJob {
  files: Promise<VariantFiles>;
  done: Promise<VariantState>;
}

export class DaemonlessBuilder implements Builder {
  private readonly fetcher: BlobFetcher;
  private readonly bases = new Map<string, Promise<BaseImage>>();
  private readonly scanner: BaseScanner;
  /** Bases (by digest) whose scan already has a layer compressing beside it. */
  private readonly speculating = new Set<string>();
  /** Root file systems for run: and copy: from: steps, made on first need (src/run/rootfs.ts). */
  private rootfs?: RootfsCache;
  /** The stats of the rootfs caches of finished builds. */
  private readonly rootfsDone = { layersExtracted: 0, clones: 0 };
  /** Variants whose final file system a later variant needs (it copies from them, or runs on top). */
  private readonly rootfsWanted = new Set<string>();
  /** Variants that are the only ones of this build to need their base's file system. */
  private readonly soleBaseUser = new Set<string>();
  /** How each layer this build wrote or reused came to be (base and `from` layers are not here). */
  private readonly origins = new WeakMap<Layer, LayerOrigin>();
  /** Per variant and platform (`name|os/arch`): its image's layers and where each came from. */
  private readonly reports = new Map<string, LayerReport[]>();
  /** The state of a variant of this build for a platform (copy: from:). */
  private lookup?: (name: string, platform: Platform) => Promise<VariantState> | undefined;

  constructor(
    private readonly client: RegistryClient,
    private readonly store: BlobStore,
    private readonly opts: BuildOptions,
  ) {
    this.fetcher = new BlobFetcher(client, store, opts.progress);
    this.scanner = new BaseScanner(this.fetcher, opts.cacheDir, opts.baseTreeReader);
  }

  async build(bf: BuildFile, variants: VariantSpec[], platformsOf: (v: VariantSpec) => Platform[]): Promise<Map<string, BuiltImage[]>> {
    const states = new Map<string, VariantJob>();
    const byName = new Map(variants.map((v) => [v.name, v]));
    const start = (v: VariantSpec, platform: Platform): VariantJob => {
      const key = `${v.name}|${formatPlatform(platform)}`;
      let job = states.get(key);
      if (!job) {
        const parent = v.from ? byName.get(v.from) : undefined;
        if (v.from && !parent) throw new Error(`variant ${v.name}: from: ${v.from} was not selected for this build`);
        const parentJob = parent ? start(parent, platform) : undefined;
        let filesKnown!: (f: VariantFiles) => void;
        let filesFailed!: (err: unknown) => void;
        const files = new Promise<VariantFiles>((res, rej) => {
          filesKnown = res;
          filesFailed = rej;
        });
        files.catch(() => {
          /* the done promise reports it */
        });
        const done = (parentJob ? parentJob.files : Promise.resolve(undefined)).then((pf) =>
          this.buildVariant(bf, v, platform, parentJob && pf ? { files: pf, done: parentJob.done } : undefined, filesKnown),
        );
        done.catch(filesFailed);
        job = { files, done };
        states.set(key, job);
      }
      return job;
    };
    this.lookup = (name, platform) => {
      const v = byName.get(name);
      return v ? start(v, platform).done : undefined;
    };
    // A variant's rootfs is kept for the variants that copy from it or run commands on top of it.
    const hasRun = (v: VariantSpec) => v.steps.some((s) => s.kind === 'run');
    const wanted = (name: string, seen = new Set<string>()): boolean => {
      if (seen.has(name)) return false;
      seen.add(name);
      return variants.some(
        (c) => c.steps.some((s) => stepSources(s).includes(name)) || (c.from === name && (hasRun(c) || wanted(c.name, seen))),
      );
    };
    for (const v of variants) if (wanted(v.name)) this.rootfsWanted.add(v.name);
    // A base that only one variant runs commands on (and nothing copies from a step-less
    // variant, whose file system would be the base's) is extracted into that variant's
    // working directory directly.
    const copiesFromBare = variants.some((c) => c.steps.some((s) => stepSources(s).some((f) => byName.get(f)?.steps.length === 0)));
    const runsOn = new Map<string, number>();
    for (const v of variants) if (!v.from && hasRun(v)) runsOn.set(v.base ?? 'scratch', (runsOn.get(v.base ?? 'scratch') ?? 0) + 1);
    for (const v of variants) if (!v.from && !copiesFromBare && runsOn.get(v.base ?? 'scratch') === 1) this.soleBaseUser.add(v.name);
    // Every variant and platform starts at once; `from` chains wait on their parent only.
    const jobs = variants.flatMap((v) => platformsOf(v).map((platform) => ({ v, promise: start(v, platform).done })));
    const results = await Promise.allSettled(jobs.map((j) => j.promise));
    if (this.rootfs) {
      this.rootfsDone.layersExtracted += this.rootfs.stats.layersExtracted;
      this.rootfsDone.clones += this.rootfs.stats.clones;
    }
    await this.rootfs?.dispose();
    this.rootfs = undefined;
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

  private async buildVariant(
    bf: BuildFile,
    v: VariantSpec,
    platform: Platform,
    parent: { files: VariantFiles; done: Promise<VariantState> } | undefined,
    filesKnown: (f: VariantFiles) => void,
  ): Promise<VariantState> {
    const logger = this.opts.variantLogger?.(v.name) ?? this.opts.logger;
    const t0 = Date.now();
    // Log lines say which platform when a variant declares several.
    const label = v.platforms ? `${v.name} ${formatPlatform(platform)}` : v.name;
    // A from: child starts with its parent's files; its parent's layers and config are awaited
    // only where they are needed (a run: step, and the image at the end).
    let parentImage: () => Promise<{ layers: Layer[]; config: ImageConfig }>;
    let fs: FsView | undefined;
    let owners: OwnerFiles;
    let baseAnnotations: Record<string, string>;
    let speculation: Speculation | undefined;
    if (parent) {
      parentImage = async () => (await parent.done).image;
      fs = parent.files.fs?.clone();
      owners = parent.files.owners;
      baseAnnotations = parent.files.baseAnnotations;
    } else {
      const base = await this.base(v.base ?? 'scratch', platform);
      const baseLayers = this.baseLayers(base);
      parentImage = () => Promise.resolve({ layers: baseLayers, config: base.config });
      baseAnnotations = base.digest
        ? { 'org.opencontainers.image.base.name': base.name, 'org.opencontainers.image.base.digest': base.digest }
        : {};
      owners = {};
      if (v.steps.length) {
        const scanning = this.scanner.scan(base);
        scanning.catch(() => {
          /* awaited below */
        });
        speculation = await this.speculate(bf, v, platform, base);
        const scan = await scanning.catch((err: unknown) => {
          speculation?.abort.abort();
          throw err;
        });
        fs = scan.fs.clone();
        owners = scan.owners;
      } else {
        // Nothing is built on the base, but the image still carries its layers: the scan checks
        // them against the config's diff_ids (once per base digest with a cache directory).
        await this.scanner.scan(base);
      }
      logger.info(
        `[${label}] resolve base: ${base.name}${base.digest ? `@${base.digest}` : ''} (${formatPlatform(platform)}, ${base.layers.length} layers) in ${formatMs(Date.now() - t0)}`,
      );
    }
    fs ??= new FsView();
    const producer = this.producer();
    const freshFrom = this.opts.rebuildFrom?.get(v.name);
    const fresh = (step?: Step) => ({ fresh: freshFrom !== undefined && step !== undefined && v.steps.indexOf(step) >= freshFrom });
    const start = {
      ...(parent
        ? { from: v.from }
        : {
            base: baseAnnotations['org.opencontainers.image.base.name'] ?? v.base ?? 'scratch',
            ...(baseAnnotations['org.opencontainers.image.base.digest']
              ? { digest: baseAnnotations['org.opencontainers.image.base.digest'] }
              : {}),
          }),
    };
    const journal = (step: Step | undefined, keyParts: Record<string, unknown> | undefined, diffId: string) => {
      if (step && keyParts)
        this.opts.onLayerKey?.({
          variant: v.name,
          platform: formatPlatform(platform),
          step: v.steps.indexOf(step),
          keyParts,
          diffId,
          start,
        });
    };
    const writeOne = async (
      createdBy: string,
      entries: Awaited<ReturnType<typeof stepEntries>>,
      step?: Step,
      runKey?: Record<string, unknown>,
      made?: Promise<ProducedLayer>,
      alias?: Record<string, unknown>,
    ): Promise<Layer> => {
      const t = Date.now();
      const {
        layer: built,
        how,
        keyParts,
      } = made
        ? await made
        : step && step.kind !== 'run'
          ? await producer.fromStep(step, entries, undefined, fresh(step))
          : await producer.fromKey(runKey, () => producer.write(entries), fresh(step));
      journal(step, keyParts, built.diffId);
      if (alias && keyParts) await producer.recordAlias(alias, keyParts);
      const verb =
        how === 'built' ? '' : how === 'cached' ? (built.remote ? ' [cached: registry]' : ' [cached]') : ' [shared with another variant]';
      logger.info(
        `[${label}] layer ${built.descriptor.digest.slice(7, 19)}: ${createdBy.replace(/^oci-build /, '')}${verb} (${entries.length} entries, ${formatBytes(built.uncompressedSize)} -> ${formatBytes(built.descriptor.size)}) in ${formatMs(Date.now() - t)}`,
      );
      const layer = this.layerOf(built, createdBy);
      this.origins.set(layer, made && how === 'built' ? 'speculated' : how);
      return layer;
    };
    // Entries are computed in order (each step sees the file system the previous ones left);
    // copy/file layers are written, hashed and compressed concurrently. A run: step needs the
    // layers before it as a root file system, so it waits for them; its own layer is written
    // before the rootfs changes again (the entries read their content from it).
    const written: Promise<Layer>[] = [];
    let work: WorkingRootfs | undefined;
    // The rootfs as the last run: step left it, while no layer has been extracted onto it since.
    let lastRun: { chainLength: number; snapshot: Snapshot } | undefined;
    const note = (m: string) => logger.debug(`[${label}] ${m}`);
    // I/O errors name the step and path and say what to do (src/errors/io.ts).
    const ioError = (err: unknown, step: Step) =>
      stepIoError(
        err,
        `${step.pos.file}:${step.pos.line}`,
        `variant ${v.name}: ${describeStep(step)}`,
        step.kind === 'run' ? 'temporary root file system' : 'cache',
        dirname(this.store.root),
      );
    const view = fs;
    const seeCached = async (layer: Layer): Promise<void> => {
      const listing = await listLayerCached(layer, this.opts.cacheDir);
      for (const d of listing.opaque) view.clear(d);
      view.apply(listing.entries as Awaited<ReturnType<typeof stepEntries>>);
      for (const d of listing.deleted) view.remove(d);
      if (listing.files.passwd !== undefined || listing.files.group !== undefined) owners = { ...owners, ...listing.files };
    };
    let current: Step | undefined;
    try {
      for (const step of v.steps) {
        current = step;
        const createdBy = step.createdBy ?? `oci-build ${describeStep(step)}`;
        if (step.kind === 'run') {
          const exec = canExecute(platform);
          if (!exec.ok) throw new Error(`${step.pos.file}:${step.pos.line}: variant ${v.name}: ${foreignPlatformMessage(platform)}`);
          if (exec.how !== 'native') logger.info(`[${label}] ${formatPlatform(platform)} runs through ${exec.how}`);
          const done = await Promise.all(written);
          const { layers: parentLayers, config: parentConfig } = await parentImage();
          // The command's result depends on the file system it starts from (every diffID so
          // far), the step, and the environment it runs in; a cache hit skips running it.
          const mountHost = this.mountHost(v.name, bf.context, platform);
          const runKey = runStepKeyParts(
            step,
            [...parentLayers, ...done].map((l) => l.diffId),
            formatPlatform(platform),
            parentConfig,
            v,
            this.opts.sourceDateEpoch,
            step.mounts?.length ? await mountKeyParts(step, mountHost) : undefined,
          );
          let hit = fresh(step).fresh ? undefined : await producer.lookup(runKey);
          if (hit?.remote && !(await hasDiffId(() => this.layerOf(hit!, createdBy).open(), hit.diffId))) {
            logger.warn(
              `[${label}] registry cache: the layer recorded for ${describeStep(step)} (${hit.descriptor.digest}) is not the recorded diffID; not using it, the command runs`,
            );
            producer.distrust(runKey);
            hit = undefined;
          }
          if (hit) {
            journal(step, producer.runKeyParts(runKey), hit.diffId);
            const layer = this.layerOf(hit, createdBy);
            this.origins.set(layer, 'cached');
            logger.info(
              `[${label}] layer ${hit.descriptor.digest.slice(7, 19)}: ${describeStep(step)} [cached${hit.remote ? ' in the registry' : ''}: command not run] (${formatBytes(hit.uncompressedSize)} -> ${formatBytes(hit.descriptor.size)})`,
            );
            written.push(Promise.resolve(layer));
            // Later steps see what the command changed: from the cached layer itself.
            await seeCached(layer);
            continue;
          }
          work = await this.workingRootfs(work, parentLayers, done, this.soleBaseUser.has(v.name));
          const t = Date.now();
          logger.info(`[${label}] ${describeStep(step)}`);
          const asRun = step.dockerUser && step.user ? { ...step, user: dockerUserSpec(step.user, owners.passwd) } : step;
          const mounts = step.mounts?.length ? await prepareMounts(step, mountHost) : undefined;
          const result = await runStep(asRun, {
            ...(mounts ? { mounts: mounts.mounts, hiddenEnv: mounts.hiddenEnv, redact: mounts.redact } : {}),
            rootfs: work.dir,
            config: parentConfig.config,
            variantEnv: step.ownEnv ? {} : v.env,
            tmpDir: this.rootfsCache().top,
            ...(this.opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: this.opts.sourceDateEpoch } : {}),
            onLine: (l) => logger.info(`[${label}]  | ${l}`),
            note,
            isolation: this.opts.isolation ?? 'auto',
            announce: (m) => this.opts.logger.info(m),
            ...(lastRun?.chainLength === work.chain.length ? { before: lastRun.snapshot } : {}),
          }).finally(() => mounts?.release());
          logger.info(
            `[${label}] run: exit 0 in ${formatMs(Date.now() - t)}: ${result.entries.length - result.deleted.length} changed, ${result.deleted.length} deleted`,
          );
          const layer = await writeOne(createdBy, result.entries, step, runKey);
          work.chain.push(this.chainLayer(layer, `${v.name}: ${describeStep(step)}`));
          lastRun = { chainLength: work.chain.length, snapshot: result.snapshot };
          written.push(Promise.resolve(layer));
          fs.apply(result.entries.filter((e) => !whiteoutOf(e.path)));
          for (const d of result.deleted) fs.remove(d);
          if (result.idsChanged) owners = readIdFiles(work.dir);
          continue;
        }
        let alias: Record<string, unknown> | undefined;
        if (step.kind === 'copy' && step.from !== undefined && this.opts.cacheDir) {
          // A copy from another variant: its alias (src/cache/copy-alias.ts) finds a cached
          // layer without materializing that variant's file system.
          const done = await Promise.all(written);
          alias = copyFromAliasParts(step, {
            platform: formatPlatform(platform),
            below: [...(await parentImage()).layers, ...done].map((l) => l.diffId),
            source: await this.variantLayers(v.name, step.from, platform),
          });
          const hit = fresh(step).fresh ? undefined : await producer.byAlias(alias);
          if (hit) {
            journal(step, hit.keyParts, hit.layer.diffId);
            const layer = this.layerOf(hit.layer, createdBy);
            this.origins.set(layer, 'cached');
            logger.info(
              `[${label}] layer ${hit.layer.descriptor.digest.slice(7, 19)}: ${createdBy.replace(/^oci-build /, '')} [cached: ${step.from}'s files not read] (${formatBytes(hit.layer.uncompressedSize)} -> ${formatBytes(hit.layer.descriptor.size)})`,
            );
            written.push(Promise.resolve(layer));
            await seeCached(layer);
            continue;
          }
        }
        const entries = await stepEntries(step, {
          context: bf.context,
          platform: formatPlatform(platform),
          fs,
          resolveOwner: async (o: string): Promise<Owner> => resolveOwnerIn(o, owners, v.name),
          variantRoot: (name) => this.variantRoot(v.name, name, platform),
          note,
        });
        fs.apply(entries);
        // A WORKDIR that exists already changes nothing: no layer (as Docker makes none).
        if (step.kind === 'dir' && entries.length === 0) continue;
        let made: Promise<ProducedLayer> | undefined;
        if (speculation && step === v.steps[0] && fresh(step).fresh) {
          // --rebuild-from: the layer guessed during the scan may have come from the cache.
          speculation.abort.abort();
          speculation = undefined;
        }
        if (speculation && step === v.steps[0]) {
          if (sameEntries(entries, speculation.entries)) {
            made = speculation.produced;
            note('the layer started during the base scan is the one this step needs');
          } else {
            speculation.abort.abort();
            note('the layer started during the base scan guessed other parent directories; building it again');
          }
          speculation = undefined;
        }
        const p = writeOne(createdBy, entries, step, undefined, made, alias).catch((err: unknown) => {
          throw ioError(err, step);
        });
        p.catch(() => {
          /* awaited below */
        });
        written.push(p);
      }
      // The image spec's manifest schema wants at least one layer: a scratch variant with
      // only settings gets one empty layer.
      if (!parent && (await parentImage()).layers.length === 0 && written.length === 0) written.push(writeOne('oci-build empty layer', []));
      filesKnown({ fs, owners, baseAnnotations });
    } catch (err) {
      speculation?.abort.abort();
      await Promise.allSettled(written);
      if (work) await this.rootfsCache().discard(work);
      throw current ? ioError(err, current) : err;
    }
    const newLayers = await Promise.all(written);
    const { layers: parentLayers, config: parentConfig } = await parentImage();
    if (work) {
      // Kept for the variants that start from this one or copy from it, as the final chain's rootfs.
      if (this.rootfsWanted.has(v.name)) {
        await this.rootfsCache().apply(
          work,
          newLayers.slice(work.chain.length - parentLayers.length).map((l) => this.chainLayer(l, `${v.name}: ${l.createdBy}`)),
        );
        await this.rootfsCache().adopt(work);
      } else {
        await this.rootfsCache().discard(work);
      }
    }
    const image = assemble({
      variant: v,
      platform,
      parentConfig,
      parentLayers,
      newLayers,
      baseAnnotations,
      created: createdTime(this.opts.sourceDateEpoch),
    });
    const inherited: LayerOrigin = parent ? 'from' : 'base';
    this.reports.set(
      `${v.name}|${formatPlatform(platform)}`,
      image.layers.map((l, index) => ({
        variant: v.name,
        platform: formatPlatform(platform),
        index,
        digest: l.descriptor.digest,
        createdBy: l.createdBy,
        origin: index < parentLayers.length ? inherited : (this.origins.get(l) ?? 'built'),
      })),
    );
    await this.store.putBytes(image.configDescriptor.digest, image.configBytes);
    await this.store.putBytes(image.manifestDescriptor.digest, image.manifestBytes);
    logger.info(
      `[${label}] built ${image.manifestDescriptor.digest} (${image.layers.length} layers, ${newLayers.length} new, ${formatBytes(image.totalSize)}) in ${formatMs(Date.now() - t0)}`,
    );
    return { image, fs, owners, baseAnnotations };
  }

  /** Where each layer of a built image came from, in the variants' and platforms' order as given. */
  layerReport(variants: readonly VariantSpec[], platformsOf: (v: VariantSpec) => Platform[]): LayerReport[] {
    return variants.flatMap((v) => platformsOf(v).flatMap((p) => this.reports.get(`${v.name}|${formatPlatform(p)}`) ?? []));
  }

  /** Starts the first copy layer during a cold base scan (src/build/speculate.ts); undefined when that does not apply. */
  private async speculate(bf: BuildFile, v: VariantSpec, platform: Platform, base: BaseImage): Promise<Speculation | undefined> {
    const first = v.steps[0];
    const digest = base.digest;
    // One guess per base scan: the scan's inflate runs on one core and needs it; one layer
    // compressing beside it, a chunk at a time, fills the other.
    if (
      !speculable(first) ||
      !base.repo ||
      !digest ||
      base.layers.length === 0 ||
      this.scanner.alreadyScanned(digest) ||
      this.speculating.has(digest)
    )
      return undefined;
    this.speculating.add(digest);
    try {
      const entries = await stepEntries(first, {
        context: bf.context,
        platform: formatPlatform(platform),
        fs: guessedFs(first),
        resolveOwner: async (o: string): Promise<Owner> => resolveOwner(o),
      });
      if (fileBytes(entries) < SPECULATE_BYTES) return undefined;
      const abort = new AbortController();
      const produced = this.producer().fromStep(first, entries, {
        signal: abort.signal,
        parallel: () => (this.scanner.finished(digest) ? defaultParallelism() : 1),
      });
      produced.catch(() => {
        /* aborted, or failed: the real step reports its own errors */
      });
      return { entries, produced, abort };
    } catch {
      return undefined; // the real step says what is wrong
    }
  }

  private layerProducer?: LayerProducer;

  /** One per build: layers shared by variants and platforms are made once. */
  producer(): LayerProducer {
    if (!this.layerProducer) {
      const dir = this.opts.cacheDir;
      this.layerProducer = new LayerProducer(
        this.store,
        dir ? new LayerCache(dir, this.store, this.opts.remoteLayers) : undefined,
        dir ? new FileHasher(dir) : undefined,
        {
          mtime: new Date((this.opts.sourceDateEpoch ?? 0) * 1000),
          compression: this.opts.compression,
          ...(this.opts.progress ? { progress: this.opts.progress } : {}),
        },
      );
    }
    return this.layerProducer;
  }

  /** A layer from the store, or (a registry record's hit) fetched from its repository when first read. */
  private layerOf(l: CachedLayer, createdBy: string): Layer {
    return l.remote ? this.fetcher.layer(l.descriptor, l.diffId, l.remote, createdBy) : this.store.layer(l.descriptor, l.diffId, createdBy);
  }

  /** Layers extracted and rootfs copies made by this build (a no-op rebuild makes none). */
  rootfsStats(): RootfsCache['stats'] {
    return { ...this.rootfsDone };
  }

  private rootfsCache(): RootfsCache {
    // Next to the blob store, in the cache directory (same file system: cheap copies).
    this.rootfs ??= new RootfsCache(
      dirname(this.store.root),
      (m) => this.opts.logger.info(m),
      (m) => this.opts.logger.debug(m),
    );
    return this.rootfs;
  }

  private chainLayer(l: Layer, label: string): ChainLayer {
    return { diffId: l.diffId, label: `${label} (${l.descriptor.digest.slice(0, 19)})`, open: () => l.open() };
  }

  /** The base's layers, fetched from its repository when first opened. */
  private baseLayers(base: BaseImage): Layer[] {
    return base.layers.map((d, i) => {
      const diffId = base.config.rootfs.diff_ids[i]!;
      return base.repo ? this.fetcher.layer(d, diffId, base.repo, 'base') : this.store.layer(d, diffId, 'base');
    });
  }

  private chain(layers: readonly Layer[]): ChainLayer[] {
    return layers.map((l, i) =>
      this.chainLayer(l, l.createdBy === 'base' ? `base layer ${i + 1} of ${layers.length}` : l.createdBy.replace(/^oci-build /, '')),
    );
  }

  /**
   * The variant's working rootfs with every layer so far: a clone of the starting image's
   * snapshot (shared with the other variants that start there) on first use, then brought up to
   * date with the copy/file layers written since the last run: step.
   */
  private async workingRootfs(
    work: WorkingRootfs | undefined,
    parentLayers: Layer[],
    own: Layer[],
    exclusive: boolean,
  ): Promise<WorkingRootfs> {
    const cache = this.rootfsCache();
    const w = work ?? (await cache.checkout(this.chain(parentLayers), { exclusive }));
    const all = this.chain([...parentLayers, ...own]);
    await cache.apply(w, all.slice(w.chain.length));
    return w;
  }

  /** What RUN --mount needs of the build: the cache and scratch directories, secrets, other variants. */
  private mountHost(from: string, context: string, platform: Platform): MountHost {
    return {
      workDir: dirname(this.store.root),
      tmpDir: this.rootfsCache().top,
      context,
      secrets: this.opts.secrets ?? new Map(),
      variantRoot: (name) => this.variantRoot(from, name, platform),
      variantLayers: (name) => this.variantLayers(from, name, platform, 'RUN --mount'),
      note: (m) => this.opts.logger.info(m),
    };
  }

  /** Another variant's layer diffIDs (same platform): what its file system is, without extracting it. */
  private async variantLayers(from: string, name: string, platform: Platform, what = 'copy'): Promise<string[]> {
    const state = this.lookup?.(name, platform);
    if (!state) throw new Error(`variant ${from}: ${what} from ${name}: that variant is not part of this build`);
    return (await state).image.layers.map((l) => l.diffId);
  }

  /** The final file system of another variant of this build (same platform), for copy: from:. */
  private async variantRoot(from: string, name: string, platform: Platform): Promise<string> {
    const state = this.lookup?.(name, platform);
    if (!state)
      throw new Error(`variant ${from}: copy from ${name}: that variant is not part of this build for ${formatPlatform(platform)}`);
    const s = await state;
    return this.rootfsCache().snapshot(this.chain(s.image.layers));
  }

  /** A base image as the build will use it (resolved once per run): for the checks before the build. */
  baseImage(ref: string, platform: Platform): Promise<BaseImage> {
    return this.base(ref, platform);
  }

  private base(ref: string, platform: Platform): Promise<BaseImage> {
    const key = `${ref}|${formatPlatform(platform)}`;
    let p = this.bases.get(key);
    if (!p) {
      p = resolveBase(this.client, ref, platform).catch((err: unknown) => {
        if (err instanceof BaseImageError) throw err;
        // Registry and network failures: say which base it was and what to check.
        throw new BaseImageError(
          ref,
          `${(err as Error).message}\n  (fix: check the reference and that its registry is reachable; for a private registry give credentials with registry-auth or ~/.docker/config.json)`,
        );
      });
      this.bases.set(key, p);
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
