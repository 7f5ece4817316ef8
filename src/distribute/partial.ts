import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Digest } from '../oci/digest.js';
import type { DigestMapEntry } from '../output/digest-map.js';

/**
 * What one job of a distributed build publishes for the merge job: per variant, either the
 * per-platform manifests it pushed by digest (variants whose result is an index: the merge
 * assembles the index), or a finished digest-map entry (single-manifest variants, already
 * tagged by the job that built them).
 */
export interface PartialMap {
  kind: 'oci-build-partial';
  version: 1;
  /** sha256 of the build file's text: every job must have built from the same revision. */
  buildFile: string;
  /** Identifies the job (its variants and platforms), for messages. */
  job: string;
  variants: Record<string, PartialVariant>;
}

export interface PartialPlatform {
  digest: Digest;
  size: number;
  mediaType: string;
  /** Manifest + config + compressed layers of this platform's image. */
  totalSize: number;
  /** The platform variant as the image spells it (arm64's "v8", from its base), for the index entry. */
  variant?: string;
  /** The base image it was built on (for the index's provenance). */
  base?: { ref: string; digest: Digest };
}

/** Subject digest -> kind -> artifact manifest digest, as in the digest map. */
export type PartialAttestations = Record<string, Partial<Record<'provenance' | 'sbom', Digest>>>;

export type PartialVariant =
  | { kind: 'platforms'; image: string; platforms: Record<string, PartialPlatform>; attestations?: PartialAttestations }
  | { kind: 'entry'; entry: DigestMapEntry };

const digestRe = /^sha256:[a-f0-9]{64}$/;
const platformSchema = z.object({
  digest: z.string().regex(digestRe),
  size: z.number().int().nonnegative(),
  mediaType: z.string(),
  totalSize: z.number().int().nonnegative(),
  variant: z.string().optional(),
  base: z.object({ ref: z.string(), digest: z.string().regex(digestRe) }).optional(),
});
const attestationsSchema = z.record(
  z.string().regex(digestRe),
  z.object({ provenance: z.string().regex(digestRe).optional(), sbom: z.string().regex(digestRe).optional() }),
);
const entrySchema = z.object({
  image: z.string(),
  digest: z.string().regex(digestRe),
  mediaType: z.string(),
  ref: z.string(),
  tags: z.array(z.string()),
  size: z.number().int().nonnegative(),
  pushed: z.boolean(),
  platforms: z.record(z.string(), z.object({ digest: z.string().regex(digestRe), size: z.number().int().nonnegative() })).optional(),
  attestations: attestationsSchema.optional(),
});
const partialSchema = z.object({
  kind: z.literal('oci-build-partial'),
  version: z.literal(1),
  buildFile: z.string().regex(/^[a-f0-9]{64}$/),
  job: z.string(),
  variants: z.record(
    z.string(),
    z.union([
      z.object({
        kind: z.literal('platforms'),
        image: z.string(),
        platforms: z.record(z.string(), platformSchema),
        attestations: attestationsSchema.optional(),
      }),
      z.object({ kind: z.literal('entry'), entry: entrySchema }),
    ]),
  ),
});

export function buildFileHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function writePartial(path: string, partial: PartialMap): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(partial, null, 2)}\n`);
}

export async function readPartial(path: string): Promise<PartialMap> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`partial digest map ${path} is not readable JSON: ${(e as Error).message}`);
  }
  const r = partialSchema.safeParse(doc);
  if (!r.success) {
    throw new Error(
      `${path} is not a partial digest map written by oci-build build --distribute: ${r.error.issues
        .slice(0, 3)
        .map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`)
        .join('; ')}`,
    );
  }
  return r.data as PartialMap;
}

/** The base an image names in its annotations (org.opencontainers.image.base.*), for its partial entry. */
export function baseOf(manifest: { annotations?: Record<string, string> }): { base?: { ref: string; digest: Digest } } {
  const ref = manifest.annotations?.['org.opencontainers.image.base.name'];
  const digest = manifest.annotations?.['org.opencontainers.image.base.digest'];
  return ref && digest && digestRe.test(digest) ? { base: { ref, digest: digest as Digest } } : {};
}

/** The attestations of these subjects only, as a spreadable `{ attestations }` (nothing when none). */
export function onlySubjects(all: PartialAttestations | undefined, subjects: readonly string[]): { attestations?: PartialAttestations } {
  const kept = Object.entries(all ?? {}).filter(([s]) => subjects.includes(s));
  return kept.length ? { attestations: Object.fromEntries(kept) } : {};
}
