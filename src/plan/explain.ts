import { resolve } from 'node:path';
import type { CopyStep, RunStep, Step, VariantSpec } from '../config/model.js';
import type { ImageConfig, Platform } from '../oci/types.js';
import { formatPlatform } from '../oci/platform.js';
import { BlobStore } from '../layer/blobstore.js';
import type { LayerEntry } from '../layer/types.js';
import { RegistryClient } from '../registry/client.js';
import { credentialsFrom } from '../registry/credentials.js';
import { BlobFetcher } from '../image/fetch.js';
import { resolveOwner } from '../image/users.js';
import { resolveBase } from '../build/base.js';
import { BaseScanner, type OwnerFiles } from '../build/base-scan.js';
import { FsView } from '../build/fsview.js';
import { describeStep, stepEntries } from '../build/steps.js';
import { listLayer } from '../build/layer-listing.js';
import { runStepKeyParts } from '../build/run-key.js';
import { mountKeyParts } from '../build/run-mounts.js';
import { applySettings } from '../build/assemble.js';
import { compressionKeyPart, FileHasher, hashKey, LayerCache, stepKeyParts, type KeyEntry } from '../cache/layer-cache.js';
import { loadJournal, type JournalRecord, type JournalStep } from '../cache/key-journal.js';
import { explainCopyFrom } from './explain-copyfrom.js';
import { layerCompressionOf, plan, type PipelineInputs, type Plan } from './plan.js';
import { whyRebuilt, type RootBase, type Explained, type LayerExplanation, type VariantExplanation } from './explain-why.js';
import { specFor } from '../config/per-platform.js';

export type { Explained, LayerExplanation, VariantExplanation } from './explain-why.js';

/** A variant's simulated state after its steps: what a `from` child starts with. */
interface SimState {
  fs: FsView;
  owners: OwnerFiles;
  config: ImageConfig;
  /** diffIDs of every layer; undefined where the layer will be rebuilt (its diffID is not known before). */
  diffIds: (string | undefined)[];
  /** The first rebuilt layer (image index) and its step, for the reasons of what follows. */
  firstRebuilt?: { layer: number; label: string; unknown: boolean };
  /** The base image at the root of the from: chain (now and at the last build), and its layer count. */
  root: RootBase;
}

/**
 * `plan --explain`: for every layer of every variant, whether the build will take it from the
 * layer cache or rebuild it, and why, computed with the very keys the build uses. Nothing is
 * built or pushed: base manifests are resolved, base layers not yet in the cache directory are
 * downloaded to list their directories, source files are stat'ed and hashed.
 */
export async function explain(inputs: PipelineInputs): Promise<Explained> {
  const p = await plan(inputs);
  const dir = resolve(inputs.workDir);
  const store = new BlobStore(resolve(dir, 'blobs'));
  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: inputs.credentials, dockerConfigPath: inputs.dockerConfig ? undefined : null }),
  });
  const cacheOn = inputs.cache !== false;
  const sim = new Simulator(p, inputs, dir, store, client, cacheOn);
  try {
    const variants: VariantExplanation[] = [];
    for (const v of p.variants) for (const platform of p.platforms.get(v.name) ?? []) variants.push(await sim.variant(v, platform));
    return { buildFile: p.buildFile.file, cache: cacheOn ? dir : null, variants };
  } finally {
    await client.close();
  }
}

class Simulator {
  private readonly states = new Map<string, SimState>();
  private readonly cache: LayerCache | undefined;
  private readonly hasher: FileHasher;
  private readonly scanner: BaseScanner;
  /** Keys this run will build, so a second variant with the same layer gets it shared. */
  private readonly building = new Set<string>();
  private readonly mtime: Date;

  constructor(
    private readonly p: Plan,
    private readonly inputs: PipelineInputs,
    private readonly dir: string,
    private readonly store: BlobStore,
    private readonly client: RegistryClient,
    cacheOn: boolean,
  ) {
    this.cache = cacheOn ? new LayerCache(dir, store) : undefined;
    // Hashes are memoized for this run and never saved: explaining writes nothing to files.idx.
    this.hasher = new FileHasher(dir);
    this.scanner = new BaseScanner(new BlobFetcher(client, store), cacheOn ? dir : undefined);
    this.mtime = new Date((inputs.sourceDateEpoch ?? 0) * 1000);
  }

  async variant(variant: VariantSpec, platform: Platform): Promise<VariantExplanation> {
    const plat = formatPlatform(platform);
    const v = specFor(variant, plat);
    const journal = this.cache ? await loadJournal(this.dir, v.name, plat) : undefined;
    let st: SimState;
    let start: VariantExplanation['start'];
    if (v.from !== undefined) {
      const parent = this.states.get(`${v.from}|${plat}`)!;
      const pv = specFor(this.p.variants.find((x) => x.name === v.from)!, plat);
      st = {
        ...parent,
        fs: parent.fs.clone(),
        diffIds: [...parent.diffIds],
        config: { ...parent.config, config: applySettings(parent.config.config, pv) },
      };
      start = { from: v.from };
    } else {
      const base = await resolveBase(this.client, v.base ?? 'scratch', platform);
      // The base's layers are listed (downloaded the first time) only when copy or file steps need
      // its directories and users: run: steps are keyed by the manifest's layers and the config alone.
      const scan = this.needsBaseFiles(v) ? await this.scanner.scan(base) : { fs: new FsView(), owners: {} };
      start = {
        base: base.name,
        ...(base.digest ? { digest: base.digest } : {}),
        ...(this.p.baseOverridden.has(v.name) ? { overridden: this.p.baseOverridden.get(v.name)! } : {}),
      };
      st = {
        fs: scan.fs.clone(),
        owners: scan.owners,
        config: base.config,
        diffIds: [...base.config.rootfs.diff_ids],
        root: { start, ...(journal ? { previousStart: journal.start } : {}), layers: base.layers.length },
      };
    }
    const inherited = st.diffIds.length;
    const layers: LayerExplanation[] = [];
    const freshFrom = this.p.rebuildFrom.get(v.name);
    for (const [i, step] of v.steps.entries()) {
      const fresh = freshFrom !== undefined && i >= freshFrom;
      const e = await this.step(v, plat, step, i, st, fresh, journal, start);
      layers.push(e);
      if (e.decision !== 'cached' && !st.firstRebuilt)
        st.firstRebuilt = {
          layer: inherited + i,
          label: `${v.name} step ${i + 1} (${describeStep(step)})`,
          unknown: e.decision === 'unknown',
        };
    }
    this.states.set(`${v.name}|${plat}`, st);
    return {
      variant: v.name,
      platform: plat,
      stage: v.stage === true,
      start,
      ...(journal?.start ? { previousStart: journal.start } : {}),
      inheritedLayers: inherited,
      layers,
    };
  }

  /** A RUN's mount key parts as the build makes them; null while a bind's source variant has layers that are rebuilt. */
  /** Another variant's state as a step of a `plat` build sees it (a fixed-platform variant has one). */
  private stateOf(name: string | undefined, plat: string): SimState | undefined {
    const fixed = this.p.variants.find((x) => x.name === name)?.fixedPlatform;
    return this.states.get(`${name}|${fixed ?? plat}`);
  }

  private async bindKeyParts(step: RunStep, plat: string): Promise<unknown[] | null> {
    let known = true;
    const parts = await mountKeyParts(step, {
      context: this.p.buildFile.context,
      variantLayers: async (name) => {
        const ids = this.stateOf(name, plat)?.diffIds ?? [undefined];
        if (ids.includes(undefined)) known = false;
        return ids.filter((d): d is string => d !== undefined);
      },
    });
    return known ? parts : null;
  }

  private async step(
    v: VariantSpec,
    plat: string,
    step: Step,
    i: number,
    st: SimState,
    fresh: boolean,
    journal: JournalRecord | undefined,
    start: VariantExplanation['start'],
  ): Promise<LayerExplanation> {
    const at = { step: i + 1, layer: st.diffIds.length + 1, createdBy: describeStep(step) };
    const prev = journal?.steps[String(i)];
    let parts: Record<string, unknown> | undefined;
    let entries: LayerEntry[] | undefined;
    const hostPaths = new Map<string, string>();
    if (step.kind === 'run') {
      // RUN --mount: the options are the key's part, a bind's with its source (run-mounts.ts mountKeyParts).
      const mounts = step.mounts?.some((m) => m.type === 'bind') ? await this.bindKeyParts(step, plat) : step.mounts;
      if (!st.diffIds.includes(undefined) && mounts !== null)
        parts = {
          ...runStepKeyParts(step, st.diffIds as string[], plat, st.config, v, this.inputs.sourceDateEpoch, mounts),
          ...compressionKeyPart(layerCompressionOf(this.inputs)),
          mtime: this.mtime.getTime() / 1000,
        };
    } else if (step.kind === 'copy' && step.from !== undefined) {
      // Its entries are the other variant's files: the last build's when that variant is all cached.
      return await this.copyFrom(plat, step, st, fresh, prev, at);
    } else {
      try {
        entries = await stepEntries(step, {
          context: this.p.buildFile.context,
          platform: plat,
          fs: st.fs,
          resolveOwner: async (o) => resolveOwner(o, st.owners.passwd, st.owners.group),
        });
      } catch (err) {
        // An owner named by a user that a command which runs again creates (no earlier build to take /etc/passwd from).
        if (!st.firstRebuilt) throw err;
        st.diffIds.push(undefined);
        const reason = `its entries depend on what layer ${st.firstRebuilt.layer + 1}, ${st.firstRebuilt.label}, leaves (${(err as Error).message})`;
        return {
          ...at,
          decision: prev ? 'unknown' : 'rebuilt',
          reasons: prev ? [reason] : ['no earlier build of this step is recorded in the cache directory'],
          changes: [],
        };
      }
      // A WORKDIR that exists already makes no layer (the builder writes none).
      if (step.kind === 'dir' && entries.length === 0) return { ...at, decision: 'cached', reasons: [], changes: [] };
      const keyed: KeyEntry[] = [];
      for (const e of entries) {
        if (e.type === 'file' && e.hostPath) {
          hostPaths.set(e.path, e.hostPath);
          keyed.push({ ...e, contentHash: await this.hasher.hash(e.hostPath) });
        } else keyed.push(e);
      }
      parts = stepKeyParts(step, keyed, { mtime: this.mtime, compression: layerCompressionOf(this.inputs) });
    }
    const key = parts ? hashKey(parts) : undefined;
    const hit = key && this.cache && !fresh ? await this.cache.get(key) : undefined;
    // The file system after this step: from the step's entries, the cached layer, or (for a
    // command that will run again) the layer it made last time, as the best guess there is.
    if (entries) st.fs.apply(entries);
    else await this.applyLayer(st, hit ?? (prev ? await this.cache?.get(prev.key) : undefined));
    st.diffIds.push(hit?.diffId);
    if (hit) return { ...at, decision: 'cached', reasons: [], changes: [], key: key!, digest: hit.descriptor.digest };
    const shared = key !== undefined && this.building.has(key);
    if (key) this.building.add(key);
    const why = whyRebuilt({
      step,
      fresh,
      cacheOn: this.cache !== undefined,
      prev,
      parts,
      start,
      root: st.root,
      firstRebuilt: st.firstRebuilt,
      inherited: st.diffIds.length - 1 - i,
      hostPaths,
      context: this.p.buildFile.context,
    });
    return {
      ...at, // A command on top of a layer that is rebuilt starts from new bytes; on top of one that is
      // not knowable (copy: from:), so is its own fate.
      decision: parts ? (shared ? 'shared' : 'rebuilt') : step.kind === 'run' && !st.firstRebuilt?.unknown ? 'rebuilt' : 'unknown',
      ...why,
      ...(key ? { key } : {}),
    };
  }

  private async copyFrom(
    plat: string,
    step: CopyStep,
    st: SimState,
    fresh: boolean,
    prev: JournalStep | undefined,
    at: Pick<LayerExplanation, 'step' | 'layer' | 'createdBy'>,
  ): Promise<LayerExplanation> {
    const src = this.stateOf(step.from, plat);
    const prevLayer = prev && this.cache ? await this.cache.get(prev.key) : undefined;
    const { entries: _, ...options } = stepKeyParts(step, [], { mtime: this.mtime, compression: layerCompressionOf(this.inputs) });
    const r = explainCopyFrom({
      step,
      fresh,
      cacheOn: this.cache !== undefined,
      prev,
      options,
      source: {
        known: src !== undefined && !src.diffIds.includes(undefined),
        ...(src?.firstRebuilt ? { firstRebuilt: src.firstRebuilt } : {}),
      },
      ownRebuilt: st.diffIds.includes(undefined) ? st.firstRebuilt : undefined,
      prevCached: prevLayer !== undefined,
    });
    await this.applyLayer(st, prevLayer);
    const cached = r.decision === 'cached' && prev && prevLayer;
    st.diffIds.push(cached ? prevLayer.diffId : undefined);
    return { ...at, ...r, ...(cached ? { key: prev.key, digest: prevLayer.descriptor.digest } : {}) };
  }

  /** A variant, or one built from it, has steps whose layer entries depend on the base's files (not run: steps). */
  private needsBaseFiles(v: VariantSpec): boolean {
    const uses = (x: VariantSpec) =>
      x.steps.some((s) => s.kind === 'file' || s.kind === 'dir' || (s.kind === 'copy' && s.from === undefined));
    return uses(v) || this.p.variants.some((c) => c.from === v.name && this.needsBaseFiles(c));
  }

  private async applyLayer(
    st: SimState,
    layer: { descriptor: { digest: string; size: number; mediaType: string }; diffId: string } | undefined,
  ): Promise<void> {
    if (!layer) return;
    const listing = await listLayer(this.store.layer(layer.descriptor as never, layer.diffId as never, 'explain'));
    for (const d of listing.opaque) st.fs.clear(d);
    st.fs.apply(listing.entries as LayerEntry[]);
    for (const d of listing.deleted) st.fs.remove(d);
    if (listing.files.passwd !== undefined || listing.files.group !== undefined) st.owners = { ...st.owners, ...listing.files };
  }
}
