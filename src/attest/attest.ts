/**
 * What to attach to each image, from plain facts: per variant, a provenance statement for every
 * image (each platform manifest and the index) and an SBOM for every platform manifest. The
 * documents are made once and attached to the registry and/or an OCI layout by the caller.
 */
import type { Digest } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import type { Step } from '../config/model.js';
import { artifactManifest, PREDICATE_TYPE_ANNOTATION, type Attestation } from './artifact.js';
import { CYCLONEDX_JSON } from './sbom/media-type.js';
import { provenanceStatement, SLSA_PROVENANCE_V1, type ProvenanceInputs, type ProvenanceMode } from './provenance.js';
import type { SbomInventory, SbomLayer } from './sbom/inventory.js';
import type { WantedSbom } from './sbom-reuse.js';

export type AttestationKind = 'provenance' | 'sbom';

export interface AttestSettings {
  provenance: false | ProvenanceMode;
  sbom: boolean;
  /**
   * The SBOM's timestamp when set. No attestation ever carries a wall-clock time: a rebuild of the
   * same inputs then gives the same attestation digests, as it gives the same image digests.
   */
  sourceDateEpoch?: number;
  /**
   * An SBOM the registry holds already for this manifest (made by this tool), asked when the
   * inventory does not know the image's packages; undefined: the SBOM is made from the layers.
   */
  existingSbom?: (want: WantedSbom) => Promise<Buffer | undefined>;
  /** Told what an SBOM could not read (it is also in the document), so the log says it too. */
  onSbomNote?: (note: string) => void;
}

export interface ImageFacts {
  manifest: Descriptor;
  platform: string;
  /** Each layer's diffID and blob (compressed or not), bottom first. */
  layers: SbomLayer[];
  base?: { ref: string; digest: Digest };
}

export interface VariantFacts {
  variant: string;
  /** The repository the image is pushed to (subject name in statements). */
  image: string;
  index?: Descriptor;
  images: ImageFacts[];
  steps: Step[];
  /** The steps of the platforms where they differ from `steps` (a Dockerfile converted per platform). */
  platformSteps?: Record<string, Step[]>;
  /** The Dockerfile the variant is made from (a build file's `dockerfile:` variant). */
  dockerfile?: { path: string; digest: Digest };
}

/** Facts of the whole run (same for every variant). */
export type RunFacts = Omit<ProvenanceInputs, 'mode' | 'bases' | 'variants' | 'startedOn' | 'finishedOn'>;

export interface SubjectAttestations {
  variant: string;
  subject: Descriptor;
  attestations: (Attestation & { kind: AttestationKind; publish?: () => Promise<void> })[];
}

export async function attestVariant(
  v: VariantFacts,
  run: RunFacts,
  s: AttestSettings,
  sbomTool: { name: string; version: string },
  /** Required when `s.sbom` is set. */
  inventory: SbomInventory | undefined,
): Promise<SubjectAttestations[]> {
  const out: SubjectAttestations[] = [];
  const provenance = (subject: Descriptor, images: ImageFacts[]) => {
    if (!s.provenance) return [];
    const inputs: ProvenanceInputs = {
      ...run,
      mode: s.provenance,
      bases: images.flatMap((i) => (i.base ? [{ ...i.base, platform: i.platform }] : [])),
      variants: images.map((i) => ({
        name: v.variant,
        platform: i.platform,
        steps: v.platformSteps?.[i.platform] ?? v.steps,
        ...(v.dockerfile ? { dockerfile: v.dockerfile } : {}),
      })),
    };
    const { mediaType, bytes } = provenanceStatement([{ name: v.image, digest: subject.digest }], inputs);
    return [
      {
        kind: 'provenance' as const,
        artifactType: mediaType,
        mediaType,
        bytes,
        annotations: { [PREDICATE_TYPE_ANNOTATION]: SLSA_PROVENANCE_V1 },
      },
    ];
  };
  for (const img of v.images) {
    const atts: SubjectAttestations['attestations'] = provenance(img.manifest, [img]);
    if (s.sbom) {
      if (!inventory) throw new Error('attestVariant: an SBOM needs the inventory');
      const bytes = await sbomOf(v, img, s, sbomTool, inventory);
      atts.push({ kind: 'sbom', artifactType: CYCLONEDX_JSON, mediaType: CYCLONEDX_JSON, bytes });
    }
    if (atts.length) out.push({ variant: v.variant, subject: img.manifest, attestations: atts });
  }
  if (v.index) {
    const atts = provenance(v.index, v.images);
    if (atts.length) out.push({ variant: v.variant, subject: v.index, attestations: atts });
  }
  return out;
}

/**
 * One image's SBOM document: from its packages when the inventory knows them (no layer read),
 * else the registry's referrer when it is ours (`existingSbom`), else scanned from the layers.
 */
async function sbomOf(
  v: VariantFacts,
  img: ImageFacts,
  s: AttestSettings,
  tool: { name: string; version: string },
  inventory: SbomInventory,
): Promise<Buffer> {
  const when = s.sourceDateEpoch !== undefined ? new Date(s.sourceDateEpoch * 1000) : undefined;
  if (s.existingSbom && !(await inventory.knows(img.layers))) {
    const held = await s.existingSbom({ subject: img.manifest, name: v.image, tool, ...(when ? { timestamp: when } : {}) });
    if (held) {
      inventory.reusedFromReferrer();
      return held;
    }
  }
  // The CycloneDX library is loaded by the builds that make SBOMs only.
  const { cyclonedxDocument } = await import('./sbom/cyclonedx.js');
  const found = await inventory.packages(img.layers);
  for (const note of found.notes ?? []) s.onSbomNote?.(`SBOM of ${v.variant} (${img.platform}): ${note}`);
  return cyclonedxDocument({ name: v.image, digest: img.manifest.digest, platform: img.platform }, found, tool, when);
}

/** The digest map's view: subject digest -> kind -> artifact manifest digest. */
export type AttestationDigests = Record<string, Partial<Record<AttestationKind, Digest>>>;

export function digestsOf(list: SubjectAttestations[]): AttestationDigests {
  const out: AttestationDigests = {};
  for (const sa of list) {
    const entry: Partial<Record<AttestationKind, Digest>> = out[sa.subject.digest] ?? {};
    out[sa.subject.digest] = entry;
    for (const a of sa.attestations) entry[a.kind] = artifactManifest(sa.subject, a).descriptor.digest;
  }
  return out;
}
