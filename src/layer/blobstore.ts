import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { digestHex, type Digest } from '../oci/digest.js';
import type { Layer } from '../oci/layer.js';
import type { Descriptor } from '../oci/types.js';

/**
 * A local content-addressed store of blobs (layers, configs, manifests) laid out like an
 * OCI layout's blobs/sha256 folder. Everything we build or pull lands here once and is
 * re-opened as a stream for each consumer (push, OCI layout, archive).
 */
export class BlobStore {
  constructor(readonly root: string) {}

  path(digest: Digest): string {
    return join(this.root, 'sha256', digestHex(digest));
  }

  async has(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.path(digest))).size;
    } catch {
      return undefined;
    }
  }

  open(digest: Digest): Readable {
    return createReadStream(this.path(digest), { highWaterMark: 1 << 20 });
  }

  /** A layer whose blob is in this store (one this build wrote, or a cached one). */
  layer(descriptor: Descriptor, diffId: Digest, createdBy: string): Layer {
    const file = this.path(descriptor.digest);
    return { descriptor, diffId, createdBy, open: () => Promise.resolve(this.open(descriptor.digest)), file: () => Promise.resolve(file) };
  }

  /** A temporary file to stream a blob into; commit() moves it in place under its digest. */
  async create(): Promise<{ stream: WriteStream; commit(digest: Digest): Promise<void>; abort(): Promise<void> }> {
    const tmpDir = join(this.root, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    await mkdir(join(this.root, 'sha256'), { recursive: true });
    const tmp = join(tmpDir, randomBytes(8).toString('hex'));
    const stream = createWriteStream(tmp, { highWaterMark: 1 << 20 });
    return {
      stream,
      commit: async (digest) => {
        await rename(tmp, this.path(digest));
      },
      abort: async () => {
        stream.destroy();
        await rm(tmp, { force: true });
      },
    };
  }

  /** Stores small bytes (configs, manifests) under their digest. */
  async putBytes(digest: Digest, bytes: Uint8Array): Promise<void> {
    if ((await this.has(digest)) !== undefined) return;
    const w = await this.create();
    await new Promise<void>((resolve, reject) => {
      w.stream.on('error', reject);
      w.stream.end(bytes, () => resolve());
    });
    await w.commit(digest);
  }
}
