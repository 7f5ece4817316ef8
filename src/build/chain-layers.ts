import type { Layer } from '../oci/layer.js';
import type { ChainLayer } from '../run/rootfs.js';

/** A layer as the rootfs cache applies it; `label` names it in the cache's messages. */
export function chainLayer(l: Layer, label: string): ChainLayer {
  return { diffId: l.diffId, label: `${label} (${l.descriptor.digest.slice(0, 19)})`, open: () => l.open() };
}

/** An image's layers (bottom first) as a rootfs chain, base layers named by their position. */
export function chainOf(layers: readonly Layer[]): ChainLayer[] {
  return layers.map((l, i) =>
    chainLayer(l, l.createdBy === 'base' ? `base layer ${i + 1} of ${layers.length}` : l.createdBy.replace(/^oci-build /, '')),
  );
}
