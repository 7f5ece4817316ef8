/**
 * Attaching artifact manifests to an image in a registry. Blobs and the artifact manifest go up
 * by digest; then, where the registry has the referrers API, it lists them itself; where it has
 * not (GHCR, distribution 2.x), the referrers tag schema: an index tagged `sha256-<hex>` of the
 * subject, updated read-modify-write without losing the entries other jobs put there.
 *
 * The caller attaches after the image's manifests are in the registry and before its tags move.
 */
import { Readable } from 'node:stream';
import { digestHex, jsonBytes, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Descriptor, Index } from '../oci/types.js';
import type { RepoRef } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import { holdsManifest } from '../output/present.js';
import { artifactManifest, mergeReferrers, type ArtifactManifest, type Attestation } from './artifact.js';

/** What attaching needs of a registry client (RegistryClient has all of it). */
export interface ReferrersRegistry {
  blobExists(repo: RepoRef, digest: Digest): Promise<boolean>;
  uploadBlob(repo: RepoRef, digest: Digest, size: number, open: () => Readable): Promise<void>;
  putManifest(repo: RepoRef, reference: string, mediaType: string, bytes: Buffer): Promise<Digest>;
  getManifest(repo: RepoRef, reference: string): Promise<{ mediaType: string; digest: Digest; bytes: Buffer }>;
  headManifest(repo: RepoRef, reference: string): Promise<{ digest: Digest } | undefined>;
  /** The referrers API's answer, or undefined when the registry has none. */
  getReferrers(repo: RepoRef, digest: Digest): Promise<Index | undefined>;
}

export interface Attached {
  subject: Digest;
  /** The artifact manifests, in the order of the attestations given. */
  manifests: Descriptor[];
  /** How the registry lists them: its referrers API, or the fallback tag we maintain. */
  via: 'api' | 'tag';
}

/** Rounds of read-modify-write of the fallback tag before giving up on a busy tag. */
const TAG_ROUNDS = 6;

export function fallbackTag(subject: Digest): string {
  return `sha256-${digestHex(subject)}`;
}

export async function attachToRegistry(
  reg: ReferrersRegistry,
  repo: RepoRef,
  subject: Descriptor,
  attestations: Attestation[],
): Promise<Attached> {
  const artifacts = attestations.map((a) => artifactManifest(subject, a));
  // Artifact manifests are deterministic: one the repository holds by digest (a re-run, or an
  // SBOM taken from its referrer) is not pushed again. Asked while the blobs are checked (those
  // are, always: a registry may lose one).
  const [held] = await Promise.all([
    Promise.all(artifacts.map((a) => holdsManifest(reg, repo, a.descriptor))),
    Promise.all(
      uniqueBlobs(artifacts).map(async (b) => {
        if (!(await reg.blobExists(repo, b.digest))) await reg.uploadBlob(repo, b.digest, b.size, () => Readable.from([b.bytes]));
      }),
    ),
  ]);
  for (const [i, a] of artifacts.entries()) if (!held[i]) await reg.putManifest(repo, a.descriptor.digest, MediaType.OciManifest, a.bytes);
  const manifests = artifacts.map((a) => a.descriptor);
  // Asked after the push: a registry with the API now lists them, and needs no fallback tag. A
  // registry that answers the question with an error is treated as one without the API: the
  // fallback tag is harmless where the API exists, a failed push is not.
  if (await reg.getReferrers(repo, subject.digest).catch(() => undefined)) return { subject: subject.digest, manifests, via: 'api' };
  await updateFallbackTag(reg, repo, subject.digest, manifests);
  return { subject: subject.digest, manifests, via: 'tag' };
}

/**
 * The referrers of `subject` (manifests whose subject it is), as the registry lists them: its
 * referrers API where it has one, else the fallback tag `sha256-<hex>` (none: an empty list).
 * Each descriptor keeps the artifactType and annotations of the listing; `artifactType` filters.
 */
export async function listReferrers(
  reg: Pick<ReferrersRegistry, 'getReferrers' | 'getManifest'>,
  repo: RepoRef,
  subject: Digest,
  artifactType?: string,
): Promise<Descriptor[]> {
  const api = await reg.getReferrers(repo, subject).catch(() => undefined);
  const all = api ? api.manifests : await readFallback(reg, repo, fallbackTag(subject));
  return artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
}

function uniqueBlobs(artifacts: ArtifactManifest[]): ArtifactManifest['blobs'] {
  const byDigest = new Map(artifacts.flatMap((a) => a.blobs).map((b) => [b.digest, b]));
  return [...byDigest.values()];
}

async function readFallback(reg: Pick<ReferrersRegistry, 'getManifest'>, repo: RepoRef, tag: string): Promise<Descriptor[]> {
  try {
    const m = await reg.getManifest(repo, tag);
    const doc = JSON.parse(m.bytes.toString('utf8')) as Partial<Index>;
    return Array.isArray(doc.manifests) ? doc.manifests : [];
  } catch (e) {
    if (e instanceof RegistryError && (e.status === 404 || e.codes.includes('MANIFEST_UNKNOWN'))) return [];
    throw e;
  }
}

/**
 * Registries have no compare-and-swap on tags, so two jobs attaching at once can each write an
 * index without the other's entry. Each writer therefore reads the tag back after a short, random
 * pause and merges again if one of its entries is missing; the last writer of a round keeps both.
 */
async function updateFallbackTag(reg: ReferrersRegistry, repo: RepoRef, subject: Digest, add: Descriptor[]): Promise<void> {
  const tag = fallbackTag(subject);
  for (let round = 0; ; round++) {
    const current = await readFallback(reg, repo, tag);
    const merged = mergeReferrers(current, add);
    if (!merged) return; // every entry is there already (a re-run, or another writer merged ours)
    if (round === TAG_ROUNDS) break;
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: merged };
    await reg.putManifest(repo, tag, MediaType.OciIndex, jsonBytes(index));
    await new Promise((r) => setTimeout(r, 50 + Math.floor(Math.random() * 200)));
  }
  throw new Error(
    `${repo.registry}/${repo.repository}:${tag}: the referrers index kept changing under us (${TAG_ROUNDS} rounds); run again to add the missing entries`,
  );
}
