import { resolve } from 'node:path';
import { digestHex, type Digest } from '../oci/digest.js';
import type { LayerEntry } from '../layer/types.js';
import { createTarStream } from '../layer/tarwriter.js';
import { hostPlatform, platformMatches } from '../oci/platform.js';
import { writeAtomic } from '../cache/atomic.js';
import type { Sink, SinkImage, SinkKind } from './sink.js';
import { bytesEntry, dirEntry, streamEntry } from './tar-entries.js';

/**
 * Writes a tar that `podman load` and `docker load` accept: Docker's manifest.json pointing
 * at blobs/sha256/* (the paths Docker 25+ `docker save` uses). Layers are stored as they are
 * (gzip or zstd); both loaders detect the compression. No index.json: podman would then read
 * the tar as an OCI archive and name images by ref.name instead of the RepoTags given here.
 */
export class DockerArchiveSink implements Sink {
  readonly description: string;

  constructor(private readonly file: string) {
    this.description = `docker archive ${file}`;
  }

  async write(images: SinkImage[]): Promise<void> {
    // The format holds one image per name: a multi-platform variant contributes the image for
    // this machine's platform (or its first one).
    const chosen = images.map((i) => ({
      target: i,
      img: i.variant.images.find((m) => platformMatches(hostPlatform(), m.platform)) ?? i.variant.images[0]!,
    }));
    const blobs = new Map<Digest, LayerEntry>();
    const manifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
    for (const { target, img } of chosen) {
      for (const l of img.layers) {
        if (!blobs.has(l.descriptor.digest))
          blobs.set(
            l.descriptor.digest,
            streamEntry(`/${blobPath(l.descriptor.digest)}`, l.descriptor.size, () => l.open()),
          );
      }
      blobs.set(img.configDescriptor.digest, bytesEntry(`/${blobPath(img.configDescriptor.digest)}`, img.configBytes));
      blobs.set(img.manifestDescriptor.digest, bytesEntry(`/${blobPath(img.manifestDescriptor.digest)}`, img.manifestBytes));
      manifest.push({
        Config: blobPath(img.configDescriptor.digest),
        RepoTags: repoTags(target),
        Layers: img.layers.map((l) => blobPath(l.descriptor.digest)),
      });
    }
    const entries: LayerEntry[] = [
      dirEntry('/blobs'),
      dirEntry('/blobs/sha256'),
      bytesEntry('/manifest.json', JSON.stringify(manifest)),
      ...blobs.values(),
    ];
    await writeAtomic(this.file, createTarStream(entries, new Date(0)));
  }
}

function blobPath(d: Digest): string {
  return `blobs/sha256/${digestHex(d)}`;
}

/** The tags of the run, or <image>:<variant> (localhost/<variant> when the variant has no image). */
function repoTags(target: SinkImage): string[] {
  if (target.tags.length) return target.tags.map((t) => `${target.image}:${t}`);
  const image = target.image !== target.variant.variant ? target.image : `localhost/${target.variant.variant}`;
  return [`${image}:${target.variant.variant}`];
}

export const dockerArchiveKind: SinkKind = {
  prefix: 'docker-archive',
  usage: 'FILE (for podman load / docker load)',
  create: (path) => new DockerArchiveSink(resolve(path)),
};
