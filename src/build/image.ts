import type { Digest } from '../oci/digest.js';
import type { Descriptor, ImageConfig, Manifest, Platform } from '../oci/types.js';
import type { RepoRef } from '../registry/client.js';

/** Where a layer's bytes can be had: our local blob store, or a repository of some registry. */
export type BlobSource = { kind: 'local' } | { kind: 'remote'; repo: RepoRef };

export interface ImageLayer {
  /** Descriptor as it appears in our manifest (OCI media type). */
  descriptor: Descriptor;
  diffId: Digest;
  source: BlobSource;
  /** Human description of the step that made it, or "base". */
  createdBy: string;
}

/** One built, single-platform image: everything a publisher needs, nothing pushed yet. */
export interface BuiltImage {
  variant: string;
  platform: Platform;
  config: ImageConfig;
  configBytes: Buffer;
  configDescriptor: Descriptor;
  layers: ImageLayer[];
  manifest: Manifest;
  manifestBytes: Buffer;
  manifestDescriptor: Descriptor;
  /** Layers this build wrote itself (the rest came from the base or a `from` variant). */
  newLayers: number;
  /** Sum of manifest, config and layer sizes: what a pull of this image transfers at most. */
  totalSize: number;
}

/**
 * A variant's result: one image per platform, and the descriptor that tags point at
 * (an OCI index when the variant has platforms, else its one manifest).
 */
export interface BuiltVariant {
  variant: string;
  images: BuiltImage[];
  index?: { bytes: Buffer; descriptor: Descriptor };
  /** What the variant's tags and digest-map entry point at. */
  top: Descriptor;
  topBytes: Buffer;
  /** Everything a pull of all platforms transfers at most. */
  totalSize: number;
}
