/**
 * Artifact manifests (OCI image-spec 1.1): one per attestation, the attestation as its one layer,
 * the empty config, `artifactType` naming what it is and `subject` pointing at the image manifest
 * (or index) it describes. Registries and layouts list them as the subject's referrers.
 */
import { jsonBytes, sha256, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import type { Descriptor, Manifest } from '../oci/types.js';

export const EMPTY_JSON = 'application/vnd.oci.empty.v1+json';
export const EMPTY_BYTES = Buffer.from('{}');
export const EMPTY_DESCRIPTOR: Descriptor = { mediaType: EMPTY_JSON, digest: sha256(EMPTY_BYTES), size: EMPTY_BYTES.length };
/** The annotation BuildKit and others use to say which predicate an in-toto layer carries. */
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';

/** One attestation to attach: its document and how it is typed. */
export interface Attestation {
  /** The manifest's artifactType, e.g. application/vnd.in-toto+json, application/vnd.cyclonedx+json. */
  artifactType: string;
  /** The layer's media type (usually the artifactType; a Sigstore bundle when signed). */
  mediaType: string;
  bytes: Buffer;
  /** Manifest annotations, copied into the referrers index entry (deterministic values only). */
  annotations?: Record<string, string>;
}

export interface ArtifactManifest {
  manifest: Manifest;
  bytes: Buffer;
  /** The descriptor a referrers index lists: with artifactType and the manifest's annotations. */
  descriptor: Descriptor;
  /** Blobs the manifest needs: the empty config and the attestation. */
  blobs: { digest: Digest; size: number; bytes: Buffer }[];
}

/** The subject as a bare descriptor: a referrer's subject carries no platform or annotations. */
function subjectOf(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

export function artifactManifest(subject: Descriptor, att: Attestation): ArtifactManifest {
  const layer: Descriptor = { mediaType: att.mediaType, digest: sha256(att.bytes), size: att.bytes.length };
  const annotations = att.annotations && Object.keys(att.annotations).length ? att.annotations : undefined;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: att.artifactType,
    config: EMPTY_DESCRIPTOR,
    layers: [layer],
    subject: subjectOf(subject),
    ...(annotations ? { annotations } : {}),
  };
  const bytes = jsonBytes(manifest);
  return {
    manifest,
    bytes,
    descriptor: {
      mediaType: MediaType.OciManifest,
      digest: sha256(bytes),
      size: bytes.length,
      artifactType: att.artifactType,
      ...(annotations ? { annotations } : {}),
    },
    blobs: [
      { digest: EMPTY_DESCRIPTOR.digest, size: EMPTY_BYTES.length, bytes: EMPTY_BYTES },
      { digest: layer.digest, size: layer.size, bytes: att.bytes },
    ],
  };
}

/**
 * Adds descriptors to a referrers list: an entry already there (same digest) is kept once, entries
 * of other writers are kept in their order, new ones are appended. Returns undefined when nothing
 * is new, so a re-run writes nothing.
 */
export function mergeReferrers(existing: readonly Descriptor[], add: readonly Descriptor[]): Descriptor[] | undefined {
  const seen = new Set(existing.map((d) => d.digest));
  const fresh = add.filter((d) => !seen.has(d.digest) && (seen.add(d.digest), true));
  return fresh.length ? [...existing, ...fresh] : undefined;
}
