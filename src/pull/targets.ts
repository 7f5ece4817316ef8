import { readFile } from 'node:fs/promises';
import { formatReference, formatRepository, parseReference, type Reference } from '../oci/reference.js';
import { PullUsageError } from './errors.js';
import type { PullTarget } from './resolve.js';

/** A reference from the command line; its output name is the tag (or the repository's last part). */
export function targetFromReference(input: string): PullTarget {
  let reference: Reference;
  try {
    reference = parseReference(input);
  } catch (e) {
    throw new PullUsageError((e as Error).message);
  }
  if (!reference.tag && !reference.digest) reference = { ...reference, tag: 'latest' };
  const image = formatRepository(reference);
  const name = reference.tag ?? reference.repository.split('/').pop()!;
  return { name, reference, image, tags: reference.tag ? [reference.tag] : [], shown: formatReference(reference) };
}

interface MapEntry {
  image?: unknown;
  digest?: unknown;
  ref?: unknown;
  tags?: unknown;
}

/**
 * The variants of a digest map (what `build` writes), each pulled by digest: `image@digest`
 * (or `ref`), so a pull gets exactly what was built even when its tags moved since.
 */
export async function targetsFromDigestMap(file: string, variants: readonly string[]): Promise<PullTarget[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new PullUsageError(
      `cannot read the digest map ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; give the file build --digest-map wrote`,
    );
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    throw new PullUsageError(`${file} is not a digest map (a JSON object of variant names)`);
  const entries = doc as Record<string, MapEntry>;
  const missing = variants.filter((v) => !(v in entries));
  if (missing.length)
    throw new PullUsageError(`${file} has no variant ${missing.join(', ')} (it has: ${Object.keys(entries).join(', ') || 'none'})`);
  const chosen = variants.length ? variants : Object.keys(entries);
  return chosen.map((name) => {
    const e = entries[name]!;
    const given =
      typeof e.ref === 'string'
        ? e.ref
        : typeof e.image === 'string' && typeof e.digest === 'string'
          ? `${e.image}@${e.digest}`
          : undefined;
    if (!given) throw new PullUsageError(`${file}: variant ${name} has neither "ref" nor "image" and "digest"`);
    let reference: Reference;
    try {
      reference = parseReference(given);
    } catch (err) {
      throw new PullUsageError(`${file}: variant ${name}: ${(err as Error).message}`);
    }
    const image = formatRepository(reference);
    const tags = Array.isArray(e.tags)
      ? e.tags.filter((x): x is string => typeof x === 'string').map((x) => x.slice(x.lastIndexOf(':') + 1))
      : [];
    return { name, reference, image, tags, shown: `${image}@${reference.digest ?? reference.tag} (variant ${name})` };
  });
}
