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

/** An image from its documents; what a pull of it transfers at most follows from them. */
export function builtImage(parts: Omit<BuiltImage, 'totalSize'>): BuiltImage {
  const layerBytes = parts.manifest.layers.reduce((n, l) => n + l.size, 0);
  return { ...parts, totalSize: parts.manifestBytes.length + parts.configBytes.length + layerBytes };
}

/** A variant: tagged by its index when it has one, else by its one image's manifest. */
export function builtVariant(variant: string, images: BuiltImage[], index?: { bytes: Buffer; descriptor: Descriptor }): BuiltVariant {
  const imageSizes = images.reduce((n, i) => n + i.totalSize, 0);
  if (index)
    return { variant, images, index, tagged: index.descriptor, taggedBytes: index.bytes, totalSize: imageSizes + index.bytes.length };
  const only = images[0]!;
  return { variant, images, tagged: only.manifestDescriptor, taggedBytes: only.manifestBytes, totalSize: imageSizes };
}
