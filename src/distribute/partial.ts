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
}

export type PartialVariant =
  | { kind: 'platforms'; image: string; platforms: Record<string, PartialPlatform> }
  | { kind: 'entry'; entry: DigestMapEntry };

const digestRe = /^sha256:[a-f0-9]{64}$/;
const platformSchema = z.object({
  digest: z.string().regex(digestRe),
  size: z.number().int().nonnegative(),
  mediaType: z.string(),
  totalSize: z.number().int().nonnegative(),
  variant: z.string().optional(),
});
const entrySchema = z.object({
  image: z.string(),
  digest: z.string().regex(digestRe),
  mediaType: z.string(),
  ref: z.string(),
  tags: z.array(z.string()),
  size: z.number().int().nonnegative(),
  pushed: z.boolean(),
  platforms: z.record(z.string(), z.object({ digest: z.string().regex(digestRe), size: z.number().int().nonnegative() })).optional(),
});
const partialSchema = z.object({
  kind: z.literal('oci-build-partial'),
  version: z.literal(1),
  buildFile: z.string().regex(/^[a-f0-9]{64}$/),
  job: z.string(),
  variants: z.record(
    z.string(),
    z.union([
      z.object({ kind: z.literal('platforms'), image: z.string(), platforms: z.record(z.string(), platformSchema) }),
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
