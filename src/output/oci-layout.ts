import { copyFile, link, mkdir, readFile, rename, writeFile, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaType } from '../oci/mediatypes.js';
import { digestHex } from '../oci/digest.js';
import type { Descriptor, Index } from '../oci/types.js';
import type { BlobStore } from '../layer/blobstore.js';
import type { BlobFetcher } from '../build/fetch.js';
import type { BuiltVariant } from '../build/image.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * Writes images into an OCI image layout directory, each tagged (ref.name) by variant.
 * An existing layout is updated: entries with the same ref name are replaced, others kept.
 */
export async function writeOciLayout(dir: string, variants: BuiltVariant[], store: BlobStore, fetcher: BlobFetcher): Promise<void> {
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);
  for (const v of variants) {
    for (const img of v.images) {
      await Promise.all(img.layers.map((l) => fetcher.ensureLocal(l.descriptor.digest, l.source)));
      const digests = [img.configDescriptor.digest, img.manifestDescriptor.digest, ...img.layers.map((l) => l.descriptor.digest)];
      for (const d of new Set(digests)) await placeBlob(store.path(d), join(blobDir, digestHex(d)));
    }
    if (v.index) {
      await store.putBytes(v.index.descriptor.digest, v.index.bytes);
      await placeBlob(store.path(v.index.descriptor.digest), join(blobDir, digestHex(v.index.descriptor.digest)));
    }
  }
  let index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as Index;
  } catch { /* new layout */ }
  const names = new Set(variants.map((v) => v.variant));
  const kept = (index.manifests ?? []).filter((m) => !names.has(m.annotations?.[REF_NAME] ?? ''));
  const added: Descriptor[] = variants.map((v) => ({
    mediaType: v.top.mediaType,
    digest: v.top.digest,
    size: v.top.size,
    ...(v.top.platform ? { platform: v.top.platform } : {}),
    annotations: { [REF_NAME]: v.variant },
  }));
  const next: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...kept, ...added] };
  const tmp = join(dir, `index.json.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(next)}\n`);
  await rename(tmp, join(dir, 'index.json'));
}

/** Hard-links a blob when it can (same file system), copies otherwise. Blobs never change. */
async function placeBlob(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    await copyFile(from, to, constants.COPYFILE_FICLONE);
  }
}
