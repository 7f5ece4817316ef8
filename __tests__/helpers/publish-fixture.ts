/**
 * Small multi-blob images for publish tests: layers from random bytes (the registry does not look
 * inside layers), a config, an OCI manifest; a BlobStore holding the local blobs; a capturing
 * logger; and tag verification with skopeo straight against the registry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { jsonBytes, sha256, type Digest } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import type { Descriptor, ImageConfig, Manifest } from '../../src/oci/types.js';
import { BlobStore } from '../../src/layer/blobstore.js';
import type { BuiltImage, BuiltVariant } from '../../src/image/image.js';
import { BlobFetcher } from '../../src/image/fetch.js';
import type { Layer } from '../../src/oci/layer.js';
import type { RegistryClient, RepoRef } from '../../src/registry/client.js';
import type { Logger } from '../../src/log.js';
import { run } from './exec.js';

export interface CapturingLogger extends Logger {
  lines: string[];
}

/** A debug-level logger that keeps every line. */
export function captureLogger(sink: string[] = []): CapturingLogger {
  return {
    lines: sink,
    info: (m) => {
      sink.push(`info: ${m}`);
    },
    warn: (m) => {
      sink.push(`warn: ${m}`);
    },
    debug: (m) => {
      sink.push(`debug: ${m}`);
    },
    group: async (n, fn) => {
      sink.push(`group: ${n}`);
      return await fn();
    },
  };
}

/** Where a test layer's blob is: the local store, or a repository its publisher fetches it from. */
export type TestSource = { kind: 'local' } | { kind: 'remote'; repo: RepoRef };

/** A layer record of a test image; bindTargets() turns it into a real (store or fetcher) Layer. */
export type TestImageLayer = Layer & { source: TestSource };

export interface TestLayer {
  bytes: Buffer;
  layer: TestImageLayer;
}

export function layerOf(bytes: Buffer, source: TestSource, createdBy = 'test'): TestLayer {
  const digest = sha256(bytes);
  const unbound = () => Promise.reject(new Error('test layer not bound to a store: use bindTargets()'));
  return {
    bytes,
    layer: { descriptor: { mediaType: MediaType.OciLayer, digest, size: bytes.length }, diffId: digest, source, createdBy, open: unbound },
  };
}

/**
 * The targets with their layers read through `store` (local ones) or fetched with `client`
 * (remote ones, as a build's base layers are).
 */
export function bindTargets<T extends { variant: BuiltVariant }>(targets: T[], store: BlobStore, client: RegistryClient): T[] {
  const fetcher = new BlobFetcher(client, store);
  const bind = (l: Layer): Layer => {
    const source = (l as TestImageLayer).source;
    return source?.kind === 'remote'
      ? fetcher.layer(l.descriptor, l.diffId, source.repo, l.createdBy)
      : store.layer(l.descriptor, l.diffId, l.createdBy);
  };
  return targets.map((t) => ({
    ...t,
    variant: { ...t.variant, images: t.variant.images.map((i) => ({ ...i, layers: i.layers.map(bind) })) },
  }));
}

export function randomLayer(size: number, source: TestSource = { kind: 'local' }): TestLayer {
  return layerOf(randomBytes(size), source);
}

/** A BuiltImage over the given layers (its config names `label` so images differ). */
export function imageOf(layers: TestLayer[], label: string): BuiltImage {
  const platform = { architecture: 'amd64', os: 'linux' };
  const config: ImageConfig = {
    created: '1970-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/bin:/bin'], Labels: { test: label } },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.layer.diffId) },
    history: layers.map(() => ({ created: '1970-01-01T00:00:00Z', created_by: 'test' })),
  } as ImageConfig;
  const configBytes = jsonBytes(config);
  const configDescriptor: Descriptor = { mediaType: MediaType.OciConfig, digest: sha256(configBytes), size: configBytes.length };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: configDescriptor,
    layers: layers.map((l) => l.layer.descriptor),
  };
  const manifestBytes = jsonBytes(manifest);
  const manifestDescriptor: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256(manifestBytes), size: manifestBytes.length };
  return {
    variant: label,
    platform,
    config,
    configBytes,
    configDescriptor,
    layers: layers.map((l) => l.layer),
    manifest,
    manifestBytes,
    manifestDescriptor,
    totalSize: manifestBytes.length + configBytes.length + layers.reduce((n, l) => n + l.bytes.length, 0),
  };
}

/** A single-platform variant: its tags point at the image's manifest. */
export function variantOf(image: BuiltImage): BuiltVariant {
  return {
    variant: image.variant,
    images: [image],
    tagged: image.manifestDescriptor,
    taggedBytes: image.manifestBytes,
    totalSize: image.totalSize,
  };
}

/** A fresh BlobStore in a temp dir holding the image's local layers and config. */
export async function storeFor(image: BuiltImage, layers: TestLayer[], parent = tmpdir()): Promise<BlobStore> {
  const store = new BlobStore(mkdtempSync(join(parent, 'store-')));
  for (const l of layers) if (l.layer.source.kind === 'local') await store.putBytes(l.layer.descriptor.digest, l.bytes);
  await store.putBytes(image.configDescriptor.digest, image.configBytes);
  return store;
}

/** Pushes an image with the plain client (no faults): blobs, manifest, tags. */
export async function pushDirect(
  client: RegistryClient,
  repo: RepoRef,
  image: BuiltImage,
  layers: TestLayer[],
  tags: string[],
): Promise<void> {
  for (const l of layers) {
    if (!(await client.blobExists(repo, l.layer.descriptor.digest))) {
      await client.uploadBlob(repo, l.layer.descriptor.digest, l.bytes.length, () => Readable.from([l.bytes]));
    }
  }
  await client.uploadBlob(repo, image.configDescriptor.digest, image.configBytes.length, () => Readable.from([image.configBytes]));
  await client.putManifest(repo, image.manifestDescriptor.digest, image.manifestDescriptor.mediaType, image.manifestBytes);
  for (const t of tags) await client.putManifest(repo, t, image.manifestDescriptor.mediaType, image.manifestBytes);
}

/**
 * What a tag points at, asked with skopeo straight from the registry: the sha256 of the raw
 * manifest bytes, or undefined when the tag does not exist.
 */
export async function tagDigest(
  registryHost: string,
  repository: string,
  tag: string,
  creds?: { username: string; password: string },
): Promise<Digest | undefined> {
  const args = ['inspect', '--raw', '--tls-verify=false', '--retry-times', '0'];
  if (creds) args.push('--creds', `${creds.username}:${creds.password}`);
  else args.push('--no-creds');
  args.push(`docker://${registryHost}/${repository}:${tag}`);
  const r = await run('skopeo', args, { allowFail: true, timeoutMs: 30_000 });
  if (r.code !== 0) {
    if (/manifest unknown|not found|MANIFEST_UNKNOWN|NAME_UNKNOWN/i.test(r.stderr)) return undefined;
    throw new Error(`skopeo inspect ${registryHost}/${repository}:${tag} failed: ${r.stderr}`);
  }
  return `sha256:${createHash('sha256').update(Buffer.from(r.stdout, 'utf8')).digest('hex')}`;
}
