import { dirname } from 'node:path';
import type { BuildFile, Step, VariantSpec } from '../config/model.js';
import { stepSources } from '../config/graph.js';
import type { ImageConfig, Platform } from '../oci/types.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import { platformSpecs, specFor } from '../config/per-platform.js';
import { RootfsCache, type WorkingRootfs } from '../run/rootfs.js';
import { chainLayer, chainOf } from './chain-layers.js';
import type { BuildOptions, Builder } from './build-options.js';
import { readIdFiles, runStep } from '../run/runstep.js';
import type { Snapshot } from '../run/snapshot.js';
import type { BlobStore } from '../layer/blobstore.js';
import { LayerProducer, type ProducedLayer } from './layer-producer.js';
import { defaultParallelism } from '../layer/pgzip.js';
import { fileBytes, guessedFs, sameEntries, SPECULATE_BYTES, speculable } from './speculate.js';
import type { LayerEntry } from '../layer/types.js';
import { canExecute, foreignPlatformMessage } from '../run/binfmt.js';
import { type CachedLayer, FileHasher, hashKey, LayerCache } from '../cache/layer-cache.js';
import { hasDiffId } from '../cache/registry-cache.js';
import { StepFiles, type FilesSoFar } from './step-files.js';
import { probeable, probeEntries, settleEntries } from './step-probe.js';
import { contentsOf } from './chain-key.js';
import type { CopyStep, DirStep, FileStep } from '../config/model.js';
import { copyFromAliasParts } from '../cache/copy-alias.js';
import { whiteoutOf } from '../layer/whiteout.js';
import { resolveOwner } from '../image/users.js';
import type { RegistryClient } from '../registry/client.js';
import { formatBytes, formatMs } from '../log.js';
import { assemble, createdTime } from './assemble.js';
import { BaseImageError, resolveBase, type BaseImage } from './base.js';
import { BlobFetcher } from '../image/fetch.js';
import { BaseScanner, type OwnerFiles } from './base-scan.js';
import type { Layer } from '../oci/layer.js';
import type { BuiltImage } from '../image/image.js';
import { describeStep, dockerUserSpec, stepEntries, type Owner } from './steps.js';
import { stepIoError } from '../errors/io.js';
import type { LayerOrigin, LayerReport } from './report.js';
import { runStepKeyParts } from './run-key.js';
import { mountKeyParts, prepareMounts, type MountHost } from './run-mounts.js';

export type { BuildOptions, Builder, LayerKeyEvent } from './build-options.js';

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
 * `listed` is false when the variant was built from keys alone (its files are listed when a
 * child first needs them).
 */
interface VariantFiles {
  listed: boolean;
  files: () => Promise<FilesSoFar>;
  baseAnnotations: Record<string, string>;
}

/** A registry record's layer turned out not to unpack to its recorded diffID: the variant is built again without it. */
class RecordMismatch extends Error {}

/** One variant for one platform to build, on its parent variant's files when it has one. */
interface VariantTask {
  bf: BuildFile;
  v: VariantSpec;
  platform: Platform;
  parent: { files: VariantFiles; done: Promise<VariantState> } | undefined;
  filesKnown: (f: VariantFiles) => void;
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
    const start = (v: VariantSpec, asked: Platform): VariantJob => {
      // A fixed-platform variant (FROM --platform) is the same build for every platform that uses it.
      const platform = v.fixedPlatform ? parsePlatform(v.fixedPlatform) : asked;
      const key = `${v.name}|${formatPlatform(platform)}`;
      let job = states.get(key);
      if (!job) {
        const spec = specFor(v, formatPlatform(platform));
        const parent = spec.from ? byName.get(spec.from) : undefined;
        if (spec.from && !parent) throw new Error(`variant ${v.name}: from: ${spec.from} was not selected for this build`);
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
          this.buildVariant({
            bf,
            v: spec,
            platform,
            parent: parentJob && pf ? { files: pf, done: parentJob.done } : undefined,
            filesKnown,
          }),
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
    // (Every platform's definition counts: a Dockerfile variant's steps and parent may differ per platform.)
    const specs = new Map(variants.map((v) => [v.name, platformSpecs(v)]));
    const steps = (v: VariantSpec) => specs.get(v.name)!.flatMap((s) => s.steps);
    const hasRun = (v: VariantSpec) => steps(v).some((s) => s.kind === 'run');
    const wanted = (name: string, seen = new Set<string>()): boolean => {
      if (seen.has(name)) return false;
      seen.add(name);
      return variants.some(
        (c) =>
          steps(c).some((s) => stepSources(s).includes(name)) ||
          (specs.get(c.name)!.some((s) => s.from === name) && (hasRun(c) || wanted(c.name, seen))),
      );
    };
    for (const v of variants) if (wanted(v.name)) this.rootfsWanted.add(v.name);
    // A base that only one variant runs commands on (and nothing copies from a step-less
    // variant, whose file system would be the base's) is extracted into that variant's
    // working directory directly.
    const copiesFromBare = variants.some((c) => steps(c).some((s) => stepSources(s).some((f) => byName.get(f)?.steps.length === 0)));
    const runsOn = new Map<string, number>();
    const onBase = (v: VariantSpec) => {
      const all = specs.get(v.name)!;
      const base = all[0]!.base ?? 'scratch';
      return all.every((s) => s.from === undefined && (s.base ?? 'scratch') === base) ? base : undefined;
    };
    for (const v of variants) {
      const base = onBase(v);
      if (base !== undefined && hasRun(v)) runsOn.set(base, (runsOn.get(base) ?? 0) + 1);
    }
    for (const v of variants) {
      const base = onBase(v);
      if (base !== undefined && !copiesFromBare && runsOn.get(base) === 1) this.soleBaseUser.add(v.name);
    }
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

  /**
   * Builds a variant, keys first (see StepFiles); when a registry record's layer it took does not
   * unpack to its recorded diffID, again with the file system listed as it goes (the record's
   * entry distrusted), before anything of it is pushed.
   */
  private async buildVariant(task: VariantTask): Promise<VariantState> {
    // Each attempt distrusts the entries that failed (never used again), so few are needed.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.buildVariantOnce(task, attempt === 0);
      } catch (err) {
        if (!(err instanceof RecordMismatch) || attempt >= 8) throw err;
        (this.opts.variantLogger?.(task.v.name) ?? this.opts.logger).warn(err.message);
      }
    }
  }

  private async buildVariantOnce(task: VariantTask, keysFirst: boolean): Promise<VariantState> {
    const { bf, v, platform, parent, filesKnown } = task;
    const logger = this.opts.variantLogger?.(v.name) ?? this.opts.logger;
    const t0 = Date.now();
    // Log lines say which platform when a variant declares several.
    const label = v.platforms ? `${v.name} ${formatPlatform(platform)}` : v.name;
    // A from: child starts with its parent's files; its parent's layers and config are awaited
    // only where they are needed (a run: step, and the image at the end).
    let parentImage: () => Promise<{ layers: Layer[]; config: ImageConfig }>;
    let files: StepFiles;
    let baseAnnotations: Record<string, string>;
    let speculation: Speculation | undefined;
    const cacheDir = this.opts.cacheDir;
    if (parent) {
      parentImage = async () => (await parent.done).image;
      files = new StepFiles(cacheDir, keysFirst && !parent.files.listed ? { later: parent.files.files } : await parent.files.files());
      baseAnnotations = parent.files.baseAnnotations;
    } else {
      const base = await this.base(v.base ?? 'scratch', platform);
      const baseLayers = this.baseLayers(base);
      parentImage = () => Promise.resolve({ layers: baseLayers, config: base.config });
      baseAnnotations = base.digest
        ? { 'org.opencontainers.image.base.name': base.name, 'org.opencontainers.image.base.digest': base.digest }
        : {};
      files = new StepFiles(cacheDir, { fs: undefined, owners: {} });
      if (v.steps.length && keysFirst && (await this.buildsFromRecords(base))) {
        // A fresh runner with the registry's records: the base is scanned if a step needs it.
        files = new StepFiles(cacheDir, { later: () => this.scanner.scan(base) });
      } else if (v.steps.length) {
        const scanning = this.scanner.scan(base);
        scanning.catch(() => {
          /* awaited below */
        });
        speculation = await this.speculate(bf, v, platform, base);
        const scan = await scanning.catch((err: unknown) => {
          speculation?.abort.abort();
          throw err;
        });
        files = new StepFiles(cacheDir, scan);
      } else {
        // Nothing is built on the base, but the image still carries its layers: the scan checks
        // them against the config's diff_ids (once per base digest with a cache directory).
        await this.scanner.scan(base);
      }
      logger.info(
        `[${label}] resolve base: ${base.name}${base.digest ? `@${base.digest}` : ''} (${formatPlatform(platform)}, ${base.layers.length} layers) in ${formatMs(Date.now() - t0)}`,
      );
    }
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
    const journal = (step: Step | undefined, keyParts: Record<string, unknown> | undefined, diffId: string, key?: string) => {
      if (step && keyParts)
        this.opts.onLayerKey?.({
          variant: v.name,
          platform: formatPlatform(platform),
          step: v.steps.indexOf(step),
          keyParts,
          ...(key ? { key } : {}),
          diffId,
          start,
        });
    };
    // Layers taken from a registry record without being read for anything else: checked
    // against their recorded diffIDs meanwhile, all before a command runs on top of them and
    // before the variant's image exists. A failed one is distrusted and the variant built again.
    const checks: Promise<(() => void) | undefined>[] = [];
    const verified = async (): Promise<void> => {
      const wrong = (await Promise.all(checks)).filter((d) => d !== undefined);
      if (!wrong.length) return;
      for (const d of wrong) d();
      throw new RecordMismatch(
        `[${label}] registry cache: ${wrong.length} recorded layer(s) do not unpack to their recorded diffIDs; not using them, building the variant again`,
      );
    };
    const writeOne = async (
      createdBy: string,
      entries: Awaited<ReturnType<typeof stepEntries>>,
      step?: Step,
      runKey?: Record<string, unknown>,
      made?: Promise<ProducedLayer>,
      alias?: Record<string, unknown>,
      onProduced?: (p: ProducedLayer) => Promise<void>,
    ): Promise<Layer> => {
      const t = Date.now();
      const {
        layer: built,
        how,
        keyParts,
        key,
      } = made
        ? await made
        : step && step.kind !== 'run'
          ? await producer.fromStep(step, entries, undefined, fresh(step))
          : await producer.fromKey(runKey, () => producer.write(entries), fresh(step));
      journal(step, keyParts, built.diffId, key);
      if (alias && keyParts) await producer.recordAlias(alias, keyParts, built);
      await onProduced?.({ layer: built, how, ...(keyParts ? { keyParts } : {}) });
      const verb =
        how === 'built' ? '' : how === 'cached' ? (built.remote ? ' [cached: registry]' : ' [cached]') : ' [shared with another variant]';
      logger.info(
        `[${label}] layer ${built.descriptor.digest.slice(7, 19)}: ${createdBy.replace(/^oci-build /, '')}${verb} (${entries.length} entries, ${formatBytes(built.uncompressedSize)} -> ${formatBytes(built.descriptor.size)}) in ${formatMs(Date.now() - t)}`,
      );
      const layer = this.layerOf(built, createdBy);
      this.origins.set(layer, made && how === 'built' ? 'speculated' : how);
      if (how === 'cached' && built.remote && keyParts) {
        // Found in a record by its content key: checked like the layers taken keys first.
        const key = hashKey(keyParts);
        checks.push(this.checkDiffId(built, layer).then((ok) => (ok ? undefined : () => producer.distrustKey(key))));
      }
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
    const taken = (hit: CachedLayer, layer: Layer, distrust: () => void) => {
      if (hit.remote && files.lazy) checks.push(this.checkDiffId(hit, layer).then((ok) => (ok ? undefined : distrust)));
      return files.onCached(layer);
    };
    const below = async () => [...(await parentImage()).layers, ...(await Promise.all(written))].map((l) => l.diffId);
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
          // Listed files read the layer anyway: checked now (keys first: checked meanwhile, see taken).
          if (hit?.remote && !files.lazy && !(await this.checkDiffId(hit, this.layerOf(hit, createdBy)))) {
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
            await taken(hit, layer, () => producer.distrust(runKey));
            continue;
          }
          await verified();
          await files.list();
          const { owners } = files;
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
          work.chain.push(chainLayer(layer, `${v.name}: ${describeStep(step)}`));
          lastRun = { chainLength: work.chain.length, snapshot: result.snapshot };
          written.push(Promise.resolve(layer));
          files.fs.apply(result.entries.filter((e) => !whiteoutOf(e.path)));
          for (const d of result.deleted) files.fs.remove(d);
          if (result.idsChanged) files.owners = readIdFiles(work.dir);
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
            await taken(hit.layer, layer, () => producer.distrust(alias!));
            continue;
          }
        }
        // A step keyed by its probe (src/build/step-probe.ts): found by its chain key while the
        // files are not listed; made, it is recorded under that key too when records are written.
        const probe =
          cacheDir && probeable(step)
            ? await probeEntries(step, { context: bf.context, platform: formatPlatform(platform), note })
            : undefined;
        const chained = step as CopyStep | FileStep | DirStep;
        const at = (below: string[]) => ({ platform: formatPlatform(platform), below });
        if (probe && files.lazy && !fresh(step).fresh) {
          const hashes = await producer.contentHashes(probe);
          const key = producer.chainKey(chained, probe, (e) => hashes?.get(e.path), at(await below()));
          const hit = key ? await producer.byChainKey(key) : undefined;
          if (hit) {
            const layer = this.layerOf(hit, createdBy);
            this.origins.set(layer, 'cached');
            logger.info(
              `[${label}] layer ${hit.descriptor.digest.slice(7, 19)}: ${createdBy.replace(/^oci-build /, '')} [cached${hit.remote ? ': registry' : ''}, by chain key] (${probe.length} entries, ${formatBytes(hit.uncompressedSize)} -> ${formatBytes(hit.descriptor.size)})`,
            );
            written.push(Promise.resolve(layer));
            await taken(hit, layer, () => producer.distrustKey(key!));
            continue;
          }
        }
        await files.list();
        const { fs, owners } = files;
        const resolve = async (o: string): Promise<Owner> => resolveOwnerIn(o, owners, v.name);
        const entries = probe
          ? await settleEntries(step, probe, fs, resolve)
          : await stepEntries(step, {
              context: bf.context,
              platform: formatPlatform(platform),
              fs,
              resolveOwner: resolve,
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
        // The chain key needs the diffIDs below: the layers written before this one, still compressing maybe.
        const before = [...written];
        const recordChain =
          probe && this.opts.chainKeys
            ? async (made: ProducedLayer) => {
                if (!made.keyParts) return;
                const contents = contentsOf(made.keyParts);
                const diffIds = [...(await parentImage()).layers, ...(await Promise.all(before))].map((l) => l.diffId);
                const key = producer.chainKey(chained, probe, (e) => contents.get(e.path), at(diffIds));
                if (key) await producer.recordChainKey(key, made.layer);
              }
            : undefined;
        const p = writeOne(createdBy, entries, step, undefined, made, alias, recordChain).catch((err: unknown) => {
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
      await verified();
      filesKnown({ ...files.snapshot(), baseAnnotations });
    } catch (err) {
      speculation?.abort.abort();
      await Promise.allSettled(written);
      if (work) await this.rootfsCache().discard(work);
      throw current ? ioError(err, current) : err;
    }
    const newLayers = await Promise.all(written);
    await verified().catch(async (err: unknown) => {
      if (work) await this.rootfsCache().discard(work);
      throw err;
    });
    const { layers: parentLayers, config: parentConfig } = await parentImage();
    if (work) {
      // Kept for the variants that start from this one or copy from it, as the final chain's rootfs.
      if (this.rootfsWanted.has(v.name)) {
        await this.rootfsCache().apply(
          work,
          newLayers.slice(work.chain.length - parentLayers.length).map((l) => chainLayer(l, `${v.name}: ${l.createdBy}`)),
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
        // A layer of this build whose blob stays in the registry: a record's.
        ...(index >= parentLayers.length && l.origin ? { fromRegistry: true } : {}),
      })),
    );
    await this.store.putBytes(image.configDescriptor.digest, image.configBytes);
    await this.store.putBytes(image.manifestDescriptor.digest, image.manifestBytes);
    logger.info(
      `[${label}] built ${image.manifestDescriptor.digest} (${image.layers.length} layers, ${newLayers.length} new, ${formatBytes(image.totalSize)}) in ${formatMs(Date.now() - t0)}`,
    );
    return { image, ...files.snapshot(), baseAnnotations };
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

  /** Record layers checked against their diffIDs, by digest (once per build). */
  private readonly diffIdChecks = new Map<string, Promise<boolean>>();

  /**
   * Whether a variant on `base` is built keys first (StepFiles): when the base is not scanned on
   * this machine yet and the registry's records have entries to find.
   */
  private async buildsFromRecords(base: BaseImage): Promise<boolean> {
    const remote = this.opts.remoteLayers;
    if (!this.opts.cacheDir || !remote?.count || !base.digest || !base.repo || this.scanner.alreadyScanned(base.digest)) return false;
    return (await remote.count()) > 0;
  }

  /** The record's layer unpacks to its recorded diffID (read once; the bytes land in the store for later readers). */
  private checkDiffId(hit: CachedLayer, layer: Layer): Promise<boolean> {
    let p = this.diffIdChecks.get(hit.descriptor.digest);
    if (!p) {
      const check = this.opts.recordLayerCheck ?? hasDiffId;
      p = check(hit.diffId, () => layer.open()).catch(() => false);
      this.diffIdChecks.set(hit.descriptor.digest, p);
    }
    return p;
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

  /** The base's layers, fetched from its repository when first opened. */
  private baseLayers(base: BaseImage): Layer[] {
    return base.layers.map((d, i) => {
      const diffId = base.config.rootfs.diff_ids[i]!;
      return base.repo ? this.fetcher.layer(d, diffId, base.repo, 'base') : this.store.layer(d, diffId, 'base');
    });
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
    const w = work ?? (await cache.checkout(chainOf(parentLayers), { exclusive }));
    const all = chainOf([...parentLayers, ...own]);
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
    return this.rootfsCache().snapshot(chainOf(s.image.layers));
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
