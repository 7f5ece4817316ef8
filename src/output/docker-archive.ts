import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestHex, type Digest } from '../oci/digest.js';
import type { BlobStore } from '../layer/blobstore.js';
import type { LayerEntry } from '../layer/types.js';
import { createTarStream } from '../layer/tarwriter.js';
import type { BlobFetcher } from '../build/fetch.js';
import type { BuiltImage, BuiltVariant } from '../build/image.js';
import { hostPlatform, platformMatches } from '../oci/platform.js';
import type { DigestMap } from './digest-map.js';

/**
 * Writes a tar that `podman load` and `docker load` accept: Docker's manifest.json pointing
 * at blobs/sha256/* (the paths Docker 25+ `docker save` uses). Layers stay gzip-compressed;
 * both loaders detect that. No index.json: podman would then read the tar as an OCI archive
 * and name images by ref.name instead of the RepoTags given here.
 */
export async function writeDockerArchive(file: string, variants: BuiltVariant[], digestMap: DigestMap, store: BlobStore, fetcher: BlobFetcher): Promise<void> {
  // The format holds one image per name: a multi-platform variant contributes the image for
  // this machine's platform (or its first one).
  const images: BuiltImage[] = variants.map((v) => v.images.find((i) => platformMatches(hostPlatform(), i.platform)) ?? v.images[0]!);
  const blobs = new Map<Digest, number>();
  const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  for (const img of images) {
    await Promise.all(img.layers.map((l) => fetcher.ensureLocal(l.descriptor.digest, l.source)));
    for (const l of img.layers) blobs.set(l.descriptor.digest, l.descriptor.size);
    blobs.set(img.configDescriptor.digest, img.configDescriptor.size);
    blobs.set(img.manifestDescriptor.digest, img.manifestDescriptor.size);
    manifest.push({
      Config: blobPath(img.configDescriptor.digest),
      RepoTags: repoTags(img.variant, digestMap),
      Layers: img.layers.map((l) => blobPath(l.descriptor.digest)),
    });
  }
  const entries: LayerEntry[] = [
    { path: '/blobs', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
    { path: '/blobs/sha256', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
    small('/manifest.json', JSON.stringify(manifest)),
    ...[...blobs].map(([d, size]): LayerEntry => ({ path: `/${blobPath(d)}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size, open: () => store.open(d) })),
  ];
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await pipeline(createTarStream(entries, new Date(0)), createWriteStream(tmp));
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function blobPath(d: Digest): string {
  return `blobs/sha256/${digestHex(d)}`;
}

function small(path: string, text: string): LayerEntry {
  const b = Buffer.from(text, 'utf8');
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: b.length, open: () => Readable.from([b]) };
}

/** The tags of the run, or <image>:<variant> (localhost/<variant> when the variant has no image). */
function repoTags(variant: string, map: DigestMap): string[] {
  const e = map[variant];
  if (e?.tags.length) return e.tags;
  const image = e && e.image !== variant ? e.image : `localhost/${variant}`;
  return [`${image}:${variant}`];
}
