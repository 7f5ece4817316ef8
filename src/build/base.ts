import { MediaType, isIndexType, isManifestType, ociLayerType } from '../oci/mediatypes.js';
import { formatReference, parseReference, type Reference } from '../oci/reference.js';
import { formatPlatform, platformMatches } from '../oci/platform.js';
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../oci/types.js';
import type { Digest } from '../oci/digest.js';
import type { RegistryClient, RepoRef } from '../registry/client.js';
import { readStreamLimited } from './streams.js';

/** A base image resolved to one platform's manifest and config. */
export interface BaseImage {
  /** `scratch`, or the normalized reference as given (for org.opencontainers.image.base.name). */
  name: string;
  repo?: RepoRef;
  /** Digest of the platform manifest (org.opencontainers.image.base.digest). */
  digest?: Digest;
  config: ImageConfig;
  layers: Descriptor[];
}

export class BaseImageError extends Error {
  constructor(
    readonly reference: string,
    message: string,
  ) {
    super(`base image ${reference}: ${message}`);
    this.name = 'BaseImageError';
  }
}

const MAX_CONFIG_BYTES = 8 << 20;

export function scratchImage(platform: Platform): BaseImage {
  return {
    name: 'scratch',
    config: {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: {},
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    },
    layers: [],
  };
}

function isAttestation(d: Descriptor): boolean {
  return (
    d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' ||
    (d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown')
  );
}

/** Picks the manifest for `platform` out of an index, skipping attestation entries. */
export function selectPlatform(reference: string, index: Index, platform: Platform): Descriptor {
  const candidates = index.manifests.filter((m) => !isAttestation(m) && isManifestType(m.mediaType));
  const match = candidates.find((m) => platformMatches(platform, m.platform));
  if (match) return match;
  const have = candidates.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ') || 'none';
  throw new BaseImageError(
    reference,
    `has no manifest for ${formatPlatform(platform)} (it has: ${have}); pick a base image built for that platform`,
  );
}

export async function resolveBase(client: RegistryClient, reference: string, platform: Platform): Promise<BaseImage> {
  if (reference === 'scratch') return scratchImage(platform);
  const ref: Reference = parseReference(reference);
  const repo: RepoRef = { registry: ref.registry, repository: ref.repository };
  const name = formatReference({ ...ref, tag: ref.tag ?? (ref.digest ? undefined : 'latest') });
  let got = await client.getManifest(repo, ref.digest ?? ref.tag ?? 'latest');
  let doc = JSON.parse(got.bytes.toString('utf8')) as Manifest | Index;
  let indexVariant: string | undefined;
  if (isIndexType(got.mediaType) || 'manifests' in doc) {
    const chosen = selectPlatform(name, doc as Index, platform);
    indexVariant = chosen.platform?.variant;
    got = await client.getManifest(repo, chosen.digest);
    doc = JSON.parse(got.bytes.toString('utf8')) as Manifest;
  }
  if (!isManifestType(got.mediaType) || !('config' in doc)) {
    throw new BaseImageError(name, `unsupported manifest media type "${got.mediaType}"; use an OCI or Docker schema 2 image`);
  }
  const manifest = doc as Manifest;
  const layers: Descriptor[] = manifest.layers.map((l) => {
    const mt = ociLayerType(l.mediaType);
    if (!mt) throw new BaseImageError(name, `layer ${l.digest} has unsupported media type "${l.mediaType}"`);
    return { mediaType: mt, digest: l.digest, size: l.size, ...(l.urls ? { urls: l.urls } : {}) };
  });
  if (manifest.config.mediaType !== MediaType.OciConfig && manifest.config.mediaType !== MediaType.DockerConfig) {
    throw new BaseImageError(name, `config has unsupported media type "${manifest.config.mediaType}"`);
  }
  const configBytes = await readStreamLimited(await client.getBlob(repo, manifest.config.digest), MAX_CONFIG_BYTES, `config of ${name}`);
  let config: ImageConfig;
  try {
    config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
  } catch {
    throw new BaseImageError(name, 'its config blob is not valid JSON');
  }
  checkConfigTypes(name, config);
  if (!config.rootfs || !Array.isArray(config.rootfs.diff_ids) || config.rootfs.diff_ids.length !== layers.length) {
    throw new BaseImageError(name, `its config lists ${config.rootfs?.diff_ids?.length ?? 0} diff_ids for ${layers.length} layers`);
  }
  if (
    config.os !== platform.os ||
    !platformMatches(platform, { os: config.os, architecture: config.architecture, variant: config.variant })
  ) {
    throw new BaseImageError(
      name,
      `is ${config.os}/${config.architecture}${config.variant ? `/${config.variant}` : ''}, not ${formatPlatform(platform)}`,
    );
  }
  // The index's variant (arm64's "v8") when the config leaves it out: the built image's
  // config and index entry then say it too (see assemble).
  if (indexVariant && !config.variant) config = { ...config, variant: indexVariant };
  return { name, repo, digest: got.digest, config, layers };
}

const STRING_LIST = 'a list of strings';
/** The fields of a config's `config` the builder reads or carries over, and the JSON type each must have. */
const FIELD_TYPES: Record<string, 'string' | typeof STRING_LIST | 'an object'> = {
  Env: STRING_LIST,
  Entrypoint: STRING_LIST,
  Cmd: STRING_LIST,
  Shell: STRING_LIST,
  OnBuild: STRING_LIST,
  User: 'string',
  WorkingDir: 'string',
  StopSignal: 'string',
  ExposedPorts: 'an object',
  Volumes: 'an object',
  Labels: 'an object',
};

function jsonType(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/**
 * A config with wrongly typed fields (`"Env": "PATH=/bin"`) would fail deep in the build with a
 * bare TypeError; this names the base and the field instead. null stands for "not set".
 */
function checkConfigTypes(name: string, config: unknown): void {
  const bad = (field: string, want: string, got: unknown) =>
    new BaseImageError(
      name,
      `its config's ${field} is ${jsonType(got)}, not ${want}; the image is malformed: rebuild it, or use another base`,
    );
  if (jsonType(config) !== 'an object')
    throw new BaseImageError(
      name,
      `its config blob is ${jsonType(config)}, not a JSON object; the image is malformed: rebuild it, or use another base`,
    );
  const c = config as Record<string, unknown>;
  for (const f of ['architecture', 'os', 'variant'] as const)
    if (c[f] !== undefined && typeof c[f] !== 'string') throw bad(f, 'a string', c[f]);
  if (c.rootfs !== undefined && jsonType(c.rootfs) !== 'an object') throw bad('rootfs', 'an object', c.rootfs);
  const diffIds = (c.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
  if (diffIds !== undefined && (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== 'string')))
    throw bad('rootfs.diff_ids', STRING_LIST, diffIds);
  if (c.history !== undefined && c.history !== null && !Array.isArray(c.history)) throw bad('history', 'a list', c.history);
  if (c.config === undefined || c.config === null) return;
  if (jsonType(c.config) !== 'an object') throw bad('config', 'an object', c.config);
  for (const [field, want] of Object.entries(FIELD_TYPES)) {
    const v = (c.config as Record<string, unknown>)[field];
    if (v === undefined || v === null) continue;
    const ok =
      want === STRING_LIST
        ? Array.isArray(v) && v.every((x) => typeof x === 'string')
        : want === 'string'
          ? typeof v === 'string'
          : jsonType(v) === 'an object';
    if (!ok) throw bad(`config.${field}`, want, v);
  }
}
