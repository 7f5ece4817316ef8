import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonBytes, sha256, type Digest } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/mediatypes.js';
import type { Manifest } from '../src/oci/types.js';
import { RegistryClient, type RepoRef } from '../src/registry/client.js';
import { credentialsFrom } from '../src/registry/credentials.js';
import { RegistryError } from '../src/registry/errors.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

const FAST_RETRY = { retries: 2, baseDelayMs: 5, maxDelayMs: 50 };

let dir: string;

/** A few MiB of deterministic, incompressible bytes, written to a file; returns its digest. */
async function makeBlobFile(path: string, size: number): Promise<Digest> {
  let seed = createHash('sha256').update('oci-build-action test blob').digest();
  let left = size;
  const hash = createHash('sha256');
  const gen = Readable.from(
    (function* () {
      while (left > 0) {
        const parts: Buffer[] = [];
        for (let i = 0; i < 2048 && left > 0; i++) {
          seed = createHash('sha256').update(seed).digest();
          const part = seed.subarray(0, Math.min(32, left));
          left -= part.length;
          parts.push(part);
        }
        const chunk = Buffer.concat(parts);
        hash.update(chunk);
        yield chunk;
      }
    })(),
  );
  await pipeline(gen, createWriteStream(path));
  return `sha256:${hash.digest('hex')}`;
}

async function streamDigest(s: Readable): Promise<{ digest: Digest; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of s) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/** Pushes a small image (config + one layer from a file) and returns its manifest. */
async function pushImage(c: RegistryClient, repo: RepoRef, layerPath: string, layerDigest: Digest, layerSize: number, tag: string) {
  await c.uploadBlob(repo, layerDigest, layerSize, () => createReadStream(layerPath, { highWaterMark: 256 * 1024 }));
  const config = jsonBytes({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/bin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [layerDigest] },
  });
  const configDigest = sha256(config);
  await c.uploadBlob(repo, configDigest, config.length, () => Readable.from([config]));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configDigest, size: config.length },
    layers: [{ mediaType: MediaType.OciLayer, digest: layerDigest, size: layerSize }],
  };
  const bytes = jsonBytes(manifest);
  const digest = await c.putManifest(repo, tag, MediaType.OciManifest, bytes);
  return { bytes, digest, configDigest };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oci-build-registry-it-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('RegistryClient against a real registry', () => {
  let reg: TestRegistry;
  let c: RegistryClient;
  const layerSize = 3 * 1024 * 1024 + 12345;
  let layerPath: string;
  let layerDigest: Digest;

  beforeAll(async () => {
    reg = await startRegistry();
    c = new RegistryClient({ retry: FAST_RETRY });
    layerPath = join(dir, 'layer.bin');
    layerDigest = await makeBlobFile(layerPath, layerSize);
  });
  afterAll(async () => {
    await c?.close();
    await reg?.stop();
  });

  it('uploads, finds, mounts and streams back a blob of a few MiB', async () => {
    const repo = { registry: reg.host, repository: 'acme/app' };
    expect(await c.blobExists(repo, layerDigest)).toBe(false);
    await c.uploadBlob(repo, layerDigest, layerSize, () => createReadStream(layerPath));
    expect(await c.blobExists(repo, layerDigest)).toBe(true);

    const other = { registry: reg.host, repository: 'acme/other' };
    expect(await c.blobExists(other, layerDigest)).toBe(false);
    expect(await c.mountBlob(other, layerDigest, 'acme/app')).toBe(true);
    expect(await c.blobExists(other, layerDigest)).toBe(true);
    // A mount from a repository that lacks the blob is refused (202), not an error.
    expect(await c.mountBlob({ registry: reg.host, repository: 'acme/third' }, layerDigest, 'acme/nothing-here')).toBe(false);

    const back = await streamDigest(await c.getBlob(other, layerDigest, layerSize));
    expect(back).toEqual({ digest: layerDigest, size: layerSize });
  });

  it('puts a manifest and gets it back by tag and by digest', async () => {
    const repo = { registry: reg.host, repository: 'acme/img' };
    const { bytes, digest, configDigest } = await pushImage(c, repo, layerPath, layerDigest, layerSize, 'v1');
    expect(digest).toBe(sha256(bytes));

    const byTag = await c.getManifest(repo, 'v1');
    expect(byTag.digest).toBe(digest);
    expect(byTag.mediaType).toBe(MediaType.OciManifest);
    expect(byTag.bytes.equals(bytes)).toBe(true);
    const byDigest = await c.getManifest(repo, digest);
    expect(byDigest.bytes.equals(bytes)).toBe(true);

    expect(await c.headManifest(repo, 'v1')).toEqual({ mediaType: MediaType.OciManifest, digest, size: bytes.length });
    expect(await c.headManifest(repo, 'missing')).toBeUndefined();

    const config = await streamDigest(await c.getBlob(repo, configDigest));
    expect(config.digest).toBe(configDigest);

    const err = await c.getManifest(repo, 'missing').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(404);
    expect((err as RegistryError).codes).toContain('MANIFEST_UNKNOWN');
    expect((err as RegistryError).temporary).toBe(false);
  });
});

describe('RegistryClient against a registry with htpasswd Basic auth', () => {
  let reg: TestRegistry;
  const blobPath = () => join(dir, 'auth-layer.bin');
  let blobDigest: Digest;
  const blobSize = 1024 * 1024 + 7;

  beforeAll(async () => {
    const htpasswd = execFileSync('htpasswd', ['-Bbn', 'user', 'pass'], { encoding: 'utf8' });
    const htpasswdPath = join(dir, 'htpasswd');
    writeFileSync(htpasswdPath, htpasswd);
    reg = await startRegistry({ authYaml: `  htpasswd:\n    realm: test-realm\n    path: ${htpasswdPath}` });
    blobDigest = await makeBlobFile(blobPath(), blobSize);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('pushes and pulls with credentials', async () => {
    const c = new RegistryClient({
      retry: FAST_RETRY,
      credentials: credentialsFrom({ explicit: { [reg.host]: { username: 'user', password: 'pass' } }, dockerConfigPath: null }),
    });
    try {
      const repo = { registry: reg.host, repository: 'private/app' };
      const { bytes, digest } = await pushImage(c, repo, blobPath(), blobDigest, blobSize, 'latest');
      expect((await c.getManifest(repo, 'latest')).bytes.equals(bytes)).toBe(true);
      expect((await c.headManifest(repo, digest))?.digest).toBe(digest);
      expect(await streamDigest(await c.getBlob(repo, blobDigest))).toEqual({ digest: blobDigest, size: blobSize });
      expect(await c.mountBlob({ registry: reg.host, repository: 'private/copy' }, blobDigest, 'private/app')).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('fails with a clear 401 without credentials', async () => {
    const c = new RegistryClient({ retry: FAST_RETRY, credentials: credentialsFrom({ dockerConfigPath: null }) });
    try {
      const repo = { registry: reg.host, repository: 'private/app' };
      const err = await c.uploadBlob(repo, blobDigest, blobSize, () => createReadStream(blobPath())).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      expect((err as RegistryError).status).toBe(401);
      expect((err as RegistryError).temporary).toBe(false);
      expect((err as Error).message).toMatch(new RegExp(`^POST http://${reg.host}/v2/private/app/blobs/uploads/ failed: 401 UNAUTHORIZED`));
      expect((err as Error).message).toMatch(/no credentials configured for 127\.0\.0\.1:\d+/);
      await expect(c.getManifest(repo, 'latest')).rejects.toThrow(/401/);
    } finally {
      await c.close();
    }
  });

  it('fails with a clear 401 when the password is wrong, without echoing it', async () => {
    const c = new RegistryClient({
      retry: FAST_RETRY,
      credentials: credentialsFrom({ explicit: { [reg.host]: { username: 'user', password: 'wrong-password' } }, dockerConfigPath: null }),
    });
    try {
      const err = await c.getManifest({ registry: reg.host, repository: 'private/app' }, 'latest').catch((e: unknown) => e);
      expect((err as RegistryError).status).toBe(401);
      expect((err as Error).message).toMatch(/credentials for 127\.0\.0\.1:\d+ were rejected/);
      expect((err as Error).message).not.toContain('wrong-password');
    } finally {
      await c.close();
    }
  });
});
