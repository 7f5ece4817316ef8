import type { Digest } from '../oci/digest.js';
import { isIndexType, isManifestType, MediaType } from '../oci/mediatypes.js';
import { formatPlatform, hostPlatform, platformMatches } from '../oci/platform.js';
import type { Reference } from '../oci/reference.js';
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../oci/types.js';
import { builtImage, builtVariant, type BuiltImage, type BuiltVariant } from '../image/image.js';
import type { RegistryClient, RepoRef } from '../registry/client.js';
import type { PullBlobs } from './blobs.js';
import { PullError } from './errors.js';

/** One image to pull: the name it gets in the output, the reference, the tags it carries. */
export interface PullTarget {
  /** OCI layout ref name (a variant's name, or the tag). */
  name: string;
  reference: Reference;
  /** registry/repository, for messages and archive names. */
  image: string;
  /** Tag names the docker archive names the image by. */
  tags: string[];
  /** How the target is shown in messages: image:tag or image@digest. */
  shown: string;
}

/** The requested platform, `all` to keep an index whole, or undefined: this machine's. */
export type PlatformChoice = Platform | 'all' | undefined;

const MAX_CONFIG_BYTES = 8 << 20;

/**
 * Reads a target's manifests and configs (small, kept in memory as the sinks take them) and
 * returns the same kind of object a build makes, with lazy layers: nothing big is read yet.
 * The bytes are kept exactly as the registry served them, so every digest stays the same.
 */
export async function resolveTarget(
  client: RegistryClient,
  blobs: PullBlobs,
  t: PullTarget,
  platform: PlatformChoice,
): Promise<BuiltVariant> {
  const repo: RepoRef = { registry: t.reference.registry, repository: t.reference.repository };
  try {
    const top = await client.getManifest(repo, t.reference.digest ?? t.reference.tag ?? 'latest');
    const doc = JSON.parse(top.bytes.toString('utf8')) as Manifest | Index;
    const descriptor: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
    if (!(isIndexType(top.mediaType) || 'manifests' in doc)) {
      const image = await imageOf(client, blobs, t, repo, descriptor, top.bytes);
      // A single image is what the reference names; only a platform asked for must match.
      if (platform && platform !== 'all' && !platformMatches(platform, image.platform)) {
        throw new PullError(
          t.shown,
          `it is a single ${formatPlatform(image.platform)} image, not ${formatPlatform(platform)}`,
          'the --platform given, or pull without it',
        );
      }
      return builtVariant(t.name, [image]);
    }
    const index = doc as Index;
    if (platform === 'all') {
      const images = await Promise.all(
        index.manifests.map(async (d) => {
          if (!isManifestType(d.mediaType))
            throw new PullError(
              t.shown,
              `its index lists ${d.digest} of media type ${d.mediaType}, which pull cannot copy`,
              'pick one platform with --platform os/arch',
            );
          const m = await client.getManifest(repo, d.digest);
          return await imageOf(client, blobs, t, repo, { ...d, mediaType: m.mediaType }, m.bytes);
        }),
      );
      return builtVariant(t.name, images, { bytes: top.bytes, descriptor });
    }
    const chosen = choosePlatform(t.shown, index, platform ?? hostPlatform());
    const m = await client.getManifest(repo, chosen.digest);
    const tagged: Descriptor = {
      mediaType: m.mediaType,
      digest: m.digest,
      size: m.bytes.length,
      ...(chosen.platform ? { platform: chosen.platform } : {}),
    };
    return builtVariant(t.name, [await imageOf(client, blobs, t, repo, tagged, m.bytes)]);
  } catch (err) {
    throw err instanceof PullError ? err : new PullError(t.shown, err);
  }
}

function isAttestation(d: Descriptor): boolean {
  return (
    d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' ||
    (d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown')
  );
}

/** The index entry for `platform`, as the builder picks a base's (attestation entries skipped). */
function choosePlatform(shown: string, index: Index, platform: Platform): Descriptor {
  const candidates = index.manifests.filter((m) => !isAttestation(m) && isManifestType(m.mediaType));
  const match = candidates.find((m) => platformMatches(platform, m.platform));
  if (match) return match;
  const have = candidates.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ') || 'none';
  throw new PullError(
    shown,
    `its index has no manifest for ${formatPlatform(platform)} (it has: ${have})`,
    `--platform: pass one of ${have}, or --platform all to keep the whole index`,
  );
}

async function imageOf(
  client: RegistryClient,
  blobs: PullBlobs,
  t: PullTarget,
  repo: RepoRef,
  d: Descriptor,
  bytes: Buffer,
): Promise<BuiltImage> {
  const manifest = JSON.parse(bytes.toString('utf8')) as Manifest;
  if (!isManifestType(d.mediaType) || !manifest.config || !Array.isArray(manifest.layers)) {
    throw new PullError(
      t.shown,
      `unsupported manifest media type "${d.mediaType}"`,
      'that the reference names an OCI or Docker schema 2 image',
    );
  }
  const configBytes = await readSmall(await client.getBlob(repo, manifest.config.digest, manifest.config.size), manifest.config.size);
  let config: ImageConfig;
  try {
    config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  } catch {
    throw new PullError(t.shown, `its config ${manifest.config.digest} is not JSON`);
  }
  const diffIds: Digest[] = config.rootfs?.diff_ids ?? [];
  // Layers keep the manifest's own descriptors: the manifest bytes are written unchanged.
  // Progress names each blob by the repository's last part and a short digest.
  const label = repo.repository.split('/').pop()!;
  const layers = manifest.layers.map((l, i) => blobs.layer(l, diffIds[i] ?? l.digest, repo, label));
  const platform: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  const configDescriptor: Descriptor = { ...manifest.config, mediaType: manifest.config.mediaType ?? MediaType.OciConfig };
  return builtImage({
    variant: t.name,
    platform,
    config,
    configBytes,
    configDescriptor,
    layers,
    manifest,
    manifestBytes: bytes,
    // The platform as the index lists it (a chosen platform's manifest is what gets tagged).
    manifestDescriptor: { mediaType: d.mediaType, digest: d.digest, size: bytes.length, ...(d.platform ? { platform: d.platform } : {}) },
  });
}

async function readSmall(stream: AsyncIterable<Buffer>, size: number): Promise<Buffer> {
  if (size > MAX_CONFIG_BYTES) throw new Error(`the config is ${size} bytes, more than the ${MAX_CONFIG_BYTES} pull reads`);
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}
