/**
 * The one adapter between the build's types and the attestation modules, so that those take
 * plain inputs and this file is all that follows a change of BuiltVariant / BlobStore shapes.
 */
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import type { Readable } from 'node:stream';
import type { BuildFile, Step, VariantSpec } from '../config/model.js';
import type { Descriptor } from '../oci/types.js';
import type { GitContext } from '../github/context.js';
import { isDigest, sha256, type Digest } from '../oci/digest.js';
import { formatPlatform } from '../oci/platform.js';
import type { RepoRef } from '../registry/client.js';
import type { BuiltVariant } from '../image/image.js';
import type { Layer } from '../oci/layer.js';
import type { Logger } from '../log.js';
import type { PublishTarget } from '../output/publisher.js';
import pkg from '../../package.json' with { type: 'json' };
import {
  attestVariant,
  digestsOf,
  type AttestSettings,
  type AttestationDigests,
  type RunFacts,
  type SubjectAttestations,
} from './attest.js';
import { artifactManifest } from './artifact.js';
import { attachToRegistry, type ReferrersRegistry } from './referrers.js';
import { attachToLayout } from './layout.js';
import { runSigner, type SigningSetup } from './sign-all.js';
import type { SbomInventory } from './sbom/inventory.js';
import { existingSbom, type SbomReuseRegistry, type WantedSbom } from './sbom-reuse.js';

export type { SbomScanStats } from './sbom/inventory.js';

export interface AttestInputs {
  provenance: false | 'min' | 'max';
  sbom: boolean;
  sourceDateEpoch?: number;
  git?: GitContext;
  env: Record<string, string | undefined>;
  /** Sign as GitHub artifact attestations (on the Actions runtime); the bundles become the referrers. */
  signing?: SigningSetup;
  /**
   * The SBOM referrer the registry holds already for a manifest this build pushes (see
   * sbom-reuse.ts). Not asked when signing: a signed bundle names the run that signed it, so
   * each signing run makes and signs its own.
   */
  existingSbom?: (variant: string, want: WantedSbom) => Promise<Buffer | undefined>;
}

const TOOL = { name: 'oci-build-action', version: pkg.version };

/**
 * SLSA wants the builder id as a URI. On the Actions runtime it is the action's repository at its
 * ref. The CLI has no hosted identity to name (a https URL would claim one), so it is a URN naming
 * the tool and its version: a valid RFC 3986 URI a verifier's policy can pin, leaking no host name.
 */
export function builderId(action: string | undefined, ref: string | undefined, serverUrl = 'https://github.com'): string {
  if (action) return `${serverUrl}/${action}${ref ? `@${ref}` : ''}`;
  return `urn:${TOOL.name}:cli:v${TOOL.version}`;
}

/** The run's facts: build file, source and workflow (on GitHub), the builder, the args. */
async function runFacts(bf: BuildFile, inp: AttestInputs): Promise<RunFacts> {
  const text = await readFile(bf.file, 'utf8');
  const git = inp.git;
  const env = inp.env;
  const onGitHub = Boolean(git?.repository && git.runId);
  const action = env.GITHUB_ACTION_REPOSITORY;
  return {
    buildFile: { path: relative(bf.context, bf.file) || bf.file, digest: sha256(text), content: text },
    ...(git?.repository && git.sha
      ? { source: { uri: `${git.serverUrl}/${git.repository}`, commit: git.sha, ...(git.ref ? { ref: git.ref } : {}) } }
      : {}),
    ...(onGitHub
      ? {
          workflow: {
            serverUrl: git!.serverUrl,
            repository: git!.repository,
            runId: git!.runId!,
            ...(git!.runAttempt ? { runAttempt: git!.runAttempt } : {}),
            ...(env.GITHUB_WORKFLOW_REF ? { workflowRef: env.GITHUB_WORKFLOW_REF } : {}),
            eventName: git!.eventName,
            ...(git!.job ? { job: git!.job } : {}),
          },
        }
      : {}),
    builder: {
      id: builderId(action, env.GITHUB_ACTION_REF, git?.serverUrl),
      version: TOOL.version,
    },
    args: bf.args,
    fromEnvironment: Object.keys(bf.args).filter((k) => env[k] !== undefined),
  };
}

/**
 * The SBOM inventories, kept in `dir` between builds (none: for this run only). Loaded when a
 * build makes SBOMs: the scanners and their package-URL library are not started otherwise.
 */
export async function sbomInventory(dir: string | undefined): Promise<SbomInventory> {
  const { SbomInventory } = await import('./sbom/inventory.js');
  return new SbomInventory(dir, TOOL.version);
}

/** Attestations of every built variant; `open` gives a layer's blob as a stream. */
export async function attestBuilt(
  bf: BuildFile,
  specs: VariantSpec[],
  results: BuiltVariant[],
  imageOf: (variant: string) => string,
  open: (layer: Layer) => Promise<Readable>,
  inp: AttestInputs,
  logger: Logger,
  inventory?: SbomInventory,
): Promise<SubjectAttestations[]> {
  if (!inp.provenance && !inp.sbom) return [];
  const sbomOf = inp.sbom ? (inventory ?? (await sbomInventory(undefined))) : undefined;
  const settings: AttestSettings = {
    provenance: inp.provenance,
    sbom: inp.sbom,
    ...(inp.sourceDateEpoch !== undefined ? { sourceDateEpoch: inp.sourceDateEpoch } : {}),
    onSbomNote: (note) => logger.warn(note),
  };
  const run = await runFacts(bf, inp);
  const out: SubjectAttestations[] = [];
  const sign = inp.signing ? runSigner({ ...inp.signing, subjectName: imageOf }, inp.env, logger) : undefined;
  const reuse = inp.signing ? undefined : inp.existingSbom;
  for (const r of results) {
    const spec = specs.find((s) => s.name === r.variant)!;
    const t0 = Date.now();
    const mine = await attestVariant(
      {
        variant: r.variant,
        image: imageOf(r.variant),
        ...(r.index ? { index: r.index.descriptor } : {}),
        steps: spec.steps,
        ...(spec.perPlatform ? { platformSteps: platformStepsOf(spec.perPlatform) } : {}),
        ...(spec.dockerfile
          ? { dockerfile: { path: relative(bf.context, spec.dockerfile.file), digest: sha256(await readFile(spec.dockerfile.file)) } }
          : {}),
        images: r.images.map((img) => {
          const baseName = img.manifest.annotations?.['org.opencontainers.image.base.name'];
          const baseDigest = img.manifest.annotations?.['org.opencontainers.image.base.digest'];
          return {
            manifest: img.manifestDescriptor,
            platform: formatPlatform(img.platform),
            layers: img.layers.map((l) => ({ diffId: l.diffId, base: l.createdBy === 'base', open: () => open(l) })),
            ...(baseName && baseDigest && isDigest(baseDigest) ? { base: { ref: baseName, digest: baseDigest } } : {}),
          };
        }),
      },
      run,
      reuse ? { ...settings, existingSbom: (want) => reuse(r.variant, want) } : settings,
      TOOL,
      sbomOf,
    );
    if (sign) await sign(mine);
    out.push(...mine);
    logger.info(
      `attest: ${r.variant}: ${[inp.provenance ? `provenance (${inp.provenance})` : '', inp.sbom ? 'SBOM' : ''].filter(Boolean).join(' and ')} in ${Date.now() - t0} ms`,
    );
  }
  return out;
}

/**
 * The `existingSbom` hook of a build that pushes: the SBOM referrer of the repository a variant
 * is pushed to (none: a variant pushed nowhere). Failures are logged at debug level only.
 */
export function sbomReuseFrom(
  reg: SbomReuseRegistry,
  repoOf: (variant: string) => RepoRef | undefined,
  logger: Logger,
): NonNullable<AttestInputs['existingSbom']> {
  return async (variant, want) => {
    const repo = repoOf(variant);
    return repo ? await existingSbom(reg, repo, want, (msg) => logger.debug(msg)) : undefined;
  };
}

/** Attaches to the registry the attestations of the subjects these targets push (a distributed job pushes no index). */
export async function attachPushed(reg: ReferrersRegistry, list: SubjectAttestations[], targets: PublishTarget[]): Promise<void> {
  const pushed = new Map<Digest, RepoRef>();
  for (const t of targets) {
    for (const d of [...t.variant.images.map((i) => i.manifestDescriptor), ...(t.variant.index ? [t.variant.index.descriptor] : [])])
      pushed.set(d.digest, t.repo);
  }
  // One repository's subjects one after the other: their artifact manifests share blobs (the
  // empty config), and two uploads of one blob racing in one repository made distribution 2.8
  // answer a manifest PUT with MANIFEST_BLOB_UNKNOWN now and then. Repositories go in parallel.
  const byRepo = new Map<string, { repo: RepoRef; subjects: SubjectAttestations[] }>();
  for (const sa of list) {
    const repo = pushed.get(sa.subject.digest);
    if (!repo) continue;
    const key = `${repo.registry}/${repo.repository}`;
    if (!byRepo.has(key)) byRepo.set(key, { repo, subjects: [] });
    byRepo.get(key)!.subjects.push(sa);
  }
  await Promise.all(
    [...byRepo.values()].map(async ({ repo, subjects }) => {
      for (const sa of subjects) {
        await attachToRegistry(reg, repo, sa.subject, sa.attestations);
        for (const a of sa.attestations) await a.publish?.();
      }
    }),
  );
}

export async function attachLayout(dir: string, list: SubjectAttestations[]): Promise<void> {
  for (const sa of list) await attachToLayout(dir, sa.subject, sa.attestations);
}

/**
 * The digest map's attestations of a variant. Artifact manifests are deterministic, so these are
 * the digests in the registry and in an OCI layout alike.
 */
export function attestationDigestsOf(list: SubjectAttestations[], variant: string): AttestationDigests | undefined {
  const mine = list.filter((s) => s.variant === variant);
  return mine.length ? digestsOf(mine) : undefined;
}

/** A variant's artifact manifests, for the outputs that hold referrers (OCI archive). */
export function referrersOf(list: SubjectAttestations[], variant: string): ReturnType<typeof artifactManifest>[] {
  return list.filter((s) => s.variant === variant).flatMap((sa) => sa.attestations.map((a) => artifactManifest(sa.subject, a)));
}

/** An index the merge job of a distributed build assembled from the platform manifests the build jobs pushed. */
export interface MergedIndex {
  variant: string;
  image: string;
  index: Descriptor;
  platforms: { manifest: Descriptor; platform: string; base?: { ref: string; digest: Digest } }[];
}

/**
 * The merge job's own attestations: a provenance statement per assembled index (the platform
 * manifests keep theirs, attached by the jobs that built them). No SBOM: an index has no files.
 */
export async function attestMerged(
  bf: BuildFile,
  specs: VariantSpec[],
  merged: MergedIndex[],
  inp: AttestInputs,
  logger: Logger,
): Promise<SubjectAttestations[]> {
  if (!inp.provenance) return [];
  const run = await runFacts(bf, inp);
  const sign = inp.signing
    ? runSigner({ ...inp.signing, subjectName: (v) => merged.find((m) => m.variant === v)!.image }, inp.env, logger)
    : undefined;
  const settings: AttestSettings = {
    provenance: inp.provenance,
    sbom: false,
    ...(inp.sourceDateEpoch !== undefined ? { sourceDateEpoch: inp.sourceDateEpoch } : {}),
  };
  const out: SubjectAttestations[] = [];
  for (const m of merged) {
    const spec = specs.find((s) => s.name === m.variant);
    const all = await attestVariant(
      {
        variant: m.variant,
        image: m.image,
        index: m.index,
        steps: spec?.steps ?? [],
        ...(spec?.perPlatform ? { platformSteps: platformStepsOf(spec.perPlatform) } : {}),
        images: m.platforms.map((p) => ({ manifest: p.manifest, platform: p.platform, layers: [], ...(p.base ? { base: p.base } : {}) })),
      },
      run,
      settings,
      TOOL,
      undefined, // sbom is off here: the platforms' SBOMs came with their jobs
    );
    const mine = all.filter((sa) => sa.subject.digest === m.index.digest);
    if (sign) await sign(mine);
    out.push(...mine);
  }
  return out;
}

/** variant -> the digest map's attestations of the merge job's own subjects. */
export function digestsOfMerged(list: SubjectAttestations[]): Record<string, AttestationDigests> {
  const out: Record<string, AttestationDigests> = {};
  for (const v of new Set(list.map((s) => s.variant))) out[v] = digestsOf(list.filter((s) => s.variant === v));
  return out;
}

/** Each platform's own steps (a Dockerfile converted per platform), for its provenance. */
function platformStepsOf(perPlatform: NonNullable<VariantSpec['perPlatform']>): Record<string, Step[]> {
  return Object.fromEntries(Object.entries(perPlatform).map(([platform, own]) => [platform, own.steps]));
}
