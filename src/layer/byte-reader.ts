/**
 * Pull-based reading of exact byte counts from an async stream of chunks, for the parsers of
 * framed formats (tar entries, zstd frames): `read(n)` for headers, `stream(n)` for bodies,
 * which are passed on in the pieces they arrive in (never gathered into one buffer).
 */
export class ByteReader {
  private chunks: Buffer[] = [];
  private length = 0;
  private done = false;
  private readonly it: AsyncIterator<Buffer>;

  /** `what` names the format in errors ("tar", "zstd stream"). */
  constructor(
    src: AsyncIterable<Buffer>,
    private readonly what: string,
  ) {
    this.it = src[Symbol.asyncIterator]();
  }

  /** Buffers until at least n bytes are available or the input ends; returns what is available. */
  private async fill(n: number): Promise<number> {
    while (this.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      if (r.value.length) {
        this.chunks.push(r.value);
        this.length += r.value.length;
      }
    }
    return Math.min(this.length, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.length = rest.length;
    return out;
  }

  /** Exactly n bytes, or undefined at a clean end of input (no byte at all); throws when cut short. */
  async read(n: number): Promise<Buffer | undefined> {
    const got = await this.fill(n);
    if (got === 0 && n > 0) return undefined;
    if (got < n) throw new Error(`truncated ${this.what}: expected ${n} bytes, got ${got}`);
    return this.take(n);
  }

  /** Yields exactly n bytes in pieces as they arrive; throws when the input ends early. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.length === 0) {
        const got = await this.fill(1);
        if (got === 0) throw new Error(`truncated ${this.what}: ${left} bytes missing`);
      }
      const first = this.chunks[0]!;
      const piece = first.length <= left ? first : first.subarray(0, left);
      if (piece === first) this.chunks.shift();
      else this.chunks[0] = first.subarray(left);
      this.length -= piece.length;
      left -= piece.length;
      yield piece;
    }
  }

  /**
   * Reads the input to its end, dropping it: what follows a format's end marker (tar's zero
   * blocks) is read too, so a failure of the source (a cut compressed stream, a digest
   * mismatch found at the end) still surfaces.
   */
  async drain(): Promise<void> {
    this.chunks = [];
    this.length = 0;
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
    }
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}
