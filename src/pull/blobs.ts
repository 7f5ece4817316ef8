import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestHex, type Digest } from '../oci/digest.js';
import type { Layer } from '../oci/layer.js';
import type { Descriptor } from '../oci/types.js';
import type { BlobStore } from '../layer/blobstore.js';
import type { RegistryClient, RepoRef } from '../registry/client.js';
import type { Progress } from '../progress/progress.js';

export interface PullStats {
  downloaded: number;
  bytes: number;
  /** Blobs found in the local store (an earlier pull or build): not downloaded again. */
  local: number;
}

/**
 * The layers of pulled images. A layer is lazy, as the sinks expect: open() and file() bring the
 * blob into the local store first, once per run. The client checks size and sha256 as the
 * bytes stream and resumes a broken body with Range; a blob lands in the store (under its
 * digest) only when all of it was verified, so a failed pull leaves nothing that looks done,
 * and a pull run again downloads only what is still missing.
 */
export class PullBlobs {
  readonly stats: PullStats = { downloaded: 0, bytes: 0, local: 0 };
  private readonly pending = new Map<Digest, Promise<void>>();

  constructor(
    private readonly client: RegistryClient,
    readonly store: BlobStore,
    private readonly progress: Progress,
  ) {}

  layer(descriptor: Descriptor, diffId: Digest, repo: RepoRef, label: string): Layer {
    const ensure = () => this.ensure(repo, descriptor, label);
    return {
      descriptor,
      diffId,
      createdBy: 'base',
      origin: repo,
      open: async () => {
        await ensure();
        return this.store.open(descriptor.digest);
      },
      file: async () => {
        await ensure();
        return this.store.path(descriptor.digest);
      },
    };
  }

  /** Downloads the blob unless the store has it; concurrent callers share one download. */
  ensure(repo: RepoRef, d: Descriptor, label: string): Promise<void> {
    let p = this.pending.get(d.digest);
    if (!p) {
      p = this.fetch(repo, d, label);
      this.pending.set(d.digest, p);
      // A failure is not remembered: a later call tries again.
      p.catch(() => this.pending.delete(d.digest));
    }
    return p;
  }

  private async fetch(repo: RepoRef, d: Descriptor, label: string): Promise<void> {
    if ((await this.store.has(d.digest)) === d.size) {
      this.stats.local++;
      return;
    }
    const task = this.progress.task(`pull ${label} ${digestHex(d.digest).slice(0, 12)}`, d.size);
    const w = await this.store.create();
    try {
      const body = await this.client.getBlob(repo, d.digest, d.size);
      const counted = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          task.add(chunk.length);
          cb(null, chunk);
        },
      });
      await pipeline(body, counted, w.stream);
      await w.commit(d.digest);
    } catch (err) {
      task.fail();
      await w.abort();
      throw err;
    }
    this.stats.downloaded++;
    this.stats.bytes += d.size;
    task.done();
  }
}
