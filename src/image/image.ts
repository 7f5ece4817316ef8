import type { Descriptor, ImageConfig, Manifest, Platform } from '../oci/types.js';
import type { Layer } from '../oci/layer.js';

/** One built, single-platform image: everything a publisher needs, nothing pushed yet. */
export interface BuiltImage {
  variant: string;
  platform: Platform;
  config: ImageConfig;
  configBytes: Buffer;
  configDescriptor: Descriptor;
  layers: Layer[];
  manifest: Manifest;
  manifestBytes: Buffer;
  manifestDescriptor: Descriptor;
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
  /** What the variant's tags and digest-map entry point at: its index, or its one manifest. */
  tagged: Descriptor;
  /** The bytes of `tagged`. */
  taggedBytes: Buffer;
  /** Everything a pull of all platforms transfers at most. */
  totalSize: number;
}
