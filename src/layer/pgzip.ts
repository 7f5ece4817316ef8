import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, deflateRaw } from 'node:zlib';
import { promisify } from 'node:util';
import { availableParallelism } from 'node:os';

const deflateRawAsync = promisify(deflateRaw) as (buf: Buffer, opts: object) => Promise<Buffer>;

/** Chunks in flight by default: two per core keeps every core busy while results are written. */
export function defaultParallelism(): number {
  return Math.max(2, availableParallelism() * 2);
}

/** Uncompressed bytes per chunk: fixed, so the output never depends on scheduling. */
export const PGZIP_CHUNK = 1 << 20;
/** Deflate's window: each chunk is primed with this much of the data before it. */
const WINDOW = 32 << 10;

/** gzip member header: no name, no time (MTIME 0), OS 3 (Unix), as `gzip -n` writes on Linux. */
function header(level: number): Buffer {
  const xfl = level >= 9 ? 2 : level <= 1 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]);
}

/**
 * Parallel gzip in the way of pigz: the input is cut into fixed 1 MiB chunks, each chunk is
 * raw-deflated on zlib's thread pool with the previous 32 KiB as its dictionary and ends on a
 * sync flush (the last one finishes the stream), and the pieces are written in order as one
 * ordinary gzip member. Any gzip reader reads it; the bytes depend only on the input and the
 * level, never on how many chunks ran at once. At most `parallel` chunks are in memory.
 */
export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private tail: Buffer = Buffer.alloc(0);
  private crc = 0;
  private size = 0;
  private readonly queue: Promise<Buffer>[] = [];
  private started = false;
  private readonly parallel: () => number;

  /**
   * @param parallel how many chunks may be compressing at once; a function is asked again
   *   before each chunk (a speculative layer leaves the cores to the base scan until it is done).
   */
  constructor(
    private readonly level: number,
    parallel: number | (() => number) = defaultParallelism(),
  ) {
    super();
    this.parallel = typeof parallel === 'number' ? () => parallel : parallel;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.drainFull().then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    (async () => {
      await this.drainFull();
      const rest = Buffer.concat(this.pending);
      this.pending = [];
      this.pendingBytes = 0;
      this.enqueue(rest, true);
      while (this.queue.length) this.push(await this.queue.shift()!);
      const trailer = Buffer.alloc(8);
      trailer.writeUInt32LE(this.crc >>> 0, 0);
      trailer.writeUInt32LE(this.size % 2 ** 32, 4);
      this.push(trailer);
    })().then(() => cb(), cb);
  }

  /** Starts every full chunk; waits (writing finished pieces out) while too many are running. */
  private async drainFull(): Promise<void> {
    while (this.pendingBytes >= PGZIP_CHUNK) {
      // One copy of exactly a chunk; what is left of the last buffer it took stays a view.
      const chunk = Buffer.concat(this.pending, PGZIP_CHUNK);
      const rest: Buffer[] = [];
      let skip = PGZIP_CHUNK;
      for (const b of this.pending) {
        if (skip >= b.length) {
          skip -= b.length;
          continue;
        }
        rest.push(skip > 0 ? b.subarray(skip) : b);
        skip = 0;
      }
      this.pending = rest;
      this.pendingBytes -= PGZIP_CHUNK;
      this.enqueue(chunk, false);
      while (this.queue.length >= Math.max(1, this.parallel())) this.push(await this.queue.shift()!);
    }
  }

  private enqueue(chunk: Buffer, last: boolean): void {
    if (!this.started) {
      this.push(header(this.level));
      this.started = true;
    }
    this.crc = crc32(chunk, this.crc);
    this.size += chunk.length;
    const dictionary = this.tail;
    this.tail = chunk.length >= WINDOW ? chunk.subarray(chunk.length - WINDOW) : Buffer.concat([dictionary, chunk]).subarray(-WINDOW);
    const opts = {
      level: this.level,
      // Room for the whole piece (stored blocks of incompressible data add a little), so each
      // chunk is one job on the thread pool instead of a round trip per 16 KiB of output.
      chunkSize: chunk.length + (chunk.length >> 4) + 1024,
      ...(dictionary.length ? { dictionary } : {}),
      finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    };
    const p = deflateRawAsync(chunk, opts);
    p.catch(() => {
      /* surfaced when awaited in order */
    });
    this.queue.push(p);
  }
}
