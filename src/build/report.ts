import type { Digest } from '../oci/digest.js';

/**
 * How a layer of a built image came to be:
 * - built: written by this run;
 * - cached: taken from the layer cache (for a run: step, the command did not run);
 * - shared: written once in this run for another variant or platform, and reused;
 * - speculated: written during the base scan on a guess that turned out right;
 * - base: a layer of the base image;
 * - from: a layer of the variant this one starts from.
 */
export type LayerOrigin = 'built' | 'cached' | 'shared' | 'speculated' | 'base' | 'from';

/** One layer of one built image, for the pipeline's result and the CLI's --verbose output. */
export interface LayerReport {
  variant: string;
  /** os/arch[/variant] */
  platform: string;
  /** Index in the image's layers, bottom first. */
  index: number;
  digest: Digest;
  createdBy: string;
  origin: LayerOrigin;
  /** Cached: taken from a registry record (its blob is in the registry, not made or stored here). */
  fromRegistry?: true;
}
