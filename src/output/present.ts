import { formatRepository } from '../oci/reference.js';
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import type { RegistryClient, RepoRef } from '../registry/client.js';
import type { PublishTarget } from './publisher.js';

/** `registry/repository@digest`: how the publisher names a manifest or blob in one repository. */
export function inRepo(repo: RepoRef, d: Descriptor): string {
  return `${formatRepository(repo)}@${d.digest}`;
}

/** A target's manifests: each platform's, then the index (if any). */
export function manifestsOf(t: PublishTarget): Descriptor[] {
  return [...t.variant.images.map((i) => i.manifestDescriptor), ...(t.variant.index ? [t.variant.index.descriptor] : [])];
}

/**
 * Whether the repository holds this manifest (by digest): the one presence check of manifests
 * before a push, images' and attestations' alike. A HEAD that fails counts as absent (pushed as usual).
 */
export async function holdsManifest(
  reg: { headManifest(repo: RepoRef, reference: string): Promise<{ digest: Digest } | undefined> },
  repo: RepoRef,
  d: Pick<Descriptor, 'digest'>,
): Promise<boolean> {
  return (await reg.headManifest(repo, d.digest).catch(() => undefined))?.digest === d.digest;
}

/**
 * Which of the targets' manifests (each platform's, and the index) the repositories hold already,
 * by digest: one HEAD each, all at once. Those need no PUT and no confirming HEAD: a rebuild with
 * nothing changed writes no manifest.
 */
export async function presentManifests(client: RegistryClient, targets: PublishTarget[]): Promise<Set<string>> {
  const present = new Set<string>();
  await Promise.all(
    targets.flatMap((t) =>
      manifestsOf(t).map(async (d) => {
        if (await holdsManifest(client, t.repo, d)) present.add(inRepo(t.repo, d));
      }),
    ),
  );
  return present;
}
