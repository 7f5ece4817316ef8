import type { CopyStep, DirStep, FileStep } from '../config/model.js';
import type { BlobStore } from '../layer/blobstore.js';
import type { BuiltLayer, LayerEntry, LayerWriteOptions } from '../layer/types.js';
import { writeLayer } from '../layer/writer.js';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  type CachedLayer,
  compressionKeyPart,
  type UsedLayer,
  type FileHasher,
  hashKey,
  type LayerCache,
  stepKeyParts,
  type KeyEntry,
} from '../cache/layer-cache.js';
import { statSig, unchangedSince, type StatSig } from '../cache/file-hasher.js';
import { lstatSync, type BigIntStats } from 'node:fs';
import type { Digest } from '../oci/digest.js';
import type { LayerCompression } from '../layer/compress.js';
import { noProgress, type Progress } from '../progress/progress.js';
import { getAlias, putAlias } from '../cache/copy-alias.js';
import { chainKey } from './chain-key.js';

/** Files up to this size whose hash is not known are read into memory once, for the key and the write. */
export const SMALL_FILE_BYTES = 1 << 20;
/** ...as long as a layer's such files come to no more than this. */
export const BUFFER_BYTES = 32 << 20;

interface Sources {
  /** The entries, with contentHash where it is known (buffered files also get open() from memory). */
  entries: (LayerEntry & KeyEntry)[];
  /** Entries (indexes) whose content is only learned by the write. */
  unknown: Set<number>;
  /** Source files known by stat, checked again after the write. */
  byStat: { path: string; sig: StatSig }[];
  /** Stat of each unknown host file before the write (to record its streamed hash). */
  openedStat: Map<number, StatSig>;
}

let onePassNonce = 0;

/** Sorts a layer's file entries by how their content becomes known (see fromStep). */
async function identifySources(entries: readonly LayerEntry[], hasher: FileHasher): Promise<Sources> {
  // A copy of the list, not of every entry: only those whose hash becomes known are replaced.
  const out: Sources = { entries: entries.slice(), unknown: new Set(), byStat: [], openedStat: new Map() };
  const pending: number[] = [];
  for (const [i, e] of entries.entries()) {
    if (e.type !== 'file') continue;
    const { known, sig } = e.hostPath ? await hasher.probe(e.hostPath, e.hostStat) : {};
    if (known && known.size === e.size) {
      out.entries[i] = { ...out.entries[i]!, contentHash: known.hash };
      out.byStat.push({ path: e.hostPath!, sig: known.sig });
    } else {
      pending.push(i);
      if (sig) out.openedStat.set(i, sig);
    }
  }
  const small =
    pending.every((i) => (entries[i]!.size ?? 0) <= SMALL_FILE_BYTES) &&
    pending.reduce((n, i) => n + (entries[i]!.size ?? 0), 0) <= BUFFER_BYTES;
  if (small) {
    // Read each once (a few at a time); the layer is written from these bytes.
    await pooled(pending, 8, async (i) => {
      const e = entries[i]!;
      const { bytes, hash } = e.hostPath ? await hasher.readOnce(e.hostPath) : await readStream(e);
      // Written from these bytes, not read again (readPath would).
      const { readPath: _, ...entry } = out.entries[i]!;
      out.entries[i] = { ...entry, contentHash: hash, size: bytes.length, open: () => Readable.from([bytes]) };
    });
    return out;
  }
  out.unknown = new Set(pending);
  return out;
}

function lstatOrUndefined(path: string): BigIntStats | undefined {
  try {
    return lstatSync(path, { bigint: true });
  } catch {
    return undefined;
  }
}

/** fn over items, `width` at a time. */
async function pooled<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

async function readStream(e: LayerEntry): Promise<{ bytes: Buffer; hash: Digest }> {
  const parts: Buffer[] = [];
  for await (const c of e.open!()) parts.push(c as Buffer);
  const bytes = Buffer.concat(parts);
  return { bytes, hash: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

/**
 * The one-pass sharing key: the step and each entry's fields that shape the layer, with where
 * its unknown content comes from (`source`). One streaming hash, as shapeOf: never persisted.
 */
function onePassIdentity(
  step: CopyStep | FileStep | DirStep,
  entries: readonly LayerEntry[],
  keyOpts: { mtime: Date; compression: LayerCompression },
  source: (e: LayerEntry, i: number) => string | null,
): string {
  const h = createHash('sha256').update(`one-pass\n${hashKey(stepKeyParts(step, [], keyOpts))}\n`);
  for (const [i, e] of entries.entries()) {
    // JSON strings: a name with a newline in it cannot pass for two entries.
    h.update(
      `${JSON.stringify(e.path)}\0${e.type}\0${e.mode}\0${e.uid}\0${e.gid}\0${e.size ?? ''}\0${JSON.stringify(e.linkname ?? '')}\0${source(e, i) ?? ''}\n`,
    );
  }
  return h.digest('hex');
}

/**
 * A key of a layer's entries and step without file contents, for layers with files too big to
 * buffer: when a registry record has it, hashing those files first is likely to find the layer.
 * Only a hint (the real key decides), so it is one streaming hash in the entries' own order.
 */
function shapeOf(
  step: CopyStep | FileStep | DirStep,
  entries: readonly LayerEntry[],
  keyOpts: { mtime: Date; compression: LayerCompression },
): string | undefined {
  let total = 0;
  let big = false;
  for (const e of entries) {
    if (e.type !== 'file') continue;
    total += e.size ?? 0;
    if ((e.size ?? 0) > SMALL_FILE_BYTES) big = true;
  }
  if (!big && total <= BUFFER_BYTES) return undefined;
  const h = createHash('sha256').update(`shape\n${hashKey(stepKeyParts(step, [], keyOpts))}\n`);
  for (const e of entries) h.update(`${e.path}\0${e.type}\0${e.mode}\0${e.uid}\0${e.gid}\0${e.size ?? ''}\0${e.linkname ?? ''}\n`);
  return h.digest('hex');
}

/** How a write may be steered: aborted, or held to fewer cores (a speculative layer). */
export type WriteControl = Pick<LayerWriteOptions, 'signal' | 'parallel'>;

export interface ProducedLayer {
  /** With `remote` set, the blob is in that repository (a registry record's hit), not in the store. */
  layer: CachedLayer;
  /** built: compressed now; cached: found in the layer cache; shared: built by another variant of this run. */
  how: 'built' | 'cached' | 'shared';
  /** What the layer was keyed by (hash it with hashKey for the key), when there is a cache: for `plan --explain`'s "why". */
  keyParts?: Record<string, unknown>;
  /** hashKey(keyParts), as the lookup computed it (a key of 100,000 entries is not hashed twice). */
  key?: string;
}

/** How a layer is looked up: `fresh` ignores the cache (--rebuild-from) but still records the result. */
export interface CacheControl {
  fresh?: boolean;
}

/**
 * The one place layers are made. With a cache, a layer is looked up by everything that
 * determines its bytes before any compression; a layer several variants or platforms share
 * is compressed once per run (the others wait for it). Without one, every layer is written.
 */
export class LayerProducer {
  readonly stats = { built: 0, cached: 0, shared: 0 };
  private readonly inflight = new Map<string, Promise<ProducedLayer>>();

  constructor(
    private readonly store: BlobStore,
    private readonly cache: LayerCache | undefined,
    private readonly hasher: FileHasher | undefined,
    private readonly opts: { mtime: Date; compression: LayerCompression; progress?: Progress },
  ) {}

  /**
   * A copy or file step's layer, keyed by the step, the entries and every file's content; each
   * source file is read once (by the writer) or not at all (on a hit):
   * - a file whose hash is known by its stat (an earlier build, or earlier in this one) is not
   *   read for the key; after the write its stat must be unchanged, or the build fails;
   * - when the other files are small (see SMALL_FILE_BYTES, BUFFER_BYTES) they are read into
   *   memory once, hashed, and written from those bytes;
   * - otherwise (a big file not seen before) the key cannot be known before reading, so the
   *   layer is written at once, hashing each file as it streams into the tar, and recorded
   *   under the key those hashes give: the next build with unchanged files hits it by stat.
   */
  async fromStep(
    step: CopyStep | FileStep | DirStep,
    entries: LayerEntry[],
    control?: WriteControl,
    cc: CacheControl = {},
  ): Promise<ProducedLayer> {
    if (!this.cache || !this.hasher) return { layer: await this.write(entries, control), how: 'built' };
    const hasher = this.hasher;
    const keyOpts = { mtime: this.opts.mtime, compression: this.opts.compression };
    let sources = await identifySources(entries, hasher);
    const shape = shapeOf(step, entries, keyOpts);
    if (sources.unknown.size > 0 && shape && (await this.cache.remote?.hasShape(shape))) {
      // The registry's record has a layer of exactly these entries: read the big files for
      // their hashes (much cheaper than compressing them) and look the key up before writing.
      await pooled([...sources.unknown], 8, async (i) => {
        const p = entries[i]!.hostPath;
        if (p) await hasher.hash(p);
      });
      sources = await identifySources(entries, hasher);
    }
    const checkUnchanged = async (): Promise<void> => {
      for (const { path, sig } of sources.byStat) {
        if (!(await unchangedSince(path, sig)))
          throw new Error(
            `${path} changed during the build (it was known by its size, times and inode, which moved while the layer was written); build again`,
          );
      }
    };
    if (sources.unknown.size === 0) {
      const keyParts = stepKeyParts(step, sources.entries, keyOpts);
      return this.byKey(
        hashKey(keyParts),
        async () => {
          const layer = await this.write(sources.entries, control);
          await checkUnchanged();
          return layer;
        },
        keyParts,
        cc,
        shape,
      );
    }
    // One pass. Variants or platforms that copy the same unseen files share one write, by a
    // key of the files' identities (never persisted: it says nothing about content).
    // An unknown entry with no host file (copied from another variant) is never shared.
    const source = (e: LayerEntry, i: number): string | null => {
      if (!sources.unknown.has(i)) return null;
      const sig = sources.openedStat.get(i);
      return e.hostPath && sig ? `${e.hostPath}|${sig}` : `stream-${++onePassNonce}`;
    };
    const identity = `${cc.fresh ? 'fresh:' : ''}${onePassIdentity(step, sources.entries, keyOpts, source)}`;
    return this.once(identity, async () => {
      const hashes = new Map<number, Digest>();
      // Each file's hash is learned (for later builds, by stat) as soon as it has streamed.
      // The wrapped entries live only as long as the write (a function's result, no variable).
      const streamed = () =>
        sources.entries.map((e, i) => {
          if (!sources.unknown.has(i)) return e;
          const before = sources.openedStat.get(i);
          // One stat after the read serves both the torn-file check and the hash's record.
          let after: BigIntStats | undefined;
          const changedSince =
            e.hostPath && before
              ? () => {
                  after = lstatOrUndefined(e.hostPath!);
                  return after && statSig(after) === before ? undefined : e.changedSince?.();
                }
              : e.changedSince;
          return {
            ...e,
            ...(changedSince ? { changedSince } : {}),
            onContentHash: (h: Digest, n: number) => {
              hashes.set(i, h);
              if (e.hostPath && before) hasher.learnStreamed(e.hostPath, h, before, n, after);
            },
          };
        });
      const layer: BuiltLayer = await this.write(streamed(), control);
      await checkUnchanged();
      for (const [i, h] of hashes) sources.entries[i] = { ...sources.entries[i]!, contentHash: h };
      hashes.clear();
      const keyParts = stepKeyParts(step, sources.entries, keyOpts);
      const key = hashKey(keyParts);
      await this.cache!.put(key, layer, shape);
      return { layer, how: 'built', keyParts, key };
    });
  }

  /** A layer keyed by the caller (a run: step's parent chain, command and environment). */
  async fromKey(
    parts: Record<string, unknown> | undefined,
    make: () => Promise<BuiltLayer>,
    cc: CacheControl = {},
  ): Promise<ProducedLayer> {
    if (!this.cache || !parts) return { layer: await make(), how: 'built' };
    const keyParts = this.runKeyParts(parts);
    return this.byKey(hashKey(keyParts), make, keyParts, cc);
  }

  /** Looks a key up without making anything (a run: step skips its command on a hit). */
  async lookup(parts: Record<string, unknown> | undefined): Promise<CachedLayer | undefined> {
    if (!this.cache || !parts) return undefined;
    const hit = await this.cache.get(this.runKey(parts));
    if (hit) this.stats.cached++;
    return hit;
  }

  /**
   * A copy-from layer by its alias (src/cache/copy-alias.ts): found without the source's files,
   * or undefined. On disk the alias names the content key; a registry record names the layer
   * under the alias itself (then the alias's parts are what the layer was keyed by).
   */
  async byAlias(parts: Record<string, unknown>): Promise<ProducedLayer | undefined> {
    if (!this.cache) return undefined;
    const alias = this.runKey(parts);
    const found = await getAlias(this.cache, alias);
    if (found) {
      this.stats.cached++;
      return { layer: found.layer, how: 'cached', keyParts: found.parts };
    }
    const hit = await this.cache.get(alias);
    if (!hit) return undefined;
    this.stats.cached++;
    return { layer: hit, how: 'cached', keyParts: this.runKeyParts(parts) };
  }

  /** Records the alias `parts` for `layer`, keyed by `keyParts` (its content key's parts). */
  async recordAlias(parts: Record<string, unknown>, keyParts: Record<string, unknown>, layer: CachedLayer): Promise<void> {
    if (!this.cache) return;
    await putAlias(this.cache, this.runKey(parts), keyParts);
    await this.cache.alias(this.runKey(parts), layer);
  }

  /** A layer by its chain key (src/build/chain-key.ts), or undefined. */
  async byChainKey(key: string): Promise<CachedLayer | undefined> {
    if (!this.cache) return undefined;
    const hit = await this.cache.get(key);
    if (hit) this.stats.cached++;
    return hit;
  }

  /** Records `key` (a chain key) as another key of `layer`. */
  async recordChainKey(key: string, layer: CachedLayer): Promise<void> {
    await this.cache?.alias(key, layer);
  }

  /** A copy, file or dir step's chain key (src/build/chain-key.ts) with this build's compression and timestamp. */
  chainKey(
    step: CopyStep | FileStep | DirStep,
    probe: readonly LayerEntry[],
    contentOf: (e: LayerEntry) => Digest | undefined,
    at: { platform: string; below: readonly string[] },
  ): string | undefined {
    return chainKey(step, probe, contentOf, at, { mtime: this.opts.mtime, compression: this.opts.compression });
  }

  /** A registry record's layer under `key` (a chain or content key) was not what the record says: not used again in this build. */
  distrustKey(key: string): void {
    if (!this.cache) return;
    this.cache.distrust(key);
    // A variant built again must not be handed the same layer as 'shared'.
    this.inflight.delete(key);
    this.stats.cached--;
  }

  /** Content hashes of the entries' host files (read unless known by stat), by image path; undefined without a cache. */
  async contentHashes(entries: readonly LayerEntry[]): Promise<Map<string, Digest> | undefined> {
    const hasher = this.hasher;
    if (!hasher) return undefined;
    const out = new Map<string, Digest>();
    const files = entries.filter((e) => e.type === 'file' && e.hostPath);
    await pooled(files, 8, async (e) => {
      out.set(e.path, await hasher.hash(e.hostPath!));
    });
    return out;
  }

  /** A registry record's layer for this run: key was not what the record says (see LayerCache.distrust). */
  distrust(parts: Record<string, unknown>): void {
    if (!this.cache) return;
    this.cache.distrust(this.runKey(parts));
    this.stats.cached--;
  }

  async write(entries: LayerEntry[], control: WriteControl = {}): Promise<BuiltLayer> {
    // Progress counts tar bytes against the files' sizes (headers make it end a little over).
    const files = entries.reduce((n, e) => n + (e.type === 'file' ? (e.size ?? 0) : 0), 0);
    // Quiet: the variant's log has a line for each layer already.
    const task = (this.opts.progress ?? noProgress).task(`compressing a layer of ${entries.length} entries`, files, { quiet: true });
    let layer: BuiltLayer;
    try {
      layer = await writeLayer(entries, this.store, {
        mtime: this.opts.mtime,
        compression: this.opts.compression,
        ...control,
        onBytes: (n) => task.add(n),
      });
    } catch (err) {
      task.fail();
      throw err;
    }
    task.done();
    this.stats.built++;
    return layer;
  }

  private runKey(parts: Record<string, unknown>): string {
    return hashKey(this.runKeyParts(parts));
  }

  /** A run: step's key parts as hashed: the caller's, the compression and the timestamp. */
  runKeyParts(parts: Record<string, unknown>): Record<string, unknown> {
    return { ...parts, ...compressionKeyPart(this.opts.compression), mtime: this.opts.mtime.getTime() / 1000 };
  }

  /** Keys this build found or recorded, with their layers (for the registry's record). */
  usedLayers(): ReadonlyMap<string, UsedLayer> {
    return this.cache?.used ?? new Map();
  }

  /** Persists what the build learned about source files (their hashes, by stat). */
  async save(): Promise<void> {
    await this.hasher?.save();
  }

  /**
   * Makes a layer once per run for every caller with the same key or identity: the first one
   * makes it, the others wait and get it as 'shared'. A failure is not remembered.
   */
  private async once(id: string, make: () => Promise<ProducedLayer>): Promise<ProducedLayer> {
    const running = this.inflight.get(id);
    if (running) {
      this.stats.shared++;
      const first = await running;
      return {
        layer: first.layer,
        how: 'shared',
        ...(first.keyParts ? { keyParts: first.keyParts } : {}),
        ...(first.key ? { key: first.key } : {}),
      };
    }
    const p = make();
    this.inflight.set(id, p);
    try {
      const made = await p;
      if (made.how === 'cached') this.stats.cached++;
      return made;
    } catch (err) {
      this.inflight.delete(id);
      throw err;
    }
  }

  /** The layer recorded under `key`, or made and recorded. */
  private byKey(
    key: string,
    make: () => Promise<BuiltLayer>,
    keyParts: Record<string, unknown>,
    cc: CacheControl,
    shape?: string,
  ): Promise<ProducedLayer> {
    // A fresh layer is not shared with a caller that may take it from the cache.
    return this.once(cc.fresh ? `fresh:${key}` : key, async () => {
      const hit = cc.fresh ? undefined : await this.cache!.get(key, shape);
      if (hit) return { layer: hit, how: 'cached', keyParts, key };
      const built = await make();
      await this.cache!.put(key, built, shape);
      return { layer: built, how: 'built', keyParts, key };
    });
  }
}
