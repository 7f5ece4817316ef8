import { resolve } from 'node:path';
import { formatPlatform } from '../oci/platform.js';
import { BlobStore } from '../layer/blobstore.js';
import type { BuiltVariant } from '../image/image.js';
import { RegistryClient } from '../registry/client.js';
import { credentialsFrom, type Credentials } from '../registry/credentials.js';
import type { RetryPolicy } from '../registry/retry.js';
import { createSink, type OutputSpec } from '../output/sinks.js';
import type { SinkImage } from '../output/sink.js';
import { Pool } from '../output/pool.js';
import { formatBytes, formatMs, type Logger } from '../log.js';
import type { Progress } from '../progress/progress.js';
import { PullBlobs, type PullStats } from './blobs.js';
import { PullError } from './errors.js';
import { resolveTarget, type PlatformChoice, type PullTarget } from './resolve.js';

export interface PullOptions {
  targets: PullTarget[];
  outputs: OutputSpec[];
  platform: PlatformChoice;
  /** Where downloaded blobs are kept (the build's cache directory: blobs are shared). */
  workDir: string;
  credentials: Record<string, Credentials>;
  /** Blobs downloaded at once. */
  concurrency?: number;
  /** Tests: a shorter retry policy. */
  retry?: Partial<RetryPolicy>;
}

export interface PulledEntry {
  image: string;
  digest: string;
  ref: string;
  mediaType: string;
  size: number;
  platforms?: Record<string, string>;
}

/**
 * Pulls images into outputs, in two phases so a failure writes nothing: every manifest and
 * config is read and every blob downloaded (verified) into the local store, then each sink
 * writes from there, the same sinks a build writes through.
 */
export async function runPull(
  opts: PullOptions,
  logger: Logger,
  progress: Progress,
): Promise<{ entries: Record<string, PulledEntry>; stats: PullStats }> {
  const t0 = Date.now();
  const client = new RegistryClient({
    credentials: credentialsFrom({ explicit: opts.credentials }),
    logger,
    ...(opts.retry ? { retry: opts.retry } : {}),
  });
  const blobs = new PullBlobs(client, new BlobStore(resolve(opts.workDir, 'blobs')), progress);
  try {
    const variants = await Promise.all(opts.targets.map((t) => resolveTarget(client, blobs, t, opts.platform)));
    await downloadAll(variants, opts.targets, opts.concurrency ?? 4);
    const s = blobs.stats;
    logger.info(
      `pull: ${variants.length} image(s): ${s.downloaded} blob(s) downloaded (${formatBytes(s.bytes)}), ${s.local} already local, in ${formatMs(Date.now() - t0)}`,
    );
    const images: SinkImage[] = variants.map((v, i) => {
      const t = opts.targets[i]!;
      return { variant: v, repo: { registry: t.reference.registry, repository: t.reference.repository }, image: t.image, tags: t.tags };
    });
    for (const spec of opts.outputs) {
      const sink = createSink(spec);
      const t = Date.now();
      await sink.write(images);
      logger.info(`output: ${sink.description} (${images.length} image(s)) in ${formatMs(Date.now() - t)}`);
    }
    const entries = Object.fromEntries(variants.map((v, i) => [v.variant, entryOf(v, opts.targets[i]!)]));
    return { entries, stats: blobs.stats };
  } finally {
    await client.close();
  }
}

/**
 * Every layer of every image, `concurrency` at a time. After the first failure nothing new
 * starts; the running ones are waited for, so nothing is still writing when the error is shown.
 */
async function downloadAll(variants: BuiltVariant[], targets: PullTarget[], concurrency: number): Promise<void> {
  const pool = new Pool(concurrency);
  let failed = false;
  const jobs = variants.flatMap((v, i) =>
    v.images.flatMap((img) =>
      img.layers.map((l) =>
        pool.run(async () => {
          if (failed) return;
          try {
            await l.file!();
          } catch (e) {
            failed = true;
            throw new PullError(targets[i]!.shown, e);
          }
        }),
      ),
    ),
  );
  const results = await Promise.allSettled(jobs);
  const first = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (first) throw first.reason;
}

function entryOf(v: BuiltVariant, t: PullTarget): PulledEntry {
  return {
    image: t.image,
    digest: v.tagged.digest,
    ref: `${t.image}@${v.tagged.digest}`,
    mediaType: v.tagged.mediaType,
    size: v.totalSize,
    ...(v.index ? { platforms: Object.fromEntries(v.images.map((i) => [formatPlatform(i.platform), i.manifestDescriptor.digest])) } : {}),
  };
}
