/**
 * Referrers in an OCI image layout, the way oras and regctl keep them: the artifact manifest and
 * its blobs under blobs/, and an entry in index.json (artifactType and annotations, no ref name)
 * whose manifest names the image as its `subject`. A tool walking the layout finds an image's
 * referrers by reading the manifests index.json lists.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomic } from '../cache/atomic.js';
import { digestHex } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Descriptor, Index } from '../oci/types.js';
import { artifactManifest, mergeReferrers, type Attestation } from './artifact.js';

async function writeBlob(dir: string, digest: string, bytes: Buffer): Promise<void> {
  const path = join(dir, 'blobs', 'sha256', digestHex(digest));
  await writeFile(path, bytes, { flag: 'wx' }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
}

/** Adds the attestations of `subject` (already in the layout) as referrers; returns their manifest descriptors. */
export async function attachToLayout(dir: string, subject: Descriptor, attestations: Attestation[]): Promise<Descriptor[]> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const artifacts = attestations.map((a) => artifactManifest(subject, a));
  for (const a of artifacts) {
    for (const b of a.blobs) await writeBlob(dir, b.digest, b.bytes);
    await writeBlob(dir, a.descriptor.digest, a.bytes);
  }
  const indexPath = join(dir, 'index.json');
  const index = JSON.parse(await readFile(indexPath, 'utf8')) as Index;
  const merged = mergeReferrers(
    index.manifests ?? [],
    artifacts.map((a) => a.descriptor),
  );
  if (merged)
    await writeAtomic(indexPath, `${JSON.stringify({ ...index, schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: merged })}\n`);
  return artifacts.map((a) => a.descriptor);
}
