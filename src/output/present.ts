import { formatRepository } from '../oci/reference.js';
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
 * Which of the targets' manifests (each platform's, and the index) the repositories hold already,
 * by digest: one HEAD each, all at once. Those need no PUT and no confirming HEAD: a rebuild with
 * nothing changed writes no manifest. A HEAD that fails counts as absent (pushed as usual).
 */
export async function presentManifests(client: RegistryClient, targets: PublishTarget[]): Promise<Set<string>> {
  const present = new Set<string>();
  await Promise.all(
    targets.flatMap((t) =>
      manifestsOf(t).map(async (d) => {
        const head = await client.headManifest(t.repo, d.digest).catch(() => undefined);
        if (head?.digest === d.digest) present.add(inRepo(t.repo, d));
      }),
    ),
  );
  return present;
}
