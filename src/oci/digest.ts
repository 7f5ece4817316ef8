import { createHash, type Hash } from 'node:crypto';

export type Digest = `sha256:${string}`;

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function hashDigest(h: Hash): Digest {
  return `sha256:${h.digest('hex')}`;
}

export function digestHex(d: string): string {
  if (!isDigest(d)) throw new Error(`not a sha256 digest: ${d}`);
  return d.slice('sha256:'.length);
}

/** Canonical JSON bytes for a document we write: stable key order as given, no whitespace. */
export function jsonBytes(doc: unknown): Buffer {
  return Buffer.from(JSON.stringify(doc), 'utf8');
}
