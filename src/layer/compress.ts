import { Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { MediaType } from '../oci/mediatypes.js';
import { defaultParallelism, ParallelGzip } from './pgzip.js';

/** How new layers are compressed: the algorithm and its level. */
export interface LayerCompression {
  algorithm: 'gzip' | 'zstd';
  /** gzip: 0-9; zstd: 1-19. */
  level: number;
}

export const DEFAULT_ZSTD_LEVEL = 3;

interface ZstdZlib {
  createZstdCompress(opts: { params: Record<number, number>; chunkSize?: number }): Transform;
  constants: Record<string, number>;
}

/** True when this Node.js has zlib's zstd (22.15+ / 23.8+; the action's node24 has it). */
export function zstdAvailable(): boolean {
  return typeof (zlib as unknown as Partial<ZstdZlib>).createZstdCompress === 'function';
}

/** A problem with the settings (names the option and the fix), or undefined when they are usable. */
export function compressionProblem(c: LayerCompression, what: { algorithm: string; level: string }): string | undefined {
  if (c.algorithm === 'gzip') {
    if (!Number.isInteger(c.level) || c.level < 0 || c.level > 9) return `${what.level} must be an integer 0-9 for gzip, got ${c.level}`;
    return undefined;
  }
  if (c.algorithm !== 'zstd') return `${what.algorithm} must be gzip or zstd, got "${String(c.algorithm)}"`;
  if (!Number.isInteger(c.level) || c.level < 1 || c.level > 19) return `${what.level} must be an integer 1-19 for zstd, got ${c.level}`;
  if (!zstdAvailable()) {
    return `${what.algorithm}: zstd needs Node.js with zlib zstd support (22.15+ or 23.8+; the action runs on node24), this is ${process.version}; use gzip or a newer Node.js`;
  }
  return undefined;
}

export function layerMediaType(c: LayerCompression): string {
  return c.algorithm === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayerGzip;
}

/**
 * The stages a layer's tar goes through to be compressed. gzip: pigz-style on all cores
 * (src/layer/pgzip.ts), which cuts its own chunks. zstd: one standard frame from zlib's zstd on
 * the thread pool; about three times faster than gzip -1 for smaller output, so one thread per
 * layer is enough (layers compress concurrently). Not zstd's own workers and not one frame per
 * chunk: Node's zstd stream fails with workers, and its decompressor stops after the first frame,
 * so multi-frame layers would be cut short by every Node-based reader. zstd's output depends on
 * the sizes of the writes it is given (a big write is compressed in place, small ones through its
 * window), and the tar's pieces depend on scheduling (a byte stream may hand over several at
 * once), so zstd gets fixed 1 MiB writes: the same bytes for the same content, every time.
 */
export function compressionStages(c: LayerCompression, parallel?: () => number): Transform[] {
  if (c.algorithm === 'gzip') return [new ParallelGzip(c.level, parallel ?? defaultParallelism())];
  return [new FixedWrites(ZSTD_WRITE_BYTES), createZstd(c)];
}

const ZSTD_WRITE_BYTES = 1 << 20;

/** Re-cuts a byte stream into pieces of exactly `size` bytes (the last one shorter). */
export class FixedWrites extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly size: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.size) {
      let all = Buffer.concat(this.pending, this.pendingBytes);
      while (all.length >= this.size) {
        this.push(all.subarray(0, this.size));
        all = all.subarray(this.size);
      }
      this.pending = all.length ? [all] : [];
      this.pendingBytes = all.length;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    if (this.pendingBytes) this.push(Buffer.concat(this.pending, this.pendingBytes));
    done();
  }
}

function createZstd(c: LayerCompression): Transform {
  const z = zlib as unknown as ZstdZlib;
  if (!zstdAvailable()) throw new Error(compressionProblem(c, { algorithm: 'compression', level: 'level' }));
  return z.createZstdCompress({
    // Output in 1 MiB pieces (the default 16 KiB costs a thread-pool round trip each).
    chunkSize: 1 << 20,
    params: {
      [z.constants.ZSTD_c_compressionLevel!]: c.level,
      // The size is not known up front and no checksum is added (the layer digest covers
      // integrity); the writes' sizes are fixed by compressionStages.
      [z.constants.ZSTD_c_checksumFlag!]: 0,
    },
  });
}
