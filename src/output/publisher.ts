import type { Descriptor } from '../oci/types.js';
import { sha256, type Digest } from '../oci/digest.js';
import { formatRepository } from '../oci/reference.js';
import { pipeline, Readable, Transform } from 'node:stream';
import type { RegistryClient, RepoRef } from '../registry/client.js';
import type { BuiltImage, BuiltVariant } from '../image/image.js';
import { RegistryError } from '../registry/errors.js';
import { RetryBudget, type RetryPolicy } from '../registry/retry.js';
import { formatBytes, formatMs, type Logger } from '../log.js';
import { Pool } from './pool.js';
import { inRepo, manifestsOf, presentManifests } from './present.js';
import { noProgress, type Progress } from '../progress/progress.js';

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
  /** Tags that pointed at the image already (a rebuild with nothing changed): not written again. */
  tagsInPlace: number;
}

export interface PublishErrorDetails {
  /** Other operations of the same phase that failed too (the first failure is the cause). */
  otherFailures?: number;
  /** Blobs not attempted because the phase had already failed. */
  notAttempted?: number;
  /** In the tag phase: references (repo:tag) that now point at the new image (they did not exist before)... */
  tagsWritten?: string[];
  /** ...those written and then put back to their previous image... */
  tagsRestored?: string[];
  /** ...and those that could not be written (they still point where they did). */
  tagsFailed?: string[];
}

/** Thrown when publishing stops part way: says what failed and what is already in the registry. */
export class PublishError extends Error {
  readonly tagsWritten: string[];
  readonly tagsFailed: string[];

  constructor(
    override readonly cause: unknown,
    readonly stats: PublishStats,
    readonly phase: string,
    details: PublishErrorDetails = {},
  ) {
    const others = [
      details.otherFailures ? `${details.otherFailures} other operation(s) of this phase failed too` : '',
      details.notAttempted ? `${details.notAttempted} blob(s) not attempted after the failure` : '',
    ]
      .filter(Boolean)
      .join('; ');
    const inRegistry = `${stats.blobsUploaded} blobs uploaded (${formatBytes(stats.bytesUploaded)}), ${stats.blobsMounted} mounted, ${stats.blobsExisting} already present, ${stats.manifestsPushed} manifests by digest`;
    const tagsWritten = details.tagsWritten ?? [];
    const tagsFailed = details.tagsFailed ?? [];
    const tagsRestored = details.tagsRestored ?? [];
    const state = tagsWritten.length
      ? `tags that did not exist before and now point at the new image (a re-run writes the rest): ${tagsWritten.join(', ')}; ` +
        `${tagsRestored.length ? `tags put back to their previous image: ${tagsRestored.join(', ')}; ` : ''}tags not written (unchanged): ${tagsFailed.join(', ') || 'none'}; ` +
        `every manifest is in the registry by digest (${inRegistry}), so a re-run only has to write the tags`
      : tagsFailed.length
        ? `no tag was moved${tagsRestored.length ? ` (put back to their previous image: ${tagsRestored.join(', ')})` : ''}; tags not written: ${tagsFailed.join(', ')}; ` +
          `every manifest is in the registry by digest (${inRegistry}), so a re-run only has to write the tags`
        : `no tag was moved; already in the registry (harmless, reused by a re-run): ${inRegistry}`;
    super(`push failed while ${phase}: ${(cause as Error)?.message ?? cause}${others ? ` (${others})` : ''}\n${state}`);
    this.name = 'PublishError';
    this.tagsWritten = tagsWritten;
    this.tagsFailed = tagsFailed;
  }
}

/**
 * Codes with which a registry refuses a manifest whose blobs it does not see. Right after we
 * pushed those blobs this is the registry catching up (eventual consistency, or another publisher
 * committing the same blob at this very moment rewrites its link): worth a check and a retry.
 */
const BLOB_UNKNOWN_CODES = new Set(['MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN']);
/**
 * Check-and-retry rounds for a manifest refused with BLOB_UNKNOWN_CODES, and their backoff:
 * long enough for a registry to catch up, short against a push's duration.
 */
const MANIFEST_REPAIR_POLICY: Partial<RetryPolicy> = { retries: 2, baseDelayMs: 500, maxDelayMs: 1000, maxElapsedMs: 60_000 };

/** A blob to push: a layer (which may be mounted from its origin) or a config. */
interface PushBlob {
  d: Descriptor;
  origin?: RepoRef;
  /** Brings the bytes where they can be read (a remote base layer is downloaded first). */
  fetch(): Promise<void>;
  open(): Promise<Readable>;
}

function blobsOf(image: BuiltImage): PushBlob[] {
  return [
    ...image.layers.map(
      (l): PushBlob => ({
        d: l.descriptor,
        ...(l.origin ? { origin: l.origin } : {}),
        fetch: async () => {
          await l.file?.();
        },
        open: () => l.open(),
      }),
    ),
    { d: image.configDescriptor, fetch: () => Promise.resolve(), open: () => Promise.resolve(Readable.from([image.configBytes])) },
  ];
}

/** `body`, reporting each chunk to `onChunk` as the request reads it; destroying one ends both. */
function counted(body: Readable, onChunk: (n: number) => void): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      onChunk(chunk.length);
      cb(null, chunk);
    },
  });
  return pipeline(body, counter, () => {
    /* the request sees errors through counter */
  });
}

/** Marks blob pushes skipped because another one already failed (not failures themselves). */
class NotAttempted extends Error {}

/**
 * Waits until every task has finished, so nothing keeps running behind a failure (and the stats
 * say exactly what reached the registry), then throws the first real failure.
 */
async function settle(tasks: Promise<unknown>[]): Promise<{ error: unknown; otherFailures: number; notAttempted: number } | undefined> {
  const results = await Promise.allSettled(tasks);
  const reasons = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  const real = [...new Set(reasons.filter((e) => !(e instanceof NotAttempted)))];
  if (!real.length) return undefined;
  return { error: real[0], otherFailures: real.length - 1, notAttempted: new Set(reasons.filter((e) => e instanceof NotAttempted)).size };
}

/**
 * Pushes built images in the order that never exposes a partial image:
 * every blob of every image, then each manifest by digest, then a check that each
 * manifest is served, and only then the tags. A blob shared by several images is
 * uploaded once per registry; other repositories get it by cross-repository mount.
 */
export class RegistryPublisher {
  readonly stats: PublishStats = {
    blobsUploaded: 0,
    bytesUploaded: 0,
    blobsMounted: 0,
    blobsExisting: 0,
    manifestsPushed: 0,
    tagsWritten: 0,
    tagsInPlace: 0,
  };
  private readonly blobs = new Map<string, Promise<void>>();
  /** registry -> digest -> repositories known to hold it (mount sources). */
  private readonly holders = new Map<string, Map<Digest, Set<string>>>();
  /** registry|digest -> the first push of that blob to that registry (others wait, then mount). */
  private readonly firstPush = new Map<string, Promise<void>>();
  private readonly pool: Pool;
  /** Set when a blob push failed: queued blob pushes are then skipped, not started. */
  private failed = false;

  constructor(
    private readonly client: RegistryClient,
    private readonly logger: Logger,
    concurrency = 4,
    private readonly progress: Progress = noProgress,
  ) {
    this.pool = new Pool(concurrency);
  }

  async publish(targets: PublishTarget[], hooks: { beforeTags?: () => Promise<void> } = {}): Promise<PublishStats> {
    const t0 = Date.now();
    this.failed = false;
    // Which manifests the repositories hold already, asked while the blobs are checked: those are
    // not pushed or confirmed again. Their blobs are still checked (a registry may have lost one).
    let present = new Set<string>();
    const finding = presentManifests(this.client, targets).then((p) => {
      present = p;
    });
    const absent = (repo: RepoRef, d: Descriptor) => !present.has(inRepo(repo, d));
    // Each phase waits for all of its operations (settle) before failing, so that nothing runs
    // on behind the error and the error's account of what reached the registry is exact.
    const phases: [string, () => Promise<unknown>[]][] = [
      ['uploading blobs', () => [...targets.flatMap((t) => t.variant.images.flatMap((img) => this.pushBlobs(t.repo, img))), finding]],
      [
        'pushing manifests by digest',
        () =>
          targets.flatMap((t) =>
            t.variant.images
              .filter((img) => absent(t.repo, img.manifestDescriptor))
              .map((img) => this.putByDigest(t.repo, img.manifestDescriptor, img.manifestBytes, [img])),
          ),
      ],
      // An index refers to manifests, so it goes after all of them.
      [
        'pushing indexes by digest',
        () =>
          targets.map((t) =>
            t.variant.index && absent(t.repo, t.variant.index.descriptor)
              ? this.putByDigest(t.repo, t.variant.index.descriptor, t.variant.index.bytes)
              : Promise.resolve(),
          ),
      ],
      // Every manifest (each platform's and the index) must be served before a tag moves (those
      // found at the start are).
      [
        'confirming manifests',
        () =>
          targets.flatMap((t) =>
            manifestsOf(t)
              .filter((d) => absent(t.repo, d))
              .map(async (d) => {
                const head = await this.client.headManifest(t.repo, d.digest);
                if (!head || head.digest !== d.digest) {
                  throw new Error(`${formatRepository(t.repo)}@${d.digest} is not served after push`);
                }
              }),
          ),
      ],
    ];
    for (const [phase, start] of phases) {
      const failure = await settle(start());
      if (failure) throw new PublishError(failure.error, this.stats, phase, failure);
    }
    this.logger.info(
      `push: ${targets.length} image(s): ${this.stats.blobsUploaded} blobs uploaded (${formatBytes(this.stats.bytesUploaded)}), ${this.stats.blobsMounted} mounted, ${this.stats.blobsExisting} already present, ${this.stats.manifestsPushed} manifests in ${formatMs(Date.now() - t0)}`,
    );
    // Attestations (referrers of the manifests) go up before any tag moves.
    if (hooks.beforeTags)
      await hooks.beforeTags().catch((e: unknown) => {
        throw new PublishError(e, this.stats, 'attaching attestations');
      });
    const t1 = Date.now();
    // Where each tag points now, so a failure part-way can put moved tags back: registries have
    // no transactions, but then no tag of the run stays moved unless it did not exist before.
    const previous = new Map<string, { mediaType: string; bytes: Buffer } | null>();
    const snapshot = await settle(
      targets.flatMap((t) =>
        t.tags.map(async (tag) => {
          previous.set(`${formatRepository(t.repo)}:${tag}`, await this.currentTag(t.repo, tag));
        }),
      ),
    );
    if (snapshot) throw new PublishError(snapshot.error, this.stats, 'reading the current tags', snapshot);
    // Tags last: until here nothing a user pulls by tag has changed. A tag that fails does not
    // stop the others (each one written points at a complete image); the error lists both kinds.
    const tagsWritten: string[] = [];
    const tagsFailed: string[] = [];
    const written: { repo: RepoRef; tag: string; ref: string }[] = [];
    const failure = await settle(
      targets.flatMap((t) =>
        t.tags.map(async (tag) => {
          const ref = `${formatRepository(t.repo)}:${tag}`;
          const before = previous.get(ref);
          if (before && sha256(before.bytes) === t.variant.tagged.digest) {
            this.stats.tagsInPlace++;
            return;
          }
          try {
            await this.putManifestChecked(t.repo, tag, t.variant.tagged.mediaType, t.variant.taggedBytes, t.variant.images);
          } catch (e) {
            tagsFailed.push(ref);
            throw e;
          }
          written.push({ repo: t.repo, tag, ref });
          this.stats.tagsWritten++;
        }),
      ),
    );
    if (failure) {
      const tagsRestored: string[] = [];
      await Promise.all(
        written.map(async ({ repo, tag, ref }) => {
          const before = previous.get(ref);
          try {
            if (before) {
              await this.client.putManifest(repo, tag, before.mediaType, before.bytes);
              tagsRestored.push(ref);
              return;
            }
          } catch (e) {
            this.logger.warn(`could not put ${ref} back to its previous image: ${(e as Error).message}`);
          }
          tagsWritten.push(ref);
        }),
      );
      throw new PublishError(failure.error, this.stats, 'writing tags', {
        ...failure,
        tagsWritten: tagsWritten.sort(),
        tagsFailed: tagsFailed.sort(),
        tagsRestored: tagsRestored.sort(),
      });
    }
    if (this.stats.tagsWritten || this.stats.tagsInPlace)
      this.logger.info(
        `tag: ${this.stats.tagsWritten} tag(s) written${this.stats.tagsInPlace ? `, ${this.stats.tagsInPlace} already in place` : ''} in ${formatMs(Date.now() - t1)}`,
      );
    return this.stats;
  }

  /** The manifest a tag points at now, or null when the tag does not exist. */
  private async currentTag(repo: RepoRef, tag: string): Promise<{ mediaType: string; bytes: Buffer } | null> {
    try {
      const m = await this.client.getManifest(repo, tag);
      return { mediaType: m.mediaType, bytes: m.bytes };
    } catch (e) {
      if (e instanceof RegistryError && (e.status === 404 || e.codes.includes('MANIFEST_UNKNOWN') || e.codes.includes('NAME_UNKNOWN')))
        return null;
      throw e;
    }
  }

  private async putByDigest(repo: RepoRef, d: Descriptor, bytes: Buffer, images: BuiltImage[] = []): Promise<void> {
    const stored = await this.putManifestChecked(repo, d.digest, d.mediaType, bytes, images);
    if (stored !== d.digest) throw new Error(`${formatRepository(repo)}: registry stored manifest as ${stored}, expected ${d.digest}`);
    this.stats.manifestsPushed++;
  }

  /**
   * PUTs a manifest by digest or tag. When the registry says it does not know blobs of `images`
   * (that we pushed moments ago), checks each blob, uploads any that really is missing, and tries
   * again: at most MANIFEST_REPAIRS times, then the registry's error stands.
   */
  private async putManifestChecked(
    repo: RepoRef,
    reference: string,
    mediaType: string,
    bytes: Buffer,
    images: BuiltImage[],
  ): Promise<Digest> {
    const repairs = new RetryBudget(MANIFEST_REPAIR_POLICY, this.logger, `${formatRepository(repo)} ${reference}`);
    for (;;) {
      try {
        return await this.client.putManifest(repo, reference, mediaType, bytes);
      } catch (e) {
        const blobsUnseen = e instanceof RegistryError && e.codes.some((c) => BLOB_UNKNOWN_CODES.has(c));
        await repairs.pause(e, {
          retryable: blobsUnseen,
          say: (delay) =>
            `the registry does not see every blob of the manifest yet (${[...new Set((e as RegistryError).codes)].join(', ')}); checking the blobs and trying again in ${delay} ms`,
        });
        for (const img of images) {
          for (const blob of blobsOf(img)) {
            const d = blob.d;
            if (await this.client.blobExists(repo, d.digest, d.size)) continue;
            this.logger.info(`${formatRepository(repo)}: ${d.digest} is missing; uploading it again`);
            await blob.fetch();
            await this.client.uploadBlob(repo, d.digest, d.size, () => blob.open());
            this.stats.blobsUploaded++;
            this.stats.bytesUploaded += d.size;
          }
        }
      }
    }
  }

  /** One task per blob of the image (shared blobs share a task). */
  private pushBlobs(repo: RepoRef, image: BuiltImage): Promise<void>[] {
    return blobsOf(image).map((blob) => this.ensureBlob(repo, blob));
  }

  private ensureBlob(repo: RepoRef, blob: PushBlob): Promise<void> {
    const key = `${formatRepository(repo)}@${blob.d.digest}`;
    let p = this.blobs.get(key);
    if (!p) {
      p = this.pool.run(async () => {
        if (this.failed) throw new NotAttempted(`${key}: not attempted after an earlier failure`);
        try {
          await this.pushBlob(repo, blob);
        } catch (e) {
          this.failed = true;
          throw e;
        }
      });
      this.blobs.set(key, p);
      // A failed push is forgotten, so publishing again with this publisher tries it afresh.
      p.catch(() => {
        if (this.blobs.get(key) === p) this.blobs.delete(key);
      });
    }
    return p;
  }

  private async pushBlob(repo: RepoRef, blob: PushBlob): Promise<void> {
    const d = blob.d;
    if (blob.origin && blob.origin.registry === repo.registry) this.addHolder(blob.origin, d.digest);
    const firstKey = `${repo.registry}|${d.digest}`;
    const first = this.firstPush.get(firstKey);
    if (first) await first.catch(() => undefined);
    const attempt = this.pushBlobSteps(repo, blob);
    if (!first) this.firstPush.set(firstKey, attempt);
    await attempt;
    this.addHolder(repo, d.digest);
  }

  /** exists -> mount -> upload, the protocol steps in order. */
  private async pushBlobSteps(repo: RepoRef, blob: PushBlob): Promise<void> {
    const d = blob.d;
    if (await this.client.blobExists(repo, d.digest, d.size)) {
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
    await blob.fetch();
    const task = this.progress.task(`push ${repo.repository} ${d.digest.slice(7, 19)}`, d.size);
    // A retry sends the body again from the start: what the failed attempt counted is taken back.
    let sent = 0;
    const open = async () => {
      task.add(-sent);
      sent = 0;
      return counted(await blob.open(), (n) => {
        sent += n;
        task.add(n);
      });
    };
    try {
      await this.client.uploadBlob(repo, d.digest, d.size, open);
    } catch (e) {
      task.fail();
      throw e;
    }
    task.done();
    this.stats.blobsUploaded++;
    this.stats.bytesUploaded += d.size;
  }

  private addHolder(repo: RepoRef, digest: Digest): void {
    let byDigest = this.holders.get(repo.registry);
    if (!byDigest) {
      byDigest = new Map();
      this.holders.set(repo.registry, byDigest);
    }
    let set = byDigest.get(digest);
    if (!set) {
      set = new Set();
      byDigest.set(digest, set);
    }
    set.add(repo.repository);
  }
}
