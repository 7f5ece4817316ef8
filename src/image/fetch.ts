import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../oci/digest.js';
import type { Layer } from '../oci/layer.js';
import type { Descriptor } from '../oci/types.js';
import type { BlobStore } from '../layer/blobstore.js';
import type { RegistryClient, RepoRef } from '../registry/client.js';
import { noProgress, type Progress } from '../progress/progress.js';

/**
 * Brings remote blobs into the local store once per run, however many variants, outputs
 * or scans ask for them. The registry client verifies each blob's digest as it streams.
 */
export class BlobFetcher {
  private readonly pending = new Map<Digest, Promise<void>>();

  constructor(
    private readonly client: RegistryClient,
    readonly store: BlobStore,
    private readonly progress: Progress = noProgress,
  ) {}

  /**
   * A layer of `repo` (a base image's): opening it downloads the blob into the store first
   * (once per run), so every consumer after the first reads it locally.
   */
  layer(descriptor: Descriptor, diffId: Digest, repo: RepoRef, createdBy: string): Layer {
    const digest = descriptor.digest;
    return {
      descriptor,
      diffId,
      createdBy,
      origin: repo,
      open: async () => {
        await this.ensureLocal(digest, repo);
        return this.store.open(digest);
      },
      file: async () => {
        await this.ensureLocal(digest, repo);
        return this.store.path(digest);
      },
    };
  }

  /** Makes sure the blob is in the store, downloading it from `repo` when it is not. */
  async ensureLocal(digest: Digest, repo: RepoRef | undefined): Promise<void> {
    if ((await this.store.has(digest)) !== undefined) return;
    if (!repo) throw new Error(`blob ${digest} should be in the local store but is missing`);
    let p = this.pending.get(digest);
    if (!p) {
      p = this.download(repo, digest);
      this.track(digest, p);
    }
    await p;
  }

  /**
   * The blob's bytes as they arrive from the registry, written to the store at the same time,
   * so a reader (the base scan) works while the download runs instead of after it. Both ends
   * share one pace (pipe pauses the download while either is full): nothing is buffered beyond
   * the streams' high-water marks. A blob already stored, or already being fetched, is read
   * from the store. The stream fails if the download does (digest mismatch included).
   */
  async openThrough(digest: Digest, repo: RepoRef | undefined): Promise<Readable> {
    if ((await this.store.has(digest)) === undefined && repo) {
      const running = this.pending.get(digest);
      if (!running) {
        const reader = new PassThrough({ highWaterMark: 1 << 20 });
        this.track(digest, this.download(repo, digest, reader));
        return reader;
      }
      await running;
    }
    await this.ensureLocal(digest, repo);
    return this.store.open(digest);
  }

  private track(digest: Digest, p: Promise<void>): void {
    this.pending.set(digest, p);
    p.catch(() => this.pending.delete(digest));
  }

  private async download(repo: RepoRef, digest: Digest, reader?: PassThrough): Promise<void> {
    const w = await this.store.create();
    const task = this.progress.task(`pull ${repo.repository} ${digest.slice(7, 19)}`);
    try {
      const body = await this.client.getBlob(repo, digest);
      // One more listener on the flowing body: counts, never holds or paces anything.
      body.on('data', (c: Buffer) => task.add(c.length));
      if (reader) {
        // The reader's end comes after the file is committed: whoever reads to the end may open it.
        body.pipe(reader, { end: false });
        body.on('error', (err) => reader.destroy(err));
      }
      await pipeline(body, w.stream);
      await w.commit(digest);
      reader?.end();
      task.done();
    } catch (err) {
      task.fail();
      reader?.destroy(err as Error);
      await w.abort();
      throw err;
    }
  }
}
