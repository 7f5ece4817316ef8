import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import type { RepositoryRef } from '../oci/layer.js';
import { BlobStore } from '../layer/blobstore.js';
import type { LayerEntry } from '../layer/types.js';
import { compressionProblem, type LayerCompression } from '../layer/compress.js';
import { isObject, writeAtomic } from './atomic.js';

/**
 * A content-addressed local cache of built layers.
 *
 * A layer is looked up by a key: the sha256 of a canonical JSON of everything that
 * determines its bytes (see {@link stepKeyParts}). A hit is a small JSON record
 * `{descriptor, diffId, uncompressedSize}` under `<dir>/layers/<key>.json`; the blob itself
 * lives in the BlobStore (by default `<dir>/blobs`, the pipeline's layout), and a record whose
 * blob is gone (or has another size) is a miss. Records are written atomically (temp file +
 * rename), so concurrent builds sharing a cache directory never see half a record.
 *
 * Source file contents go into keys as hashes; {@link FileHasher} keeps a per-file hash cache
 * (`<dir>/files.idx`) so an unchanged file (same size, mtime, ctime, inode, device, mode) is
 * not read again, and memoizes per build so no file is hashed twice in one build.
 */

/**
 * Bump when the layer writer's output changes for the same input (tar headers, entry order,
 * gzip framing): every key changes, so no layer written by an older writer is reused.
 */
export const LAYER_CACHE_FORMAT = 1;
const KEY_PREFIX = `oci-build/layer-cache/v${LAYER_CACHE_FORMAT}\n`;
const KEY_RE = /^[a-f0-9]{64}$/;

export interface CachedLayer {
  descriptor: Descriptor;
  diffId: Digest;
  uncompressedSize: number;
  /** Set when the layer was found in the registry's record: its blob is in this repository, not in the store. */
  remote?: RepositoryRef;
}

/** A second tier behind the records on disk: the records kept in the registry (registry-cache.ts). */
export interface RemoteLayers {
  /** The layer under `key`, once its blob is checked to be in the registry. */
  get(key: string): Promise<CachedLayer | undefined>;
  /** Some layer with these entries (contents left out) is recorded: worth hashing big files first. */
  hasShape(shape: string): Promise<boolean>;
  /** How many entries the records hold (0: nothing to find there). */
  count?(): Promise<number>;
}

/** A key this build looked up with success or recorded, and its layer (what a registry record names). */
export interface UsedLayer {
  descriptor: Descriptor;
  diffId: Digest;
  uncompressedSize: number;
  shape?: string;
}

interface LayerRecord extends CachedLayer {
  version: 1;
  key: string;
}

export class LayerCache {
  readonly store: BlobStore;
  /** Lookups in this process, for logs ("layer cache: 3 hits, 1 miss"). */
  readonly stats = { hits: 0, misses: 0, stale: 0, puts: 0, remoteHits: 0 };
  /** Keys of this build that have a layer, for the registry's record. */
  readonly used = new Map<string, UsedLayer>();

  /**
   * @param dir the cache directory (the pipeline's --cache-dir): records go to `dir/layers`.
   * @param store where the blobs are; default `dir/blobs`, which is where the pipeline keeps them.
   * @param remote consulted on a miss (the registry's records).
   */
  constructor(
    readonly dir: string,
    store?: BlobStore,
    readonly remote?: RemoteLayers,
  ) {
    this.store = store ?? new BlobStore(join(dir, 'blobs'));
  }

  /** The sha256 (hex) of a canonical JSON of `parts`: everything that determines the layer. */
  key(parts: unknown): string {
    return hashKey(parts);
  }

  recordPath(key: string): string {
    checkKey(key);
    return join(this.dir, 'layers', `${key}.json`);
  }

  /**
   * The layer recorded under `key`, or undefined: no record, an unreadable or foreign record,
   * or a record whose blob is missing from the store (or has another size); then the remote
   * tier's layer, if it has one. `shape` is remembered with a hit for the registry's record.
   */
  async get(key: string, shape?: string): Promise<CachedLayer | undefined> {
    const hit = (await this.getLocal(key)) ?? (await this.getRemote(key));
    if (hit) this.use(key, hit, shape);
    return hit;
  }

  /**
   * Records `key` as one more key of a layer this build has (a chain key or a copy-from alias):
   * on disk when the blob is in the store, and for the registry's record either way.
   */
  async alias(key: string, layer: CachedLayer): Promise<void> {
    checkKey(key);
    if (layer.remote) this.use(key, layer);
    else await this.put(key, layer);
  }

  /** A remote layer under `key` turned out not to be what its record says: never used again in this build. */
  distrust(key: string): void {
    this.distrusted.add(key);
    this.used.delete(key);
  }

  private readonly distrusted = new Set<string>();

  private async getRemote(key: string): Promise<CachedLayer | undefined> {
    if (this.distrusted.has(key)) return undefined;
    const hit = await this.remote?.get(key);
    if (hit) {
      this.stats.remoteHits++;
      this.stats.hits++;
      this.stats.misses--;
    }
    return hit;
  }

  private use(key: string, layer: CachedLayer, shape?: string): void {
    const { descriptor, diffId, uncompressedSize } = layer;
    const shaped = shape ?? this.used.get(key)?.shape;
    this.used.set(key, { descriptor, diffId, uncompressedSize, ...(shaped ? { shape: shaped } : {}) });
  }

  private async getLocal(key: string): Promise<CachedLayer | undefined> {
    let text: string;
    try {
      text = await readFile(this.recordPath(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      this.stats.misses++;
      return undefined;
    }
    const rec = parseRecord(text, key);
    const size = rec ? await this.store.has(rec.descriptor.digest) : undefined;
    if (!rec || size !== rec.descriptor.size) {
      // A bad record or a lost blob: a miss; put() will overwrite the record.
      this.stats.stale++;
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    return { descriptor: rec.descriptor, diffId: rec.diffId, uncompressedSize: rec.uncompressedSize };
  }

  /** Records a layer (whose blob is already in the store) under `key`, atomically. */
  async put(key: string, layer: CachedLayer, shape?: string): Promise<void> {
    const file = this.recordPath(key);
    const { descriptor, diffId, uncompressedSize } = layer;
    if (
      !isDigest(descriptor.digest) ||
      !Number.isSafeInteger(descriptor.size) ||
      descriptor.size < 0 ||
      typeof descriptor.mediaType !== 'string'
    ) {
      throw new Error(`layer cache: invalid descriptor ${JSON.stringify(descriptor)}`);
    }
    if (!isDigest(diffId)) throw new Error(`layer cache: invalid diffId ${String(diffId)}`);
    if (!Number.isSafeInteger(uncompressedSize) || uncompressedSize < 0)
      throw new Error(`layer cache: invalid uncompressedSize ${uncompressedSize}`);
    const rec: LayerRecord = {
      version: 1,
      key,
      descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size },
      diffId,
      uncompressedSize,
    };
    await writeAtomic(file, `${JSON.stringify(rec)}\n`);
    this.stats.puts++;
    this.use(key, rec, shape);
  }
}

function checkKey(key: string): void {
  if (!KEY_RE.test(key)) throw new Error(`layer cache: invalid key "${key}" (want 64 hex digits)`);
}

function parseRecord(text: string, key: string): LayerRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(v) || v.version !== 1 || v.key !== key) return undefined;
  const d = v.descriptor;
  if (!isObject(d) || typeof d.mediaType !== 'string' || typeof d.digest !== 'string' || !isDigest(d.digest)) return undefined;
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) return undefined;
  if (typeof v.diffId !== 'string' || !isDigest(v.diffId)) return undefined;
  if (typeof v.uncompressedSize !== 'number' || !Number.isSafeInteger(v.uncompressedSize) || v.uncompressedSize < 0) return undefined;
  return {
    version: 1,
    key,
    descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size },
    diffId: v.diffId,
    uncompressedSize: v.uncompressedSize,
  };
}

// ---------------------------------------------------------------------------------------------
// Keys

/**
 * JSON with object keys sorted (by UTF-16 code units), no whitespace, `undefined` object
 * members left out: equal values give equal text whatever order they were built in.
 * Dates become ISO strings and byte arrays `{"$bytes": hex}`; values JSON has no single
 * spelling for (NaN, Infinity, bigint, functions, symbols, Maps, Sets, class instances)
 * throw, so nothing is silently dropped from a key.
 */
export function canonicalJson(value: unknown): string {
  const parts: string[] = [];
  canon(
    value,
    () => '$',
    (t) => parts.push(t),
  );
  return parts.join('');
}

/** Where in the value an error is (built only for a message: a key may have 100,000 entries). */
type At = () => string;

/** Emits the canonical JSON of `v` in pieces (so a big key is hashed without one big string). */
function canon(v: unknown, at: At, emit: (text: string) => void): void {
  if (v === null) {
    emit('null');
    return;
  }
  switch (typeof v) {
    case 'string':
      emit(JSON.stringify(v));
      return;
    case 'boolean':
      emit(v ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`canonical JSON: ${at()} is ${v}`);
      emit(JSON.stringify(v));
      return;
    case 'object': {
      if (Array.isArray(v)) {
        emit('[');
        for (let i = 0; i < v.length; i++) {
          if (i > 0) emit(',');
          if (v[i] === undefined) throw new TypeError(`canonical JSON: ${at()}[${i}] is undefined`);
          canon(v[i], () => `${at()}[${i}]`, emit);
        }
        emit(']');
        return;
      }
      if (v instanceof Date) {
        emit(JSON.stringify(v.toISOString()));
        return;
      }
      if (v instanceof Uint8Array) {
        emit(`{"$bytes":${JSON.stringify(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex'))}}`);
        return;
      }
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError(
          `canonical JSON: ${at()} is a ${(v as object).constructor?.name ?? 'non-plain object'}; use plain objects and arrays`,
        );
      }
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      emit('{');
      for (const [n, k] of keys.entries()) {
        emit(`${n > 0 ? ',' : ''}${JSON.stringify(k)}:`);
        canon(obj[k], () => `${at()}.${k}`, emit);
      }
      emit('}');
      return;
    }
    default:
      throw new TypeError(`canonical JSON: ${at()} is a ${typeof v}`);
  }
}

/** The cache key of `parts`: sha256 (hex) of a format tag and their canonical JSON. */
export function hashKey(parts: unknown): string {
  const h = createHash('sha256').update(KEY_PREFIX);
  // Hashed in pieces of some 64 KiB: fewer calls than one per token, no string of the whole key.
  let pending = '';
  canon(
    parts,
    () => '$',
    (t) => {
      pending += t;
      if (pending.length >= 1 << 16) {
        h.update(pending);
        pending = '';
      }
    },
  );
  return h.update(pending).digest('hex');
}

/** The fields of a build step a key uses (structurally the config model's CopyStep / FileStep). */
export type KeyStep =
  | { kind: 'copy'; sources: readonly { pattern: string; isGlob: boolean }[]; to: string; mode?: number; owner?: string }
  | { kind: 'file'; path: string; content: string; mode?: number; owner?: string }
  | { kind: 'dir'; path: string; owner?: string };

/**
 * One entry of the layer as the step produced it: image path, type, mode, owner, and for
 * files size and content hash. Include every entry the layer will have, parent directories
 * too: that list is what the file system seen so far (FsView) decided, so the key needs no
 * prediction of it. Host-side fields (hostPath, mtimeMs, ino, ...) may be present and are
 * ignored: a layer does not depend on them (mtimes are the build's `mtime`).
 */
export interface KeyEntry {
  path: string;
  type: LayerEntry['type'];
  mode: number;
  uid: number;
  gid: number;
  /** Files: byte count. */
  size?: number;
  /** Symlinks and hardlinks. */
  linkname?: string;
  /** Files: sha256 of the content, "sha256:<hex>" (see FileHasher). */
  contentHash?: string;
  /** Extended attributes (files and directories); part of the key only when there are some. */
  xattrs?: Record<string, Buffer>;
}

export interface LayerKeyOptions {
  /** Every entry's modification time (SOURCE_DATE_EPOCH): a Date, or seconds since the epoch. */
  mtime: Date | number;
  /** How the layer is compressed. */
  compression: LayerCompression;
}

/**
 * The part of a key that says how the layer is compressed (the gzip shape is unchanged since
 * format 1, so existing caches keep hitting). The settings are checked by compressionProblem,
 * the one validator of compression settings.
 */
export function compressionKeyPart(compression: LayerCompression): Record<string, unknown> {
  const problem = compressionProblem(compression, {
    algorithm: 'layer key: compression',
    level: `layer key: ${compression.algorithm} level`,
  });
  if (problem) throw new Error(problem);
  return compression.algorithm === 'zstd'
    ? { compression: 'zstd', zstdLevel: compression.level }
    : { compression: 'gzip', gzipLevel: compression.level };
}

/**
 * What determines a step's layer, as a plain object (hash it with hashKey, or use
 * copyStepKey / fileStepKey). Left out on purpose: the step's position in the build file
 * (editing a comment must not rebuild), absolute host paths (checkouts move between
 * machines) and host stat data; the base or parent layers (a layer's bytes do not depend
 * on them except through which parent directories it creates, and those are in `entries`).
 */
export function stepKeyParts(step: KeyStep, entries: readonly KeyEntry[], opts: LayerKeyOptions): Record<string, unknown> {
  const compression = compressionKeyPart(opts.compression);
  const mtime = typeof opts.mtime === 'number' ? opts.mtime : opts.mtime.getTime() / 1000;
  if (!Number.isFinite(mtime)) throw new Error('layer key: invalid mtime');
  let stepPart: Record<string, unknown>;
  let fileStepHash: string | undefined;
  if (step.kind === 'copy') {
    stepPart = {
      kind: 'copy',
      sources: step.sources.map((s) => ({ pattern: s.pattern, glob: s.isGlob })),
      to: step.to,
      mode: step.mode ?? null,
      owner: step.owner ?? null,
    };
  } else if (step.kind === 'file') {
    fileStepHash = `sha256:${createHash('sha256').update(step.content, 'utf8').digest('hex')}`;
    stepPart = { kind: 'file', path: step.path, content: fileStepHash, mode: step.mode ?? null, owner: step.owner ?? null };
  } else if (step.kind === 'dir') {
    // A WORKDIR's layer is its entries (the directories missing below it) and nothing else.
    stepPart = { kind: 'dir', path: step.path, owner: step.owner ?? null };
  } else {
    throw new Error(`layer key: unsupported step kind ${String((step as { kind: unknown }).kind)}`);
  }
  const seen = new Set<string>();
  const list = entries.map((e) => {
    if (seen.has(e.path)) throw new Error(`layer key: duplicate path ${e.path}`);
    seen.add(e.path);
    const out: Record<string, unknown> = { path: e.path, type: e.type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid };
    if (e.type === 'file') {
      const hash = e.contentHash ?? (step.kind === 'file' && e.path === normalizePath(step.path) ? fileStepHash : undefined);
      if (!hash || !isDigest(hash)) throw new Error(`layer key: file ${e.path} has no content hash`);
      if (e.size === undefined || !Number.isSafeInteger(e.size) || e.size < 0) throw new Error(`layer key: file ${e.path} has no size`);
      out.size = e.size;
      out.content = hash;
    } else if (e.type === 'symlink' || e.type === 'hardlink') {
      out.linkname = e.linkname ?? '';
    }
    if (e.xattrs && Object.keys(e.xattrs).length) {
      out.xattrs = Object.fromEntries(
        Object.keys(e.xattrs)
          .sort()
          .map((k) => [k, e.xattrs![k]!.toString('hex')]),
      );
    }
    return out;
  });
  // The writer sorts entries itself: their order here does not change the layer.
  list.sort((a, b) => ((a.path as string) < (b.path as string) ? -1 : (a.path as string) > (b.path as string) ? 1 : 0));
  return {
    layer: { format: LAYER_CACHE_FORMAT, ...compression, mtime },
    step: stepPart,
    entries: list,
  };
}

/** The cache key of a copy step's layer: see stepKeyParts. */
export function copyStepKey(step: Extract<KeyStep, { kind: 'copy' }>, files: readonly KeyEntry[], opts: LayerKeyOptions): string {
  return hashKey(stepKeyParts(step, files, opts));
}

/** The cache key of a file step's layer (its content hash comes from the step). */
export function fileStepKey(step: Extract<KeyStep, { kind: 'file' }>, entries: readonly KeyEntry[], opts: LayerKeyOptions): string {
  return hashKey(stepKeyParts(step, entries, opts));
}

function normalizePath(p: string): string {
  return `/${p
    .split('/')
    .filter((s) => s && s !== '.')
    .join('/')}`;
}

export { FileHasher, type FileHasherOptions, type KnownFile } from './file-hasher.js';
