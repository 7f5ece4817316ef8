import { createHash } from 'node:crypto';
import { lstatSync, type BigIntStats } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Digest } from '../oci/digest.js';
import { openSource } from '../layer/source.js';
import { FileIndex, type IndexRecord, readLegacyRecords, removeLegacy, writeIndex } from './file-index.js';

/** Records by absolute path: a FileIndex, or the Map of an old files.json. */
interface Records {
  get(abs: string): IndexRecord | undefined;
  entries(): Iterable<[string, IndexRecord]>;
}

export interface FileHasherOptions {
  /** A file modified less than this long before it was hashed is not recorded (it may still be changing within the file system's timestamp granularity). Default 2000 ms. */
  racyWindowMs?: number;
  /** Records not used for this long are dropped on save. Default 30 days. */
  maxAgeMs?: number;
  now?: () => number;
}

/**
 * A file's stat as one string (size, mtime, ctime, inode, device, mode): what "unchanged" means.
 * Strings, not BigIntStats objects: a build of ten thousand files keeps one per file, and a
 * BigIntStats is some twenty heap objects.
 */
export type StatSig = string;

/** A record's use date is written back when older than this (pruning is by weeks). */
const USED_AT_REFRESH_MS = 24 * 3600 * 1000;

export function statSig(st: BigIntStats): StatSig {
  return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}:${st.dev}:${st.mode}`;
}

/**
 * What moved between a file's StatSig and a later stat of it (size, mtime, ctime, inode,
 * device), as words for a message; undefined when nothing did. A same-size rewrite in place
 * moves mtime and ctime. From the signature, not a BigIntStats: a walk of 100,000 files keeps
 * one per file until the layer is written.
 */
export function statChange(before: StatSig, after: BigIntStats | undefined): string | undefined {
  if (!after) return 'it was removed';
  const [size, mtimeNs, ctimeNs, ino, dev] = before.split(':');
  const moved = [
    size !== String(after.size) && `size ${size} -> ${after.size}`,
    mtimeNs !== String(after.mtimeNs) && 'mtime',
    ctimeNs !== String(after.ctimeNs) && 'ctime',
    (ino !== String(after.ino) || dev !== String(after.dev)) && 'inode (replaced by another file)',
  ].filter((m): m is string => typeof m === 'string');
  return moved.length ? `its ${moved.join(', ')} changed` : undefined;
}

/** A file's content hash known without reading it, and the stat it was known by. */
export interface KnownFile {
  hash: Digest;
  sig: StatSig;
  size: number;
}

/**
 * sha256 of source files, each read at most once per build, and not at all when its stat
 * (size, mtime, ctime, inode, device, mode) matches the record in `<dir>/files.idx` (see
 * src/cache/file-index.ts) from an earlier build. Call save() at the end of a build to persist
 * what was learned.
 */
export class FileHasher {
  readonly file: string;
  /** The records' file before files.idx: read when there is no index yet, removed once it is written. */
  readonly legacyFile: string;
  readonly stats = { unchanged: 0, hashed: 0, bytesHashed: 0 };
  private records?: Promise<Records>;
  /** The records came from a legacy files.json: the next save writes the index even with nothing new. */
  private migrating = false;
  private readonly memo = new Map<string, Promise<Digest>>();
  /** Hashes this build learned or found (sig and hex), by absolute path. */
  private readonly seen = new Map<string, { sig: StatSig; hex: string }>();
  private readonly learned = new Map<string, IndexRecord>();
  private readonly opts: Required<FileHasherOptions>;

  constructor(
    readonly dir: string,
    opts: FileHasherOptions = {},
  ) {
    this.file = join(dir, 'files.idx');
    this.legacyFile = join(dir, 'files.json');
    this.opts = { racyWindowMs: 2000, maxAgeMs: 30 * 24 * 3600 * 1000, now: Date.now, ...opts };
  }

  /** The content hash of a regular file ("sha256:<hex>"), reading it unless it is known. */
  hash(path: string): Promise<Digest> {
    const abs = absolute(path);
    let p = this.memo.get(abs);
    if (!p) {
      p = this.compute(abs);
      this.memo.set(abs, p);
      // A failure is not remembered: a later call tries again.
      p.catch(() => {
        if (this.memo.get(abs) === p) this.memo.delete(abs);
      });
    }
    return p;
  }

  /**
   * One lstat: the file's hash when it is known without reading it (learned earlier in this
   * build, or recorded by an earlier build for the stat the file has now), else that stat.
   */
  async probe(path: string, statNow?: StatSig): Promise<{ known?: KnownFile; sig?: StatSig; size?: number }> {
    const abs = absolute(path);
    const sig = statNow ?? regularFileSig(abs);
    if (sig === undefined) return {};
    const size = sigSize(sig);
    const mine = this.seen.get(abs);
    if (mine && mine.sig === sig) return { known: { hash: `sha256:${mine.hex}`, sig, size } };
    const rec = (await this.load()).get(abs);
    if (rec && rec.sig === sig) {
      this.stats.unchanged++;
      const now = this.opts.now();
      // Written back (files.idx rewritten) only when the record's use date is getting old:
      // a no-op rebuild of 100,000 files should not rewrite megabytes to move dates.
      if (now - rec.usedAt > USED_AT_REFRESH_MS) this.learned.set(abs, { ...rec, usedAt: now });
      this.seen.set(abs, rec);
      return { known: { hash: `sha256:${rec.hex}`, sig, size } };
    }
    return { sig, size };
  }

  /** Reads a (small) file once: its bytes and hash, learned for later builds when it held still. */
  async readOnce(path: string): Promise<{ bytes: Buffer; hash: Digest }> {
    const abs = absolute(path);
    const before = await lstat(abs, { bigint: true });
    if (!before.isFile()) throw new Error(`${abs} is not a regular file`);
    const bytes = await readFile(abs);
    const hash: Digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    this.learn(abs, hash, statSig(before), await lstat(abs, { bigint: true }), bytes.length);
    return { bytes, hash };
  }

  /**
   * Records a hash computed while the file streamed into a layer (`before`: its stat when it
   * was opened; `statAfter`: once read, when the caller took it). Kept only when the file did
   * not change while it was read.
   */
  learnStreamed(path: string, hash: Digest, before: StatSig, bytes: number, statAfter?: BigIntStats): void {
    const abs = absolute(path);
    let after = statAfter;
    try {
      after ??= lstatSync(abs, { bigint: true });
    } catch {
      return;
    }
    this.learn(abs, hash, before, after, bytes);
  }

  private async compute(abs: string): Promise<Digest> {
    const { known, sig, size } = await this.probe(abs);
    if (known) return known.hash;
    if (!sig || size === undefined) {
      await lstat(abs); // a missing file: its ENOENT
      throw new Error(`${abs} is not a regular file`);
    }
    const h = createHash('sha256');
    let bytes = 0;
    for await (const chunk of openSource(abs, size)) {
      h.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    const hash: Digest = `sha256:${h.digest('hex')}`;
    this.learn(abs, hash, sig, await lstat(abs, { bigint: true }), bytes);
    return hash;
  }

  private learn(abs: string, hash: Digest, before: StatSig, after: BigIntStats, bytes: number): void {
    this.stats.hashed++;
    this.stats.bytesHashed += bytes;
    const now = this.opts.now();
    const sig = statSig(after);
    const stable = sig === before && BigInt(bytes) === after.size;
    const hex = hash.slice('sha256:'.length);
    if (stable) this.seen.set(abs, { sig, hex });
    else this.seen.delete(abs);
    // Recorded only when the file did not change while being read and was not modified
    // just before: a same-size rewrite in the same timestamp tick (file system timestamps
    // are coarse) would leave size and mtime as recorded. A later write moves mtime off
    // an old value, so an old mtime is safe whatever ctime says (utimes sets ctime to now).
    if (stable && now - Number(after.mtimeNs / 1_000_000n) >= this.opts.racyWindowMs) {
      this.learned.set(abs, { sig, hex, usedAt: now });
    } else {
      this.learned.delete(abs);
    }
  }

  private load(): Promise<Records> {
    this.records ??= this.readRecords();
    return this.records;
  }

  /** The index, else an old files.json's records (migrated by the next save), else none. */
  private async readRecords(): Promise<Records> {
    const index = await FileIndex.read(this.file);
    if (index) return index;
    const legacy = await readLegacyRecords(this.legacyFile);
    if (legacy) this.migrating = true;
    return legacy ?? FileIndex.empty();
  }

  /** Writes files.idx: earlier records (also another build's, re-read now) plus this build's, minus old ones. */
  async save(): Promise<void> {
    if (this.learned.size === 0 && !this.migrating) return;
    const current = new Map((await this.readRecords()).entries());
    const now = this.opts.now();
    for (const [k, v] of this.learned) current.set(k, v);
    for (const [k, v] of current) if (now - v.usedAt > this.opts.maxAgeMs) current.delete(k);
    await writeIndex(this.file, current);
    if (this.migrating) await removeLegacy(this.legacyFile);
    this.migrating = false;
    this.learned.clear();
    this.records = Promise.resolve(current);
  }
}

/**
 * The path as path.resolve gives it, without its cost when it is already absolute and
 * normalized (the context walk's paths are; a no-op rebuild probes 100,000 of them).
 */
function absolute(path: string): string {
  const plain =
    path.charCodeAt(0) === 0x2f &&
    !path.includes('//') &&
    !path.includes('/./') &&
    !path.includes('/../') &&
    !path.endsWith('/') &&
    !path.endsWith('/.') &&
    !path.endsWith('/..');
  return plain ? path : resolve(path);
}

/** A regular file's StatSig (one synchronous lstat: microseconds on a cached inode), else undefined. */
function regularFileSig(abs: string): StatSig | undefined {
  try {
    const st = lstatSync(abs, { bigint: true });
    return st.isFile() ? statSig(st) : undefined;
  } catch {
    return undefined;
  }
}

function sigSize(sig: StatSig): number {
  return Number(sig.slice(0, sig.indexOf(':')));
}

/** The file still has the stat its hash was known by (checked after a layer read it). */
export async function unchangedSince(path: string, sig: StatSig): Promise<boolean> {
  try {
    return statSig(await lstat(path, { bigint: true })) === sig;
  } catch {
    return false;
  }
}
