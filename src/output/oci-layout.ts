import { copyFile, link, mkdir, readFile, writeFile, constants } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { MediaType } from '../oci/mediatypes.js';
import { digestHex, type Digest } from '../oci/digest.js';
import type { Descriptor, Index } from '../oci/types.js';
import type { BuiltVariant } from '../image/image.js';
import { writeAtomic } from '../cache/atomic.js';
import type { Sink, SinkImage, SinkKind } from './sink.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';

/** A blob of a layout: its digest and size, and how to read it (or link it, when it is a file). */
export interface LayoutBlob {
  digest: Digest;
  size: number;
  open(): Promise<Readable>;
  file?(): Promise<string>;
}

/** Every blob the variants need, once each: layers, configs, manifests, indexes. */
export function layoutBlobs(variants: readonly BuiltVariant[]): LayoutBlob[] {
  const blobs = new Map<Digest, LayoutBlob>();
  const bytes = (d: Descriptor, b: Buffer): LayoutBlob => ({
    digest: d.digest,
    size: d.size,
    open: () => Promise.resolve(Readable.from([b])),
  });
  for (const v of variants) {
    for (const img of v.images) {
      for (const l of img.layers) {
        if (!blobs.has(l.descriptor.digest))
          blobs.set(l.descriptor.digest, {
            digest: l.descriptor.digest,
            size: l.descriptor.size,
            open: () => l.open(),
            ...(l.file ? { file: () => l.file!() } : {}),
          });
      }
      blobs.set(img.configDescriptor.digest, bytes(img.configDescriptor, img.configBytes));
      blobs.set(img.manifestDescriptor.digest, bytes(img.manifestDescriptor, img.manifestBytes));
    }
    if (v.index) blobs.set(v.index.descriptor.digest, bytes(v.index.descriptor, v.index.bytes));
  }
  return [...blobs.values()];
}

/**
 * The layout's index.json: `previous` (an existing layout's) with the entries of these variants
 * replaced or added, each named (ref.name) by its variant.
 */
export function layoutIndex(variants: readonly BuiltVariant[], previous?: Index): Index {
  const names = new Set(variants.map((v) => v.variant));
  const kept = (previous?.manifests ?? []).filter((m) => !names.has(m.annotations?.[REF_NAME] ?? ''));
  const added: Descriptor[] = variants.map((v) => ({
    mediaType: v.tagged.mediaType,
    digest: v.tagged.digest,
    size: v.tagged.size,
    ...(v.tagged.platform ? { platform: v.tagged.platform } : {}),
    annotations: { [REF_NAME]: v.variant },
  }));
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...kept, ...added] };
}

export const OCI_LAYOUT_FILE = `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`;

/** What a layout holds for these variants, in a directory or in one tar: its two files and its blobs. */
export function layoutContents(
  variants: readonly BuiltVariant[],
  previous?: Index,
): { ociLayout: string; indexJson: string; blobs: LayoutBlob[] } {
  return { ociLayout: OCI_LAYOUT_FILE, indexJson: `${JSON.stringify(layoutIndex(variants, previous))}\n`, blobs: layoutBlobs(variants) };
}

/**
 * Writes images into an OCI image layout directory, each tagged (ref.name) by variant.
 * An existing layout is updated: entries with the same ref name are replaced, others kept.
 */
export class OciLayoutSink implements Sink {
  readonly description: string;

  constructor(private readonly dir: string) {
    this.description = `OCI layout ${dir} (ref names = variant names)`;
  }

  async write(images: SinkImage[]): Promise<void> {
    const variants = images.map((i) => i.variant);
    let previous: Index | undefined;
    try {
      previous = JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8')) as Index;
    } catch {
      /* new layout */
    }
    const layout = layoutContents(variants, previous);
    const blobDir = join(this.dir, 'blobs', 'sha256');
    await mkdir(blobDir, { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), layout.ociLayout);
    for (const blob of layout.blobs) await placeBlob(blob, join(blobDir, digestHex(blob.digest)));
    // index.json last: a reader never sees an entry whose blobs are not there yet.
    await writeAtomic(join(this.dir, 'index.json'), layout.indexJson);
  }
}

/** Hard-links a blob when it is a file on the same file system, copies otherwise. Blobs never change. */
async function placeBlob(blob: LayoutBlob, to: string): Promise<void> {
  if (blob.file) {
    const from = await blob.file();
    try {
      await link(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
      await copyFile(from, to, constants.COPYFILE_FICLONE);
    }
    return;
  }
  if (!existsSync(to)) await writeAtomic(to, await blob.open());
}

export const ociLayoutKind: SinkKind = {
  prefix: 'oci',
  usage: 'DIR (an OCI image layout)',
  create: (path) => new OciLayoutSink(resolve(path)),
};
