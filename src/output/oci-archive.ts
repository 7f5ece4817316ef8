import { resolve } from 'node:path';
import { digestHex } from '../oci/digest.js';
import type { LayerEntry } from '../layer/types.js';
import { createTarStream } from '../layer/tarwriter.js';
import { writeAtomic } from '../cache/atomic.js';
import { layoutBlobs, layoutIndex, OCI_LAYOUT_FILE } from './oci-layout.js';
import type { Sink, SinkImage, SinkKind, SinkReferrer } from './sink.js';
import { bytesEntry, dirEntry, streamEntry } from './tar-entries.js';

/**
 * An OCI image layout in one tar (what `skopeo copy oci-archive:` and `podman load` read):
 * oci-layout, index.json naming each variant (ref.name), and every blob once. Unlike the
 * docker archive it keeps multi-platform variants whole (their index and every platform).
 */
export class OciArchiveSink implements Sink {
  readonly description: string;

  constructor(private readonly file: string) {
    this.description = `OCI archive ${file} (ref names = variant names)`;
  }

  async write(images: SinkImage[]): Promise<void> {
    const variants = images.map((i) => i.variant);
    const blobs = layoutBlobs(variants);
    const index = layoutIndex(variants);
    // Referrers as in the OCI layout output: listed in index.json (artifactType, no ref name), found by their subject.
    const referrers = referrerBlobs(
      images.flatMap((i) => i.referrers ?? []),
      new Set(blobs.map((b) => b.digest)),
    );
    index.manifests.push(...referrers.descriptors);
    const entries: LayerEntry[] = [
      bytesEntry('/oci-layout', OCI_LAYOUT_FILE),
      bytesEntry('/index.json', `${JSON.stringify(index)}\n`),
      dirEntry('/blobs'),
      dirEntry('/blobs/sha256'),
      ...blobs.map((b) => streamEntry(`/blobs/sha256/${digestHex(b.digest)}`, b.size, () => b.open())),
      ...referrers.entries,
    ];
    await writeAtomic(this.file, createTarStream(entries, new Date(0)));
  }
}

/** The referrers' index entries and their blobs' tar entries, each blob once (the empty config is shared). */
function referrerBlobs(referrers: SinkReferrer[], have: Set<string>): { descriptors: SinkReferrer['descriptor'][]; entries: LayerEntry[] } {
  const descriptors: SinkReferrer['descriptor'][] = [];
  const entries: LayerEntry[] = [];
  const add = (digest: string, bytes: Buffer) => {
    if (have.has(digest)) return;
    have.add(digest);
    entries.push(bytesEntry(`/blobs/sha256/${digestHex(digest)}`, bytes));
  };
  for (const r of referrers) {
    if (have.has(r.descriptor.digest)) continue;
    for (const b of r.blobs) add(b.digest, b.bytes);
    add(r.descriptor.digest, r.bytes);
    descriptors.push(r.descriptor);
  }
  return { descriptors, entries };
}

export const ociArchiveKind: SinkKind = {
  prefix: 'oci-archive',
  usage: 'FILE (an OCI layout in one tar)',
  create: (path) => new OciArchiveSink(resolve(path)),
};
