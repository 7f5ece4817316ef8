import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { decompressedChunks } from '../layer/decompress.js';
import { isDigest, sha256, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import { formatRepository, parseReference } from '../oci/reference.js';
import type { Descriptor } from '../oci/types.js';
import type { RepoRef } from '../registry/client.js';
import { isObject } from './atomic.js';
import type { CachedLayer, RemoteLayers } from './layer-cache.js';

/**
 * The layer cache's records kept in the registry, next to the layers they name.
 *
 * After a push, a small OCI artifact (tag `buildcache` in each pushed repository, or the
 * repository given as `cache-registry: REF`) maps cache keys to layers that are already in that
 * repository. Its config blob is the record; its `layers` are the layers it names, so the
 * registry checks they exist when it is written and its garbage collector keeps them while the
 * tag does. It costs a few kilobytes: no layer is uploaded for it (BuildKit's registry cache in
 * mode=max uploads every layer again).
 *
 * A build with an empty local cache reads it: a key found there is a hit once a HEAD of the blob
 * gives the recorded digest and size; the bytes are downloaded only when something reads them
 * (a run: step on top, a copy from the variant, an output that is not the registry). Anything
 * that does not check out (a missing blob, another size, a malformed record) is a miss.
 *
 * Only hashes go into a record (keys, digests, sizes), never a step's environment, a build-arg
 * value or a command.
 */

export const CACHE_ARTIFACT_TYPE = 'application/vnd.oci-build.layer-cache.v1';
export const CACHE_RECORD_TYPE = 'application/vnd.oci-build.layer-cache.record.v1+json';
export const DEFAULT_CACHE_TAG = 'buildcache';
/** A record names at most this many layers (a build has a few dozen; this bounds a hostile one). */
export const MAX_RECORD_ENTRIES = 4096;
const MAX_RECORD_BYTES = 4 << 20;
const HEX64 = /^[a-f0-9]{64}$/;

/** `cache-registry`: auto (the pushed repositories), off, or one repository (and tag) for all. */
export type CacheRegistrySetting = { mode: 'auto' } | { mode: 'off' } | { mode: 'ref'; repo: RepoRef; tag: string };

export function parseCacheRegistry(value: string): CacheRegistrySetting {
  const v = value.trim();
  const lower = v.toLowerCase();
  if (lower === '' || lower === 'auto' || lower === 'true') return { mode: 'auto' };
  if (['false', 'off', 'no', '0'].includes(lower)) return { mode: 'off' };
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(v);
  } catch (e) {
    throw new Error(
      `cache-registry: ${(e as Error).message} (want auto, false, or a repository such as ghcr.io/acme/cache or ghcr.io/acme/cache:buildcache)`,
    );
  }
  if (ref.digest)
    throw new Error(`cache-registry: "${v}" names a digest; give a repository, optionally with a tag (ghcr.io/acme/cache:buildcache)`);
  const hasTag = v.slice(v.lastIndexOf('/') + 1).includes(':');
  return {
    mode: 'ref',
    repo: { registry: ref.registry, repository: ref.repository },
    tag: hasTag && ref.tag ? ref.tag : DEFAULT_CACHE_TAG,
  };
}

/** One record: where it lives. */
export interface CacheLocation {
  repo: RepoRef;
  tag: string;
}

/** One layer of a record. `shape` keys the layer's entries without their contents (see LayerProducer). */
export interface RecordEntry extends CachedLayer {
  key: string;
  shape?: string;
}

/** What the registry cache needs from the registry client. */
export interface CacheRegistryClient {
  getManifest(repo: RepoRef, reference: string): Promise<{ mediaType: string; digest: Digest; bytes: Buffer }>;
  headBlob(repo: RepoRef, digest: Digest): Promise<{ digest: Digest; size?: number } | undefined>;
  getBlob(repo: RepoRef, digest: Digest, expectedSize?: number): Promise<NodeJS.ReadableStream>;
}

/** The record's config blob, as JSON; entries in the order given (newest first, see writeRecords). */
export function recordBytes(entries: readonly RecordEntry[]): Buffer {
  const layers = entries.map((e) => ({
    key: e.key,
    ...(e.shape ? { shape: e.shape } : {}),
    mediaType: e.descriptor.mediaType,
    digest: e.descriptor.digest,
    size: e.descriptor.size,
    diffId: e.diffId,
    uncompressedSize: e.uncompressedSize,
  }));
  return Buffer.from(`${JSON.stringify({ kind: 'oci-build-layer-cache', version: 1, layers })}\n`);
}

/**
 * The artifact manifest of a record: deterministic (no timestamp), so writing an unchanged
 * record again stores the same manifest.
 */
export function recordManifest(config: Buffer, entries: readonly RecordEntry[]): Buffer {
  const layers = new Map<string, Descriptor>();
  for (const e of entries)
    layers.set(e.descriptor.digest, { mediaType: e.descriptor.mediaType, digest: e.descriptor.digest, size: e.descriptor.size });
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: CACHE_ARTIFACT_TYPE,
      config: { mediaType: CACHE_RECORD_TYPE, digest: sha256(config), size: config.length },
      layers: [...layers.values()].sort((a, b) => (a.digest < b.digest ? -1 : 1)),
    }),
  );
}

/**
 * The entries of a record that agree with its manifest: well-formed, and naming a layer the
 * manifest lists with the same digest, size and media type (the registry vouches for those).
 */
export function parseRecord(config: Buffer, manifestLayers: readonly Descriptor[]): RecordEntry[] {
  let v: unknown;
  try {
    v = JSON.parse(config.toString('utf8'));
  } catch {
    return [];
  }
  if (!isObject(v) || v.kind !== 'oci-build-layer-cache' || v.version !== 1 || !Array.isArray(v.layers)) return [];
  const listed = new Map(manifestLayers.map((d) => [d.digest, d]));
  const out: RecordEntry[] = [];
  for (const l of v.layers.slice(0, MAX_RECORD_ENTRIES) as unknown[]) {
    if (!isObject(l) || typeof l.key !== 'string' || !HEX64.test(l.key)) continue;
    if (l.shape !== undefined && (typeof l.shape !== 'string' || !HEX64.test(l.shape))) continue;
    if (typeof l.digest !== 'string' || !isDigest(l.digest) || typeof l.diffId !== 'string' || !isDigest(l.diffId)) continue;
    if (!isSize(l.size) || !isSize(l.uncompressedSize) || typeof l.mediaType !== 'string') continue;
    const m = listed.get(l.digest);
    if (!m || m.size !== l.size || m.mediaType !== l.mediaType) continue;
    out.push({
      key: l.key,
      ...(l.shape ? { shape: l.shape as string } : {}),
      descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size },
      diffId: l.diffId,
      uncompressedSize: l.uncompressedSize,
    });
  }
  return out;
}

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Reads a record's manifest and config; undefined when there is none (or it is not ours). */
export async function readRecord(client: CacheRegistryClient, at: CacheLocation): Promise<RecordEntry[] | undefined> {
  let m: { bytes: Buffer };
  try {
    m = await client.getManifest(at.repo, at.tag);
  } catch (e) {
    // No record yet, or a repository that does not exist yet (GHCR answers those with 401/403
    // before the first push): nothing to read, and nothing worth a warning.
    const status = (e as { status?: number }).status;
    if (status === 404 || status === 401 || status === 403) return undefined;
    throw e;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(m.bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isObject(doc) || !isObject(doc.config) || doc.config.mediaType !== CACHE_RECORD_TYPE || !Array.isArray(doc.layers)) return undefined;
  const config = doc.config;
  if (typeof config.digest !== 'string' || !isDigest(config.digest) || !isSize(config.size) || config.size > MAX_RECORD_BYTES)
    return undefined;
  const layers = (doc.layers as unknown[]).filter(
    (d): d is Descriptor =>
      isObject(d) && typeof d.digest === 'string' && isDigest(d.digest) && isSize(d.size) && typeof d.mediaType === 'string',
  );
  // getBlob checks the size and the digest as the bytes arrive.
  const chunks: Buffer[] = [];
  for await (const c of await client.getBlob(at.repo, config.digest, config.size)) chunks.push(c as Buffer);
  return parseRecord(Buffer.concat(chunks), layers);
}

/**
 * The records of a build's cache locations, as the layer cache's second tier. They are read
 * once, on the first lookup (so reading overlaps the base image's resolution); a hit is checked
 * with a HEAD of its blob (once per blob). A registry that cannot be read is a warning and an
 * empty record: the build goes on without it.
 */
export class RegistryLayers implements RemoteLayers {
  readonly stats = { entries: 0, hits: 0, rejected: 0 };
  private loaded?: Promise<Map<string, { entry: RecordEntry; repo: RepoRef }>>;
  private readonly shapes = new Set<string>();
  private readonly checks = new Map<string, Promise<boolean>>();
  /** What each location held when this build read it (undefined: no record, or unreadable). */
  private readonly read = new Map<string, RecordEntry[] | undefined>();

  constructor(
    private readonly client: CacheRegistryClient,
    readonly locations: readonly CacheLocation[],
    private readonly warn: (m: string) => void,
  ) {}

  /** Every location's entries by key (the first location naming a key wins). */
  load(): Promise<Map<string, { entry: RecordEntry; repo: RepoRef }>> {
    this.loaded ??= (async () => {
      const out = new Map<string, { entry: RecordEntry; repo: RepoRef }>();
      const records = await Promise.all(
        this.locations.map(async (at) => {
          try {
            const entries = await readRecord(this.client, at);
            this.read.set(locationId(at), entries);
            return entries;
          } catch (e) {
            this.warn(
              `registry cache: could not read ${formatRepository(at.repo)}:${at.tag} (${(e as Error).message}); building without it`,
            );
            return undefined;
          }
        }),
      );
      records.forEach((entries, i) => {
        for (const entry of entries ?? []) {
          if (out.has(entry.key)) continue;
          out.set(entry.key, { entry, repo: this.locations[i]!.repo });
          if (entry.shape) this.shapes.add(entry.shape);
        }
      });
      this.stats.entries = out.size;
      return out;
    })();
    return this.loaded;
  }

  async get(key: string): Promise<CachedLayer | undefined> {
    const found = (await this.load()).get(key);
    if (!found) return undefined;
    const { entry, repo } = found;
    if (!(await this.verify(repo, entry.descriptor))) {
      this.stats.rejected++;
      return undefined;
    }
    this.stats.hits++;
    return { descriptor: entry.descriptor, diffId: entry.diffId, uncompressedSize: entry.uncompressedSize, remote: repo };
  }

  /** The entries `at` held when this build read it; undefined when it was not read or had none. */
  readAtStart(at: CacheLocation): readonly RecordEntry[] | undefined {
    return this.read.get(locationId(at));
  }

  async count(): Promise<number> {
    return (await this.load()).size;
  }

  async hasShape(shape: string): Promise<boolean> {
    await this.load();
    return this.shapes.has(shape);
  }

  /** The registry has the blob, with the recorded digest and size. */
  private verify(repo: RepoRef, d: Descriptor): Promise<boolean> {
    const id = `${formatRepository(repo)}@${d.digest}`;
    let p = this.checks.get(id);
    if (!p) {
      p = this.client.headBlob(repo, d.digest).then(
        (head) => head !== undefined && head.digest === d.digest && (head.size === undefined || head.size === d.size),
        (e: unknown) => {
          this.warn(`registry cache: could not check ${d.digest} in ${formatRepository(repo)} (${(e as Error).message}); not using it`);
          return false;
        },
      );
      this.checks.set(id, p);
    }
    return p;
  }
}

const locationId = (at: CacheLocation) => `${formatRepository(at.repo)}:${at.tag}`;

/**
 * Where a build reads records from: with `auto`, each repository the build's images go to, when
 * pushing or on GitHub Actions (a pull request build reads what the last push wrote; a local
 * build without --push stays off the network); with a repository, always there.
 */
export function readLocations(
  setting: CacheRegistrySetting,
  opts: { push: boolean; onActions: boolean; repos: readonly RepoRef[] },
): CacheLocation[] {
  if (setting.mode === 'off') return [];
  if (setting.mode === 'ref') return [{ repo: setting.repo, tag: setting.tag }];
  if (!opts.push && !opts.onActions) return [];
  const seen = new Set<string>();
  return opts.repos
    .filter((r) => !seen.has(formatRepository(r)) && seen.add(formatRepository(r)))
    .map((repo) => ({ repo, tag: DEFAULT_CACHE_TAG }));
}

/**
 * Whether a push writes its records. Never on a pull request with `auto`: the change is not
 * merged, and its records would serve the default branch's builds; a repository given
 * explicitly is the user asking for it.
 */
export function writesRecords(
  setting: CacheRegistrySetting,
  push: boolean,
  eventName: string | undefined,
): { write: boolean; reason?: string } {
  if (setting.mode === 'off' || !push) return { write: false };
  if (setting.mode === 'auto' && (eventName === 'pull_request' || eventName === 'pull_request_target')) {
    return {
      write: false,
      reason: `registry cache: not written on ${eventName} runs (cache-registry: auto; give a repository to write it there)`,
    };
  }
  return { write: true };
}

/**
 * For a record's layer whose bytes are read anyway (a run: step's, listed for the file system
 * view): its uncompressed content has the recorded diffID. A HEAD vouches for the blob, not for
 * what the record says it unpacks to.
 */
export async function hasDiffId(diffId: Digest, open: () => Promise<Readable>): Promise<boolean> {
  const h = createHash('sha256');
  for await (const c of decompressedChunks(await open())) h.update(c);
  return `sha256:${h.digest('hex')}` === diffId;
}
