import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { attachToRegistry, fallbackTag, type ReferrersRegistry } from '../src/attest/referrers.js';
import { attachToLayout } from '../src/attest/layout.js';
import { IN_TOTO_JSON, provenanceStatement } from '../src/attest/provenance.js';
import type { Attestation } from '../src/attest/artifact.js';
import { RegistryClient } from '../src/registry/client.js';
import { sha256, type Digest } from '../src/oci/digest.js';
import type { Descriptor } from '../src/oci/types.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startMemRegistry, type MemRegistry } from './helpers/referrers-registry.js';
import { pushMultiArchBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { validateOci } from './helpers/oci-schema.js';

const CDX = 'application/vnd.cyclonedx+json';

function provenance(name: string, digest: Digest, note = ''): Attestation {
  const { bytes } = provenanceStatement([{ name, digest }], {
    mode: 'min',
    buildFile: { path: `oci-build.yml${note}`, digest: sha256('x') },
    builder: { id: 'test', version: '0' },
    bases: [],
    args: {},
    variants: [],
  });
  return {
    artifactType: IN_TOTO_JSON,
    mediaType: IN_TOTO_JSON,
    bytes,
    annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v1' },
  };
}
const sbom = (tag: string): Attestation => ({
  artifactType: CDX,
  mediaType: CDX,
  bytes: Buffer.from(JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', version: 1, metadata: { tools: [tag] } })),
});

async function raw(ref: string): Promise<any> {
  return JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout);
}

describe('referrers on a registry without the referrers API (distribution 2.8: the fallback tag)', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let indexRef: string;
  let index: { manifests: Descriptor[] };
  let indexDesc: Descriptor;
  const repo = () => ({ registry: reg.host, repository: 'base/multi' });

  beforeAll(async () => {
    reg = await startRegistry();
    client = new RegistryClient();
    indexRef = await pushMultiArchBase(reg.host);
    const m = await client.getManifest(repo(), 'latest');
    index = JSON.parse(m.bytes.toString('utf8'));
    indexDesc = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  }, 300_000);
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
  });

  it('attaches provenance and SBOM to each platform manifest and the index; the image index keeps only its platforms', async () => {
    const before = await raw(indexRef);
    for (const d of [...index.manifests, indexDesc]) {
      const atts = d === indexDesc ? [provenance(indexRef, d.digest)] : [provenance(indexRef, d.digest), sbom(d.digest)];
      const r = await attachToRegistry(client, repo(), d, atts);
      expect(r.via).toBe('tag');
      const fallback = await raw(`${reg.host}/base/multi:${fallbackTag(d.digest)}`);
      expect(validateOci('index', fallback)).toEqual([]);
      expect(fallback.manifests.map((e: Descriptor) => [e.digest, e.artifactType])).toEqual(
        r.manifests.map((e) => [e.digest, e.artifactType]),
      );
      expect(fallback.manifests.map((e: Descriptor) => e.artifactType)).toEqual(d === indexDesc ? [IN_TOTO_JSON] : [IN_TOTO_JSON, CDX]);
      for (const e of fallback.manifests as Descriptor[]) {
        const art = await raw(`${reg.host}/base/multi@${e.digest}`);
        expect(validateOci('manifest', art)).toEqual([]);
        expect(art.subject).toEqual({ mediaType: d.mediaType, digest: d.digest, size: d.size });
        expect(art.artifactType).toBe(e.artifactType);
        if (e.artifactType === IN_TOTO_JSON) {
          const blob = await fetch(`${reg.url}/v2/base/multi/blobs/${art.layers[0].digest}`);
          const st = (await blob.json()) as { subject: { digest: { sha256: string } }[] };
          expect(`sha256:${st.subject[0]!.digest.sha256}`).toBe(d.digest);
        }
      }
    }
    const after = await raw(indexRef);
    expect(after).toEqual(before);
    expect(after.manifests.map((m: Descriptor) => `${m.platform?.os}/${m.platform?.architecture}`)).toEqual(['linux/amd64', 'linux/arm64']);
  }, 300_000);

  it('a re-run adds no entry and leaves the fallback index as it was', async () => {
    const d = index.manifests[0]!;
    const tag = `${reg.host}/base/multi:${fallbackTag(d.digest)}`;
    const before = (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${tag}`])).stdout;
    // What the re-run writes: nothing (its artifact manifests are there by digest, their blobs too).
    const written: string[] = [];
    const watched: ReferrersRegistry = {
      blobExists: (r, dg) => client.blobExists(r, dg),
      uploadBlob: (r, dg, size, open) => {
        written.push(dg);
        return client.uploadBlob(r, dg, size, open);
      },
      putManifest: (r, ref, mt, bytes) => {
        written.push(ref);
        return client.putManifest(r, ref, mt, bytes);
      },
      getManifest: (r, ref) => client.getManifest(r, ref),
      headManifest: (r, ref) => client.headManifest(r, ref),
      getReferrers: (r, dg) => client.getReferrers(r, dg),
    };
    await attachToRegistry(watched, repo(), d, [provenance(indexRef, d.digest), sbom(d.digest)]);
    expect(written).toEqual([]);
    expect((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${tag}`])).stdout).toBe(before);
    expect((await raw(tag)).manifests).toHaveLength(2);
  }, 120_000);

  it('two jobs attaching to the same image at once keep both entries', async () => {
    const d = index.manifests[1]!;
    const other = new RegistryClient();
    try {
      const [a, b] = await Promise.all([
        attachToRegistry(client, repo(), d, [provenance(indexRef, d.digest, '#job-a')]),
        attachToRegistry(other, repo(), d, [provenance(indexRef, d.digest, '#job-b')]),
      ]);
      const digests = (await raw(`${reg.host}/base/multi:${fallbackTag(d.digest)}`)).manifests.map((e: Descriptor) => e.digest);
      expect(digests).toContain(a.manifests[0]!.digest);
      expect(digests).toContain(b.manifests[0]!.digest);
      expect(new Set(digests).size).toBe(digests.length);
    } finally {
      await other.close();
    }
  }, 120_000);
});

describe('referrers on a registry with the referrers API', () => {
  let mem: MemRegistry;
  let client: RegistryClient;
  beforeAll(async () => {
    mem = await startMemRegistry({ referrers: true });
    client = new RegistryClient();
  });
  afterAll(async () => {
    await client?.close();
    await mem?.close();
  });

  it('uses the API: the registry lists the artifacts, no fallback tag is written', async () => {
    const repo = { registry: mem.host, repository: 'acme/app' };
    const cfg = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    await client.uploadBlob(repo, sha256(cfg), cfg.length, () => Readable.from([cfg]));
    const image = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: cfg.length },
        layers: [],
      }),
    );
    const digest = await client.putManifest(repo, 'latest', 'application/vnd.oci.image.manifest.v1+json', image);
    const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: image.length };
    const r = await attachToRegistry(client, repo, subject, [provenance('acme/app', digest), sbom('x')]);
    expect(r.via).toBe('api');
    expect(mem.requests.some((q) => q.method === 'GET' && q.path === `/v2/acme/app/referrers/${digest}`)).toBe(true);
    expect(mem.requests.some((q) => q.path.endsWith(`/manifests/${fallbackTag(digest)}`))).toBe(false);
    expect([...mem.tags.keys()]).toEqual(['acme/app:latest']);
    const listed = await client.getReferrers(repo, digest);
    expect(listed?.manifests.map((e) => e.artifactType).sort()).toEqual([CDX, IN_TOTO_JSON].sort());
  });

  it.each([false, 'forbidden'] as const)('a registry without the API (referrers query answered %s) gets the fallback tag', async (mode) => {
    const plain = await startMemRegistry({ referrers: mode });
    try {
      const repo = { registry: plain.host, repository: 'acme/app' };
      const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('img'), size: 3 };
      const r = await attachToRegistry(client, repo, subject, [sbom('y')]);
      expect(r.via).toBe('tag');
      expect(plain.tags.get(`acme/app:${fallbackTag(subject.digest)}`)).toBeDefined();
    } finally {
      await plain.close();
    }
  });
});

describe('referrers in an OCI layout', () => {
  it('adds artifact manifests to index.json with their artifactType; their subject is the image; no duplicates on re-run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'attest-layout-'));
    try {
      const { writeFileSync, mkdirSync } = await import('node:fs');
      mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
      writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('img'), size: 3 };
      writeFileSync(
        join(dir, 'index.json'),
        JSON.stringify({ schemaVersion: 2, manifests: [{ ...subject, annotations: { 'org.opencontainers.image.ref.name': 'app' } }] }),
      );
      const first = await attachToLayout(dir, subject, [provenance('app', subject.digest), sbom('z')]);
      await attachToLayout(dir, subject, [provenance('app', subject.digest), sbom('z')]);
      const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
      expect(validateOci('index', index)).toEqual([]);
      expect(index.manifests.map((m: Descriptor) => m.artifactType ?? m.annotations?.['org.opencontainers.image.ref.name'])).toEqual([
        'app',
        IN_TOTO_JSON,
        CDX,
      ]);
      for (const d of first) {
        const art = JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', d.digest.slice(7)), 'utf8'));
        expect(art.subject.digest).toBe(subject.digest);
        expect(sha256(readFileSync(join(dir, 'blobs', 'sha256', d.digest.slice(7))))).toBe(d.digest);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
