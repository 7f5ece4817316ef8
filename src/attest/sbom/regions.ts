/**
 * Keeping a few byte ranges of a file while it streams by, and finding a marker across chunk
 * boundaries: how executables are read for their package records without holding them whole.
 */

/** A byte range [start, start + length) of a streamed file, copied out as the chunks pass. */
export class Region {
  readonly buf: Buffer;
  private filled = 0;

  constructor(
    readonly start: number,
    readonly length: number,
  ) {
    this.buf = Buffer.alloc(length);
  }

  /** `chunk` holds the file's bytes from offset `at`. */
  feed(chunk: Buffer, at: number): void {
    const from = Math.max(this.start, at);
    const to = Math.min(this.start + this.length, at + chunk.length);
    if (to <= from) return;
    chunk.copy(this.buf, from - this.start, from - at, to - at);
    this.filled += to - from;
  }

  get done(): boolean {
    return this.filled >= this.length;
  }
}

/** Finds every occurrence of `marker` in a stream of chunks, including those split between two chunks. */
export class MarkerSearch {
  private carry = Buffer.alloc(0);
  readonly found: number[] = [];

  constructor(
    private readonly marker: Buffer,
    private readonly max = 8,
  ) {}

  /** `chunk` holds the file's bytes from offset `at`; returns the offsets found in it. */
  feed(chunk: Buffer, at: number): number[] {
    if (this.found.length >= this.max) return [];
    const hits: number[] = [];
    const add = (offset: number) => {
      if (this.found.length >= this.max) return;
      hits.push(offset);
      this.found.push(offset);
    };
    // A marker split between the last chunk and this one: search only the seam, not a copy of the chunk.
    if (this.carry.length) {
      const seam = Buffer.concat([this.carry, chunk.subarray(0, this.marker.length - 1)]);
      for (let i = seam.indexOf(this.marker); i >= 0; i = seam.indexOf(this.marker, i + 1)) add(at - this.carry.length + i);
    }
    for (let i = chunk.indexOf(this.marker); i >= 0 && this.found.length < this.max; i = chunk.indexOf(this.marker, i + 1)) add(at + i);
    const keep = Math.min(chunk.length, this.marker.length - 1);
    this.carry = Buffer.from(chunk.subarray(chunk.length - keep));
    return hits;
  }
}
