// Deterministic content generators: the same seed gives the same bytes on every machine.
// Random bytes come from an AES-256-CTR keystream (fast, seeded by sha256(seed)).
import { createCipheriv, createHash } from 'node:crypto';

const ZERO = Buffer.alloc(1 << 20);

export class Rand {
  constructor(seed) {
    const key = createHash('sha256').update(`bench-seed:${seed}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    this.buf = Buffer.alloc(0);
    this.pos = 0;
  }

  /** n pseudo-random bytes (a fresh Buffer). */
  bytes(n) {
    const parts = [];
    let left = n;
    while (left > 0) {
      const k = Math.min(left, ZERO.length);
      parts.push(this.cipher.update(k === ZERO.length ? ZERO : ZERO.subarray(0, k)));
      left -= k;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts, n);
  }

  u32() {
    if (this.pos + 4 > this.buf.length) {
      this.buf = this.cipher.update(ZERO.subarray(0, 65536));
      this.pos = 0;
    }
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Integer in [0, n). */
  int(n) {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** Float in [0, 1). */
  float() {
    return this.u32() / 0x1_0000_0000;
  }

  /** Log-uniform integer in [lo, hi]. */
  logUniform(lo, hi) {
    return Math.round(Math.exp(Math.log(lo) + this.float() * (Math.log(hi) - Math.log(lo))));
  }

  pick(xs) {
    return xs[this.int(xs.length)];
  }
}

/**
 * A pool of text-like bytes (source code / YAML / prose with a limited vocabulary):
 * compresses with gzip -6 to roughly a third, as real text does.
 */
export function textPool(seed, size) {
  const r = new Rand(`text:${seed}`);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  const vocab = [];
  for (let i = 0; i < 1200; i++) {
    const len = 2 + r.int(9);
    let w = '';
    // Skewed letter choice, as in natural text.
    for (let j = 0; j < len; j++) w += letters[Math.min(letters.length - 1, Math.floor(-Math.log(1 - r.float()) * 5))];
    vocab.push(w);
  }
  const punct = [' ', ' ', ' ', ' ', ' ', ', ', '. ', ': ', '(', ') ', ' = ', '_', '.', '; '];
  const chunks = [];
  let total = 0;
  while (total < size) {
    const indent = ' '.repeat(2 * r.int(5));
    const words = 3 + r.int(12);
    let line = indent;
    for (let i = 0; i < words; i++) {
      // Zipf-ish: low indices much more frequent.
      const idx = Math.floor(vocab.length * r.float() ** 4);
      line += vocab[idx] + (i < words - 1 ? punct[r.int(punct.length)] : '');
    }
    if (r.int(8) === 0) line += ` # ${r.u32().toString(16)}`;
    line += '\n';
    chunks.push(line);
    total += line.length;
  }
  return Buffer.from(chunks.join(''), 'latin1').subarray(0, size);
}

/**
 * Bytes shaped like an executable: a mix of machine-code-like blocks (skewed byte
 * distribution), string tables (text), copies of recent blocks with a few changes (what
 * LZ77 finds in code), and incompressible blocks (compressed data, hashes).
 * gzip -6 gets it to a bit under half, as with real binaries.
 */
export function binaryLike(seed, size, pool = textPool(`bin-pool:${seed}`, 4 << 20)) {
  const r = new Rand(`bin:${seed}`);
  const out = Buffer.alloc(size);
  // 64 common "opcode" bytes with repeats, zeros most frequent.
  const table = Buffer.from(
    Array.from({ length: 256 }, (_, i) => (i < 80 ? 0 : i < 112 ? 0xff : i < 136 ? 0x48 : i < 152 ? 0x89 : i < 168 ? 0x8b : r.int(64))),
  );
  const BLOCK = 4096;
  for (let off = 0; off < size; off += BLOCK) {
    const n = Math.min(BLOCK, size - off);
    const kind = r.int(100);
    if (kind < 22) {
      r.bytes(n).copy(out, off);
    } else if (kind < 55) {
      const rnd = r.bytes(n);
      for (let i = 0; i < n; i++) out[off + i] = table[rnd[i]];
    } else if (kind < 75) {
      const start = r.int(pool.length - n);
      pool.copy(out, off, start, start + n);
    } else {
      // Copy a block from up to 28 KiB back (inside gzip's window), then change a few bytes.
      const back = BLOCK * (1 + r.int(7));
      if (off >= back) {
        out.copy(out, off, off - back, off - back + n);
        const changes = r.bytes(32);
        for (let i = 0; i < 16; i++) out[off + ((changes[i] << 4) % n)] = changes[16 + i];
      } else {
        r.bytes(n).copy(out, off);
      }
    }
  }
  return out;
}
