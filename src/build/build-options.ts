/** What the builder is given (BuildOptions), what it tells (LayerKeyEvent), and what it does (Builder). */
import type { LayerKeyEvent } from '../cache/key-journal.js';
import type { Readable } from 'node:stream';
import type { BuildFile, VariantSpec } from '../config/model.js';
import type { RemoteLayers } from '../cache/layer-cache.js';
import type { LayerCompression } from '../layer/compress.js';
import type { Logger } from '../log.js';
import type { Digest } from '../oci/digest.js';
import type { Platform } from '../oci/types.js';
import type { Progress } from '../progress/progress.js';
import type { IsolationChoice } from '../run/sandbox.js';
import type { BuiltImage } from '../image/image.js';
import type { BaseTreeReader } from './base-scan.js';

export interface BuildOptions {
  /** SOURCE_DATE_EPOCH: seconds; timestamps of layers and configs. Unset means the epoch. */
  sourceDateEpoch?: number;
  /** How new layers are compressed (checked by the plan). */
  compression: LayerCompression;
  logger: Logger;
  /** Where a variant's progress goes (the pipeline buffers it to print one group per variant). */
  variantLogger?: (variant: string) => Logger;
  /** The layer cache's directory; undefined turns the cache off (--no-cache). */
  cacheDir?: string;
  /** How run: steps are isolated (src/run/sandbox.ts); default auto. */
  isolation?: IsolationChoice;
  /** Consulted on a layer cache miss: the registry's records (src/cache/registry-cache.ts). */
  remoteLayers?: RemoteLayers;
  /** Layers being compressed and base layers being fetched are reported here. */
  progress?: Progress;
  /** --rebuild-from: per variant, the step index (0-based) from which the layer cache is ignored. */
  rebuildFrom?: ReadonlyMap<string, number>;
  /** Told what each new layer was keyed by (the key journal `plan --explain` compares against). */
  onLayerKey?: (at: LayerKeyEvent) => void;
  /** Secret values by id for RUN --mount=type=secret (never logged, never in a key or layer). */
  secrets?: ReadonlyMap<string, Buffer>;
  /** Served by the base scan's pass over the base layers (the SBOM's inventory). */
  baseTreeReader?: BaseTreeReader;
  /**
   * Checks a registry record's layer against its recorded diffID in a pass that serves another
   * reader too (the SBOM's inventory); default: the diffID alone is computed.
   */
  recordLayerCheck?: (diffId: Digest, open: () => Promise<Readable>) => Promise<boolean>;
  /**
   * Record each copy, file and dir layer under its chain key too (src/build/chain-key.ts): when
   * the registry's records are written, for the fresh runners that read them.
   */
  chainKeys?: boolean;
}

export type { LayerKeyEvent };

/** Builds images. A publisher (registry, OCI layout, archive) takes the result from here. */
export interface Builder {
  /** Builds each variant for each of its platforms; images come back in the platforms' order. */
  build(bf: BuildFile, variants: VariantSpec[], platformsOf: (v: VariantSpec) => Platform[]): Promise<Map<string, BuiltImage[]>>;
}
