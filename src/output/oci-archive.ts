import { resolve } from 'node:path';
import { digestHex } from '../oci/digest.js';
import type { LayerEntry } from '../layer/types.js';
import { createTarStream } from '../layer/tarwriter.js';
import { writeAtomic } from '../cache/atomic.js';
import { layoutContents } from './oci-layout.js';
import type { Sink, SinkImage, SinkKind } from './sink.js';
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
    const layout = layoutContents(images.map((i) => i.variant));
    const entries: LayerEntry[] = [
      bytesEntry('/oci-layout', layout.ociLayout),
      bytesEntry('/index.json', layout.indexJson),
      dirEntry('/blobs'),
      dirEntry('/blobs/sha256'),
      ...layout.blobs.map((b) => streamEntry(`/blobs/sha256/${digestHex(b.digest)}`, b.size, () => b.open())),
    ];
    await writeAtomic(this.file, createTarStream(entries, new Date(0)));
  }
}

export const ociArchiveKind: SinkKind = {
  prefix: 'oci-archive',
  usage: 'FILE (an OCI layout in one tar)',
  create: (path) => new OciArchiveSink(resolve(path)),
};
