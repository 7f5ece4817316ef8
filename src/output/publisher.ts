import type { Descriptor } from '../oci/types.js';
import type { Digest } from '../oci/digest.js';
import { formatRepository } from '../oci/reference.js';
import type { BlobStore } from '../layer/blobstore.js';
import type { RegistryClient, RepoRef } from '../registry/client.js';
import type { BlobFetcher } from '../build/fetch.js';
import type { BlobSource, BuiltImage, BuiltVariant } from '../build/image.js';
import { formatBytes, formatMs, type Logger } from '../log.js';
import { Pool } from './pool.js';

export interface PublishTarget {
  variant: BuiltVariant;
  repo: RepoRef;
  /** Tag names (not full references) to point at the image once everything is pushed. */
  tags: string[];
}

export interface PublishStats {
  blobsUploaded: number;
  bytesUploaded: number;
  blobsMounted: number;
  blobsExisting: number;
  manifestsPushed: number;
  tagsWritten: number;
}

/** Thrown when publishing stops part way: says what failed and what is already in the registry. */
export class PublishError extends Error {
  constructor(override readonly cause: unknown, readonly stats: PublishStats, readonly phase: string) {
    super(`push failed while ${phase}: ${(cause as Error)?.message ?? cause}\n` +
      `no tag was moved; already in the registry (harmless, reused by a re-run): ${stats.blobsUploaded} blobs uploaded (${formatBytes(stats.bytesUploaded)}), ${stats.blobsMounted} mounted, ${stats.manifestsPushed} manifests by digest`);
    this.name = 'PublishError';
  }
}

/**
 * Pushes built images in the order that never exposes a partial image:
 * every blob of every image, then each manifest by digest, then a check that each
 * manifest is served, and only then the tags. A blob shared by several images is
 * uploaded once per registry; other repositories get it by cross-repository mount.
 */
export class RegistryPublisher {
  readonly stats: PublishStats = { blobsUploaded: 0, bytesUploaded: 0, blobsMounted: 0, blobsExisting: 0, manifestsPushed: 0, tagsWritten: 0 };
  private readonly blobs = new Map<string, Promise<void>>();
  /** registry -> digest -> repositories known to hold it (mount sources). */
  private readonly holders = new Map<string, Map<Digest, Set<string>>>();
  /** registry|digest -> the first push of that blob to that registry (others wait, then mount). */
  private readonly firstPush = new Map<string, Promise<void>>();
  private readonly pool: Pool;

  constructor(
    private readonly client: RegistryClient,
    private readonly store: BlobStore,
    private readonly fetcher: BlobFetcher,
    private readonly logger: Logger,
    concurrency = 4,
  ) {
    this.pool = new Pool(concurrency);
  }

  async publish(targets: PublishTarget[]): Promise<PublishStats> {
    let phase = 'uploading blobs';
    const t0 = Date.now();
    try {
      await Promise.all(targets.flatMap((t) => t.variant.images.map((img) => this.pushBlobs(t.repo, img))));
      phase = 'pushing manifests by digest';
      await Promise.all(targets.flatMap((t) => t.variant.images.map((img) => this.putByDigest(t.repo, img.manifestDescriptor, img.manifestBytes))));
      // An index refers to manifests, so it goes after all of them.
      phase = 'pushing indexes by digest';
      await Promise.all(targets.map((t) => (t.variant.index ? this.putByDigest(t.repo, t.variant.index.descriptor, t.variant.index.bytes) : undefined)));
      phase = 'confirming manifests';
      await Promise.all(targets.map(async (t) => {
        const head = await this.client.headManifest(t.repo, t.variant.top.digest);
        if (!head || head.digest !== t.variant.top.digest) {
          throw new Error(`${formatRepository(t.repo)}@${t.variant.top.digest} is not served after push`);
        }
      }));
      this.logger.info(`push: ${targets.length} image(s): ${this.stats.blobsUploaded} blobs uploaded (${formatBytes(this.stats.bytesUploaded)}), ${this.stats.blobsMounted} mounted, ${this.stats.blobsExisting} already present, ${this.stats.manifestsPushed} manifests in ${formatMs(Date.now() - t0)}`);
    } catch (err) {
      throw new PublishError(err, this.stats, phase);
    }
    phase = 'writing tags';
    const t1 = Date.now();
    try {
      // Tags last: until here nothing a user pulls by tag has changed.
      await Promise.all(targets.flatMap((t) => t.tags.map(async (tag) => {
        await this.client.putManifest(t.repo, tag, t.variant.top.mediaType, t.variant.topBytes);
        this.stats.tagsWritten++;
      })));
    } catch (err) {
      throw new PublishError(err, this.stats, phase);
    }
    if (this.stats.tagsWritten) this.logger.info(`tag: ${this.stats.tagsWritten} tag(s) written in ${formatMs(Date.now() - t1)}`);
    return this.stats;
  }

  private async putByDigest(repo: RepoRef, d: Descriptor, bytes: Buffer): Promise<void> {
    const stored = await this.client.putManifest(repo, d.digest, d.mediaType, bytes);
    if (stored !== d.digest) throw new Error(`${formatRepository(repo)}: registry stored manifest as ${stored}, expected ${d.digest}`);
    this.stats.manifestsPushed++;
  }

  private async pushBlobs(repo: RepoRef, image: BuiltImage): Promise<void> {
    const blobs: { d: Descriptor; source: BlobSource }[] = [
      ...image.layers.map((l) => ({ d: l.descriptor, source: l.source })),
      { d: image.configDescriptor, source: { kind: 'local' } as BlobSource },
    ];
    await Promise.all(blobs.map(({ d, source }) => this.ensureBlob(repo, d, source)));
  }

  private ensureBlob(repo: RepoRef, d: Descriptor, source: BlobSource): Promise<void> {
    const key = `${formatRepository(repo)}@${d.digest}`;
    let p = this.blobs.get(key);
    if (!p) {
      p = this.pool.run(() => this.pushBlob(repo, d, source));
      this.blobs.set(key, p);
    }
    return p;
  }

  private async pushBlob(repo: RepoRef, d: Descriptor, source: BlobSource): Promise<void> {
    if (source.kind === 'remote' && source.repo.registry === repo.registry) this.addHolder(source.repo, d.digest);
    const firstKey = `${repo.registry}|${d.digest}`;
    const first = this.firstPush.get(firstKey);
    if (first) await first.catch(() => undefined);
    const attempt = this.pushBlobSteps(repo, d, source);
    if (!first) this.firstPush.set(firstKey, attempt);
    await attempt;
    this.addHolder(repo, d.digest);
  }

  /** exists -> mount -> upload, the protocol steps in order. */
  private async pushBlobSteps(repo: RepoRef, d: Descriptor, source: BlobSource): Promise<void> {
    if (await this.client.blobExists(repo, d.digest)) {
      this.stats.blobsExisting++;
      return;
    }
    for (const from of this.holders.get(repo.registry)?.get(d.digest) ?? []) {
      if (from === repo.repository) continue;
      if (await this.client.mountBlob(repo, d.digest, from)) {
        this.stats.blobsMounted++;
        this.logger.debug(`mounted ${d.digest} into ${repo.repository} from ${from}`);
        return;
      }
    }
    await this.fetcher.ensureLocal(d.digest, source);
    await this.client.uploadBlob(repo, d.digest, d.size, () => this.store.open(d.digest));
    this.stats.blobsUploaded++;
    this.stats.bytesUploaded += d.size;
  }

  private addHolder(repo: RepoRef, digest: Digest): void {
    let byDigest = this.holders.get(repo.registry);
    if (!byDigest) this.holders.set(repo.registry, (byDigest = new Map()));
    let set = byDigest.get(digest);
    if (!set) byDigest.set(digest, (set = new Set()));
    set.add(repo.repository);
  }
}
