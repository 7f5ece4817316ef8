import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { openSource } from '../layer/source.js';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { isDigest, type Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import { BlobStore } from '../layer/blobstore.js';
import type { LayerEntry } from '../layer/types.js';

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
 * (`<dir>/files.json`) so an unchanged file (same size, mtime, ctime, inode, device, mode) is
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
}

interface LayerRecord extends CachedLayer {
  version: 1;
  key: string;
}

export class LayerCache {
  readonly store: BlobStore;
  /** Lookups in this process, for logs ("layer cache: 3 hits, 1 miss"). */
  readonly stats = { hits: 0, misses: 0, stale: 0, puts: 0 };

  /**
   * @param dir the cache directory (the pipeline's --cache-dir): records go to `dir/layers`.
   * @param store where the blobs are; default `dir/blobs`, which is where the pipeline keeps them.
   */
  constructor(readonly dir: string, store?: BlobStore) {
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
   * or a record whose blob is missing from the store (or has another size).
   */
  async get(key: string): Promise<CachedLayer | undefined> {
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
  async put(key: string, layer: CachedLayer): Promise<void> {
    const file = this.recordPath(key);
    const { descriptor, diffId, uncompressedSize } = layer;
    if (!isDigest(descriptor.digest) || !Number.isSafeInteger(descriptor.size) || descriptor.size < 0 || typeof descriptor.mediaType !== 'string') {
      throw new Error(`layer cache: invalid descriptor ${JSON.stringify(descriptor)}`);
    }
    if (!isDigest(diffId)) throw new Error(`layer cache: invalid diffId ${String(diffId)}`);
    if (!Number.isSafeInteger(uncompressedSize) || uncompressedSize < 0) throw new Error(`layer cache: invalid uncompressedSize ${uncompressedSize}`);
    const rec: LayerRecord = {
      version: 1,
      key,
      descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size },
      diffId,
      uncompressedSize,
    };
    await writeAtomic(file, `${JSON.stringify(rec)}\n`);
    this.stats.puts++;
  }
}

function checkKey(key: string): void {
  if (!KEY_RE.test(key)) throw new Error(`layer cache: invalid key "${key}" (want 64 hex digits)`);
}

function parseRecord(text: string, key: string): LayerRecord | undefined {
  let v: unknown;
  try { v = JSON.parse(text); } catch { return undefined; }
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

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Writes a file through a temp file in the same directory and a rename. */
async function writeAtomic(file: string, data: string): Promise<void> {
  const dir = resolve(file, '..');
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
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
  return canon(value, '$');
}

function canon(v: unknown, at: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`canonical JSON: ${at} is ${v}`);
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) {
        return `[${v.map((x, i) => {
          if (x === undefined) throw new TypeError(`canonical JSON: ${at}[${i}] is undefined`);
          return canon(x, `${at}[${i}]`);
        }).join(',')}]`;
      }
      if (v instanceof Date) return JSON.stringify(v.toISOString());
      if (v instanceof Uint8Array) return `{"$bytes":${JSON.stringify(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex'))}}`;
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError(`canonical JSON: ${at} is a ${(v as object).constructor?.name ?? 'non-plain object'}; use plain objects and arrays`);
      }
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canon(obj[k], `${at}.${k}`)}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonical JSON: ${at} is a ${typeof v}`);
  }
}

/** The cache key of `parts`: sha256 (hex) of a format tag and their canonical JSON. */
export function hashKey(parts: unknown): string {
  return createHash('sha256').update(KEY_PREFIX).update(canonicalJson(parts)).digest('hex');
}

/** The fields of a build step a key uses (structurally the config model's CopyStep / FileStep). */
export type KeyStep =
  | { kind: 'copy'; sources: readonly { pattern: string; isGlob: boolean }[]; to: string; mode?: number; owner?: string }
  | { kind: 'file'; path: string; content: string; mode?: number; owner?: string };

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
  /** Files: sha256 of the content, "sha256:<hex>" (see FileHasher / hashEntries). */
  contentHash?: string;
}

export interface LayerKeyOptions {
  /** Every entry's modification time (SOURCE_DATE_EPOCH): a Date, or seconds since the epoch. */
  mtime: Date | number;
  /** With gzip (the default): 0-9. */
  gzipLevel?: number;
  /** Layer compression. */
  compression?: 'gzip' | 'zstd';
  /** With zstd: 1-19. */
  zstdLevel?: number;
}

/** The part of a key that says how the layer is compressed (the gzip shape is unchanged since format 1). */
export function compressionKeyPart(opts: Pick<LayerKeyOptions, 'gzipLevel' | 'compression' | 'zstdLevel'>): Record<string, unknown> {
  if (opts.compression === 'zstd') {
    const level = opts.zstdLevel;
    if (level === undefined || !Number.isInteger(level) || level < 1 || level > 19) throw new Error(`layer key: zstd level must be an integer 1-19, got ${level}`);
    return { compression: 'zstd', zstdLevel: level };
  }
  const level = opts.gzipLevel;
  if (level === undefined || !Number.isInteger(level) || level < 0 || level > 9) throw new Error(`layer key: gzip level must be an integer 0-9, got ${level}`);
  return { compression: 'gzip', gzipLevel: level };
}

/**
 * What determines a step's layer, as a plain object (hash it with hashKey, or use
 * copyStepKey / fileStepKey). Left out on purpose: the step's position in the build file
 * (editing a comment must not rebuild), absolute host paths (checkouts move between
 * machines) and host stat data; the base or parent layers (a layer's bytes do not depend
 * on them except through which parent directories it creates, and those are in `entries`).
 */
export function stepKeyParts(step: KeyStep, entries: readonly KeyEntry[], opts: LayerKeyOptions): Record<string, unknown> {
  const compression = compressionKeyPart(opts);
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
  return `/${p.split('/').filter((s) => s && s !== '.').join('/')}`;
}

// ---------------------------------------------------------------------------------------------
// Source file hashes

interface FileRecord {
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  dev: string;
  mode: number;
  hash: Digest;
  /** Last build that used it (ms since the epoch), for pruning. */
  usedAt: number;
}

export interface FileHasherOptions {
  /** A file modified less than this long before it was hashed is not recorded (it may still be changing within the file system's timestamp granularity). Default 2000 ms. */
  racyWindowMs?: number;
  /** Records not used for this long are dropped on save. Default 30 days. */
  maxAgeMs?: number;
  /** How many files are read at once by hashEntries. Default 8. */
  concurrency?: number;
  now?: () => number;
}

/**
 * sha256 of source files, each read at most once per build, and not at all when its stat
 * (size, mtime, ctime, inode, device, mode) matches the record in `<dir>/files.json` from an
 * earlier build. Call save() at the end of a build to persist what was learned.
 */
export class FileHasher {
  readonly file: string;
  readonly stats = { unchanged: 0, hashed: 0, bytesHashed: 0 };
  private records?: Promise<Map<string, FileRecord>>;
  private readonly memo = new Map<string, Promise<Digest>>();
  private readonly learned = new Map<string, FileRecord>();
  private readonly opts: Required<FileHasherOptions>;

  constructor(readonly dir: string, opts: FileHasherOptions = {}) {
    this.file = join(dir, 'files.json');
    this.opts = { racyWindowMs: 2000, maxAgeMs: 30 * 24 * 3600 * 1000, concurrency: 8, now: Date.now, ...opts };
  }

  /** The content hash of a regular file ("sha256:<hex>"). */
  hash(path: string): Promise<Digest> {
    const abs = resolve(path);
    let p = this.memo.get(abs);
    if (!p) {
      p = this.compute(abs);
      this.memo.set(abs, p);
      // A failure is not remembered: a later call tries again.
      p.catch(() => { if (this.memo.get(abs) === p) this.memo.delete(abs); });
    }
    return p;
  }

  /** True when every file's hash is known from an earlier build by its unchanged stat (no read needed). */
  async allKnown(paths: readonly string[]): Promise<boolean> {
    const records = await this.load();
    for (const p of paths) {
      const abs = resolve(p);
      const rec = records.get(abs);
      if (!rec) return false;
      try {
        if (!sameStat(rec, await lstat(abs, { bigint: true }))) return false;
      } catch {
        return false;
      }
    }
    return true;
  }

  private async compute(abs: string): Promise<Digest> {
    const st = await lstat(abs, { bigint: true });
    if (!st.isFile()) throw new Error(`${abs} is not a regular file`);
    const records = await this.load();
    const rec = records.get(abs);
    if (rec && sameStat(rec, st)) {
      this.stats.unchanged++;
      this.learned.set(abs, { ...rec, usedAt: this.opts.now() });
      return rec.hash;
    }
    const h = createHash('sha256');
    let bytes = 0;
    for await (const chunk of openSource(abs, Number(st.size))) {
      h.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    const hash: Digest = `sha256:${h.digest('hex')}`;
    this.stats.hashed++;
    this.stats.bytesHashed += bytes;
    const after = await lstat(abs, { bigint: true });
    const now = this.opts.now();
    const stable = after.size === st.size && after.mtimeNs === st.mtimeNs && after.ctimeNs === st.ctimeNs && after.ino === st.ino && BigInt(bytes) === st.size;
    // Recorded only when the file did not change while being read and was not modified
    // just before: a same-size rewrite in the same timestamp tick (file system timestamps
    // are coarse) would leave size and mtime as recorded. A later write moves mtime off
    // an old value, so an old mtime is safe whatever ctime says (utimes sets ctime to now).
    if (stable && now - Number(after.mtimeNs / 1_000_000n) >= this.opts.racyWindowMs) {
      this.learned.set(abs, { ...statFields(after), hash, usedAt: now });
    } else {
      this.learned.delete(abs);
    }
    return hash;
  }

  private load(): Promise<Map<string, FileRecord>> {
    this.records ??= readRecords(this.file);
    return this.records;
  }

  /** Writes files.json: earlier records (also another build's, re-read now) plus this build's, minus old ones. */
  async save(): Promise<void> {
    if (this.learned.size === 0) return;
    const current = await readRecords(this.file);
    const now = this.opts.now();
    for (const [k, v] of this.learned) current.set(k, v);
    const files: Record<string, FileRecord> = {};
    for (const [k, v] of [...current].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (now - v.usedAt <= this.opts.maxAgeMs) files[k] = v;
    }
    await writeAtomic(this.file, `${JSON.stringify({ version: 1, files })}\n`);
    this.records = Promise.resolve(current);
  }

  /**
   * Fills in contentHash of the file entries of a layer. `hostPathOf` names the source file
   * of an entry (copy steps); entries without one (file steps) are hashed from open().
   */
  async hashEntries<E extends KeyEntry & Pick<LayerEntry, 'open'>>(entries: readonly E[], hostPathOf: (e: E) => string | undefined = () => undefined): Promise<(E & KeyEntry)[]> {
    const out: (E & KeyEntry)[] = entries.map((e) => ({ ...e }));
    const jobs = out.map((e, i) => ({ e, i })).filter(({ e }) => e.type === 'file' && !e.contentHash);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const { e, i } = jobs[next++]!;
        const host = hostPathOf(entries[i]!);
        out[i] = { ...e, contentHash: host ? await this.hash(host) : await hashStream(e) };
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, jobs.length) }, worker));
    return out;
  }
}

async function hashStream(e: KeyEntry & Pick<LayerEntry, 'open'>): Promise<Digest> {
  if (!e.open) throw new Error(`layer key: file ${e.path} has neither a source path nor content`);
  const h = createHash('sha256');
  for await (const chunk of e.open()) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

function statFields(st: BigIntStats): Omit<FileRecord, 'hash' | 'usedAt'> {
  return { size: st.size.toString(), mtimeNs: st.mtimeNs.toString(), ctimeNs: st.ctimeNs.toString(), ino: st.ino.toString(), dev: st.dev.toString(), mode: Number(st.mode) };
}

function sameStat(rec: FileRecord, st: BigIntStats): boolean {
  const s = statFields(st);
  return rec.size === s.size && rec.mtimeNs === s.mtimeNs && rec.ctimeNs === s.ctimeNs && rec.ino === s.ino && rec.dev === s.dev && rec.mode === s.mode;
}

async function readRecords(file: string): Promise<Map<string, FileRecord>> {
  const out = new Map<string, FileRecord>();
  let v: unknown;
  try {
    v = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return out; // missing or unreadable: start over
  }
  if (!isObject(v) || v.version !== 1 || !isObject(v.files)) return out;
  for (const [k, r] of Object.entries(v.files)) {
    if (isObject(r) && typeof r.hash === 'string' && isDigest(r.hash) && typeof r.size === 'string' && typeof r.mtimeNs === 'string'
      && typeof r.ctimeNs === 'string' && typeof r.ino === 'string' && typeof r.dev === 'string' && typeof r.mode === 'number' && typeof r.usedAt === 'number') {
      out.set(k, r as unknown as FileRecord);
    }
  }
  return out;
}

/**
 * Wraps a source stream so the bytes the layer writer reads are checked against the hash
 * the key was made with: if the file changed between hashing and writing, the stream fails
 * (and the layer must not be recorded under that key).
 */
export function verifyContent(source: Readable, expected: string, what: string): Readable {
  const h = createHash('sha256');
  const check = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      h.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const got = `sha256:${h.digest('hex')}`;
      cb(got === expected ? null : new Error(`${what} changed during the build (content ${got}, hashed earlier as ${expected}); build again`));
    },
  });
  source.on('error', (err) => check.destroy(err));
  return source.pipe(check);
}
