import { MediaType } from '../oci/mediatypes.js';
import { descriptorPlatform, platformMatches } from '../oci/platform.js';
import { jsonBytes, sha256 } from '../oci/digest.js';
import type { ContainerConfig, Descriptor, HistoryEntry, ImageConfig, Index, Manifest, Platform } from '../oci/types.js';
import type { VariantSpec } from '../config/model.js';
import type { Layer } from '../oci/layer.js';
import { builtImage, builtVariant, type BuiltImage, type BuiltVariant } from '../image/image.js';

export interface AssembleInput {
  variant: VariantSpec;
  platform: Platform;
  /** Config of the image we start from (base or `from` variant). */
  parentConfig: ImageConfig;
  /** Layers of the image we start from, then the ones this variant wrote. */
  parentLayers: Layer[];
  newLayers: Layer[];
  /** Annotations describing the base (org.opencontainers.image.base.*). */
  baseAnnotations: Record<string, string>;
  /** RFC 3339 time for `created` (SOURCE_DATE_EPOCH or the epoch). */
  created: string;
}

export const HISTORY_COMMENT = 'oci-build-action';

/** Applies a variant's settings to its parent's runtime config, following Dockerfile semantics. */
export function applySettings(parent: ContainerConfig | undefined, v: VariantSpec): ContainerConfig {
  const c: ContainerConfig = { ...(parent ?? {}) };
  if (Object.keys(v.env).length) c.Env = mergeEnv(c.Env ?? [], v.env);
  if (v.entrypoint) {
    c.Entrypoint = v.entrypoint;
    // As in a Dockerfile, a new ENTRYPOINT drops the inherited CMD unless one is given too.
    if (!v.cmd) delete c.Cmd;
  }
  if (v.cmd) c.Cmd = v.cmd;
  if (v.workdir) c.WorkingDir = v.workdir;
  if (v.user) c.User = v.user;
  if (Object.keys(v.labels).length) c.Labels = { ...(c.Labels ?? {}), ...v.labels };
  if (v.expose.length) c.ExposedPorts = { ...(c.ExposedPorts ?? {}), ...Object.fromEntries(v.expose.map((p) => [p, {}])) };
  if (v.volumes.length) c.Volumes = { ...(c.Volumes ?? {}), ...Object.fromEntries(v.volumes.map((p) => [p, {}])) };
  if (v.stopSignal) c.StopSignal = v.stopSignal;
  if (v.healthcheck) c.Healthcheck = v.healthcheck;
  if (v.onBuild) {
    if (v.onBuild.length) c.OnBuild = v.onBuild;
    else delete c.OnBuild;
  }
  return c;
}

export function mergeEnv(base: string[], add: Record<string, string>): string[] {
  const out = base.slice();
  for (const [k, val] of Object.entries(add)) {
    const i = out.findIndex((e) => e === k || e.startsWith(`${k}=`));
    const entry = `${k}=${val}`;
    if (i >= 0) out[i] = entry;
    else out.push(entry);
  }
  return out;
}

export function assemble(input: AssembleInput): BuiltImage {
  const { variant, platform, parentConfig } = input;
  const layers = [...input.parentLayers, ...input.newLayers];
  const history: HistoryEntry[] = [
    ...(parentConfig.history ?? []),
    ...input.newLayers.map((l) => ({ created: input.created, created_by: l.createdBy, comment: HISTORY_COMMENT })),
  ];
  const config: ImageConfig = {
    ...parentConfig,
    created: input.created,
    architecture: platform.architecture,
    os: platform.os,
    config: applySettings(parentConfig.config, variant),
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history,
  };
  if (variant.author !== undefined) config.author = variant.author;
  // arm64 means arm64/v8: a parent that spells the variant out keeps it (in the config and the
  // index entry), as the base's index says it, instead of losing it to normalization.
  const variantName =
    parentConfig.variant &&
    platformMatches(platform, { os: platform.os, architecture: platform.architecture, variant: parentConfig.variant })
      ? parentConfig.variant
      : platform.variant;
  if (variantName) config.variant = variantName;
  else delete config.variant;
  // Fields Docker writes that describe the machine that built the parent, not this image.
  delete config.container;
  delete config.container_config;
  delete config.docker_version;
  delete config.id;
  delete config.parent;
  const configBytes = jsonBytes(config);
  const configDescriptor: Descriptor = { mediaType: MediaType.OciConfig, digest: sha256(configBytes), size: configBytes.length };
  const annotations = { ...input.baseAnnotations, ...variant.annotations };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDescriptor,
    layers: layers.map((l) => l.descriptor),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
  const manifestBytes = jsonBytes(manifest);
  const manifestDescriptor: Descriptor = {
    mediaType: MediaType.OciManifest,
    digest: sha256(manifestBytes),
    size: manifestBytes.length,
    platform: { ...descriptorPlatform(platform), ...(variantName ? { variant: variantName } : {}) },
  };
  return builtImage({
    variant: variant.name,
    platform,
    config,
    configBytes,
    configDescriptor,
    layers,
    manifest,
    manifestBytes,
    manifestDescriptor,
  });
}

/** RFC 3339 timestamp for SOURCE_DATE_EPOCH (seconds), or the Unix epoch when unset. */
export function createdTime(sourceDateEpoch: number | undefined): string {
  return new Date((sourceDateEpoch ?? 0) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/**
 * The variant's result. With `asIndex` (the variant declares platforms, or several are
 * built) an OCI index lists the manifests in the order the platforms were given, so the
 * same inputs give the same index whether built in one job or merged from several.
 */
export function assembleVariant(
  variant: string,
  images: BuiltImage[],
  asIndex: boolean,
  annotations: Record<string, string>,
): BuiltVariant {
  if (!asIndex) return builtVariant(variant, images);
  const { bytes, descriptor } = buildIndex(
    images.map((i) => i.manifestDescriptor),
    annotations,
  );
  return builtVariant(variant, images, { bytes, descriptor });
}

export function buildIndex(
  manifests: Descriptor[],
  annotations: Record<string, string>,
): { doc: Index; bytes: Buffer; descriptor: Descriptor } {
  const doc: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: manifests.map((m) => ({
      mediaType: m.mediaType,
      digest: m.digest,
      size: m.size,
      ...(m.platform ? { platform: m.platform } : {}),
    })),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
  const bytes = jsonBytes(doc);
  return { doc, bytes, descriptor: { mediaType: MediaType.OciIndex, digest: sha256(bytes), size: bytes.length } };
}
