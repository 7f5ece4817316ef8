import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Digest } from '../oci/digest.js';

export interface DigestMapEntry {
  /** Repository the image is (or would be) pushed to; the variant name when it has none. */
  image: string;
  digest: Digest;
  /** OCI index for multi-platform variants, OCI manifest otherwise. */
  mediaType: string;
  /** Multi-platform variants: each platform's manifest (os/arch[/variant] -> digest, size). */
  platforms?: Record<string, { digest: Digest; size: number }>;
  /** image@digest: the reference to pin. */
  ref: string;
  /** Full references of the tags written (or that would be written without push). */
  tags: string[];
  /** Bytes a pull transfers at most: manifest + config + compressed layers. */
  size: number;
  /** Provenance and SBOM artifact manifests, by the digest of the image (platform manifest or index) they describe. */
  attestations?: Record<string, Partial<Record<'provenance' | 'sbom', Digest>>>;
  /** Set when the image was pushed in this run. */
  pushed: boolean;
}

export type DigestMap = Record<string, DigestMapEntry>;

/** Records what was built and published; serializes with sorted keys so files diff cleanly. */
export class DigestMapRecorder {
  private readonly entries = new Map<string, DigestMapEntry>();

  record(variant: string, entry: DigestMapEntry): void {
    this.entries.set(variant, entry);
  }

  toJSON(): DigestMap {
    return Object.fromEntries([...this.entries.keys()].sort().map((k) => [k, sortKeys(this.entries.get(k)!)])) as DigestMap;
  }

  digests(): Record<string, Digest> {
    return Object.fromEntries([...this.entries.keys()].sort().map((k) => [k, this.entries.get(k)!.digest]));
  }

  async write(path: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, `${JSON.stringify(this.toJSON(), null, 2)}\n`);
  }
}

function sortKeys<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}
