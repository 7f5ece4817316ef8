import { Readable } from 'node:stream';
import { sha256, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import { formatRepository } from '../oci/reference.js';
import type { RepoRef } from '../registry/client.js';
import {
  DEFAULT_CACHE_TAG,
  MAX_RECORD_ENTRIES,
  readRecord,
  recordBytes,
  recordManifest,
  type CacheLocation,
  type CacheRegistryClient,
  type CacheRegistrySetting,
  type RecordEntry,
} from './registry-cache.js';

/**
 * Entries a written record keeps at most: this build's first, then the previous record's (other
 * platforms' or matrix jobs' layers), so the oldest fall out and it stays a few tens of KiB.
 */
export const MAX_WRITTEN_ENTRIES = 256;

/** What writing a record needs from the registry client. */
export interface CacheWriteClient extends CacheRegistryClient {
  blobExists(repo: RepoRef, digest: Digest): Promise<boolean>;
  uploadBlob(repo: RepoRef, digest: Digest, size: number, open: () => Readable): Promise<void>;
  putManifest(repo: RepoRef, reference: string, mediaType: string, bytes: Buffer): Promise<Digest>;
  mountBlob(target: RepoRef, digest: Digest, fromRepository: string): Promise<boolean>;
}

/** A pushed repository and the digests of the layers its images now have there. */
export interface PushedRepo {
  repo: RepoRef;
  layers: ReadonlySet<Digest>;
}

export interface WrittenRecord {
  at: CacheLocation;
  entries: number;
  /** Bytes uploaded for it (record and manifest; layers never). */
  bytes: number;
}

const sameRepo = (a: RepoRef, b: RepoRef) => a.registry === b.registry && a.repository === b.repository;

/**
 * Writes the records of a push: with `auto`, one per pushed repository naming the layers of this
 * build that are in it; with a repository, one there naming every such layer, each linked into it
 * by a cross-repository mount from where it was pushed (a layer that cannot be mounted, from
 * another registry say, is left out rather than uploaded: the record must cost kilobytes).
 * Layers not pushed (a stage's, a `--variant` left out) are not named: their blobs are not in
 * the registry, and uploading them is exactly the copy this cache avoids.
 */
export async function writeRecords(
  client: CacheWriteClient,
  setting: CacheRegistrySetting,
  used: ReadonlyMap<string, Omit<RecordEntry, 'key'>>,
  pushed: readonly PushedRepo[],
  readAtStart: (at: CacheLocation) => readonly RecordEntry[] | undefined = () => undefined,
): Promise<WrittenRecord[]> {
  if (setting.mode === 'off') return [];
  const entriesIn = (layers: ReadonlySet<Digest>) =>
    [...used].filter(([, e]) => layers.has(e.descriptor.digest)).map(([key, e]) => ({ key, ...e }));
  if (setting.mode === 'auto') {
    // One record per repository, each read-modify-written on its own: all at once.
    const writes = mergeRepos(pushed).map((p) => ({ repo: p.repo, entries: entriesIn(p.layers) }));
    return await Promise.all(
      writes
        .filter((w) => w.entries.length)
        .map((w) => writeRecord(client, { repo: w.repo, tag: DEFAULT_CACHE_TAG }, w.entries, readAtStart)),
    );
  }
  const at: CacheLocation = { repo: setting.repo, tag: setting.tag };
  const entries: RecordEntry[] = [];
  const linked = new Map<Digest, boolean>();
  for (const p of pushed) {
    for (const e of entriesIn(p.layers)) {
      const d = e.descriptor.digest;
      if (!linked.has(d)) linked.set(d, sameRepo(p.repo, at.repo) || (await link(client, at.repo, d, p.repo)));
      if (linked.get(d) && !entries.some((x) => x.key === e.key)) entries.push(e);
    }
  }
  return entries.length ? [await writeRecord(client, at, entries, readAtStart)] : [];
}

/** Makes `digest` (in `from`) a blob of `repo` without uploading it. */
async function link(client: CacheWriteClient, repo: RepoRef, digest: Digest, from: RepoRef): Promise<boolean> {
  if (await client.blobExists(repo, digest)) return true;
  if (from.registry !== repo.registry) return false;
  return await client.mountBlob(repo, digest, from.repository);
}

function mergeRepos(pushed: readonly PushedRepo[]): PushedRepo[] {
  const out = new Map<string, { repo: RepoRef; layers: Set<Digest> }>();
  for (const p of pushed) {
    const id = formatRepository(p.repo);
    const cur = out.get(id) ?? { repo: p.repo, layers: new Set<Digest>() };
    for (const d of p.layers) cur.layers.add(d);
    out.set(id, cur);
  }
  return [...out.values()];
}

/**
 * Writes this build's entries and what the record there already held. The registry refuses a
 * manifest naming a blob it no longer has (a layer deleted since): then the earlier entries
 * whose blobs are still there (one HEAD each), and at last this build's alone.
 */
async function writeRecord(
  client: CacheWriteClient,
  at: CacheLocation,
  all: RecordEntry[],
  readAtStart: (at: CacheLocation) => readonly RecordEntry[] | undefined,
): Promise<WrittenRecord> {
  // Sorted: an unchanged build writes the same record (no new blob, the same manifest).
  const mine = [...all].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).slice(0, MAX_RECORD_ENTRIES);
  // The record this build read at its start already says all of this (a rebuild with nothing
  // new): nothing to write, and no second read. Anything to add, and it is read again, since
  // another job may have written it since.
  const atStart = readAtStart(at);
  if (atStart && saysAll(atStart, mine)) return { at, entries: atStart.length, bytes: 0 };
  const previous = (await readRecord(client, at).catch(() => undefined)) ?? [];
  const keys = new Set(mine.map((e) => e.key));
  const older = previous.filter((e) => !keys.has(e.key)).slice(0, Math.max(0, MAX_WRITTEN_ENTRIES - mine.length));
  // (It may also say all of it now, found by other keys than the build that wrote it.)
  if (saysAll(previous, mine)) return { at, entries: previous.length, bytes: 0 };
  if (!older.length) return await putRecord(client, at, mine);
  try {
    return await putRecord(client, at, [...mine, ...older]);
  } catch {
    const present = await Promise.all(
      older.map(async (e) => {
        const head = await client.headBlob(at.repo, e.descriptor.digest).catch(() => undefined);
        return head?.digest === e.descriptor.digest && (head.size === undefined || head.size === e.descriptor.size);
      }),
    );
    const kept = older.filter((_, i) => present[i]);
    try {
      return await putRecord(client, at, [...mine, ...kept]);
    } catch {
      return await putRecord(client, at, mine);
    }
  }
}

/** Every entry of `mine` is in `record`, byte for byte. */
function saysAll(record: readonly RecordEntry[], mine: readonly RecordEntry[]): boolean {
  const said = new Set(record.map((e) => recordBytes([e]).toString()));
  return record.length > 0 && mine.every((e) => said.has(recordBytes([e]).toString()));
}

async function putRecord(client: CacheWriteClient, at: CacheLocation, entries: RecordEntry[]): Promise<WrittenRecord> {
  const config = recordBytes(entries);
  const digest = sha256(config);
  let bytes = 0;
  if (!(await client.blobExists(at.repo, digest))) {
    await client.uploadBlob(at.repo, digest, config.length, () => Readable.from([config]));
    bytes += config.length;
  }
  const manifest = recordManifest(config, entries);
  await client.putManifest(at.repo, at.tag, MediaType.OciManifest, manifest);
  bytes += manifest.length;
  return { at, entries: entries.length, bytes };
}
