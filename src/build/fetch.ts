import { pipeline } from 'node:stream/promises';
import type { Digest } from '../oci/digest.js';
import type { BlobStore } from '../layer/blobstore.js';
import type { RegistryClient, RepoRef } from '../registry/client.js';
import type { BlobSource } from './image.js';

/**
 * Brings remote blobs into the local store once per run, however many variants, outputs
 * or scans ask for them. The registry client verifies each blob's digest as it streams.
 */
export class BlobFetcher {
  private readonly pending = new Map<Digest, Promise<void>>();
  bytesDownloaded = 0;

  constructor(private readonly client: RegistryClient, readonly store: BlobStore) {}

  async ensureLocal(digest: Digest, source: BlobSource): Promise<void> {
    if ((await this.store.has(digest)) !== undefined) return;
    if (source.kind === 'local') throw new Error(`blob ${digest} should be in the local store but is missing`);
    let p = this.pending.get(digest);
    if (!p) {
      p = this.download(source.repo, digest);
      this.pending.set(digest, p);
      p.catch(() => this.pending.delete(digest));
    }
    await p;
  }

  private async download(repo: RepoRef, digest: Digest): Promise<void> {
    const w = await this.store.create();
    try {
      const body = await this.client.getBlob(repo, digest);
      body.on('data', (c: Buffer) => { this.bytesDownloaded += c.length; });
      await pipeline(body, w.stream);
      await w.commit(digest);
    } catch (err) {
      await w.abort();
      throw err;
    }
  }
}
