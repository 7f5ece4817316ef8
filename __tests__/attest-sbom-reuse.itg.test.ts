import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';

/**
 * A fresh runner (new --cache-dir) rebuilding an image the registry holds takes the SBOM
 * referrer the previous build attached instead of reading the image's layers; anything but our
 * own intact referrer for that very manifest is made anew. Distribution 2.8: the fallback tag.
 */

const CDX = 'application/vnd.cyclonedx+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const EMPTY = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha('{}'), size: 2 };

interface Built {
  digest: string;
  sbom: string;
  reads: { images: number; fromCache: number; fromReferrer: number; layersRead: number; bytesRead: number; layersShared: number };
}

let reg: TestRegistry;
let work: string;
let runs = 0;

function sha(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** The build file of one variant `name` pushed to sbomreuse/<name>, one file step with `content`. */
function buildFile(name: string, content: string): string {
  const file = join(work, `${name}.yml`);
  writeFileSync(
    file,
    [
      'version: 1',
      'variants:',
      `  ${name}:`,
      `    base: ${reg.host}/base/busybox:single`,
      `    image: ${reg.host}/sbomreuse/${name}`,
      '    steps:',
      '      - file: /app/node_modules/left-pad/package.json',
      `        content: '{"name":"left-pad","version":"${content}","license":"WTFPL"}'`,
    ].join('\n'),
  );
  return file;
}

/** Builds and pushes with a new cache directory (a fresh runner), `--verbose` for the SBOM's reads. */
async function build(name: string, content: string, extra: string[] = []): Promise<Built> {
  const map = join(work, `map-${++runs}.json`);
  const r = await cli(
    [
      'build',
      '--config',
      buildFile(name, content),
      '--push',
      '--tag',
      'latest',
      '--digest-map',
      map,
      '--cache-dir',
      join(work, `cache-${runs}`),
      '--verbose',
      ...extra,
    ],
    { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } },
  );
  expect(r.code, r.stderr.slice(-4000)).toBe(0);
  const entry = JSON.parse(readFileSync(map, 'utf8'))[name] as { digest: string; attestations: Record<string, { sbom: string }> };
  return { digest: entry.digest, sbom: entry.attestations[entry.digest]!.sbom, reads: JSON.parse(r.stdout).sbom };
}

async function get(path: string, init?: RequestInit): Promise<Response> {
  return await fetch(`${reg.url}/v2/${path}`, init);
}
/** The fallback referrers index of a subject, as raw bytes (distribution 2.8 has no referrers API). */
async function referrersIndex(name: string, subject: string): Promise<string> {
  return (
    await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/sbomreuse/${name}:sha256-${subject.slice(7)}`])
  ).stdout;
}
async function sbomBlobOf(name: string, artifact: string): Promise<{ digest: string; bytes: Buffer }> {
  const m = (await (await get(`sbomreuse/${name}/manifests/${artifact}`, { headers: { accept: OCI_MANIFEST } })).json()) as {
    layers: { digest: string }[];
  };
  const res = await get(`sbomreuse/${name}/blobs/${m.layers[0]!.digest}`);
  return { digest: m.layers[0]!.digest, bytes: Buffer.from(await res.arrayBuffer()) };
}
async function pushBlob(name: string, bytes: Buffer): Promise<void> {
  const start = await get(`sbomreuse/${name}/blobs/uploads/`, { method: 'POST' });
  const loc = new URL(start.headers.get('location')!, reg.url);
  loc.searchParams.set('digest', sha(bytes));
  expect((await fetch(loc, { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream' } })).status).toBe(201);
}
async function putManifest(name: string, ref: string, mediaType: string, bytes: Buffer): Promise<void> {
  expect(
    (await get(`sbomreuse/${name}/manifests/${ref}`, { method: 'PUT', body: bytes, headers: { 'content-type': mediaType } })).status,
  ).toBe(201);
}
/** The registry's file holding a blob (the filesystem driver's layout). */
function blobFile(digest: string): string {
  const hex = digest.slice(7);
  return join(reg.dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

beforeAll(async () => {
  reg = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'attest-sbom-reuse-'));
  await pushBusyboxBase(reg.host);
}, 300_000);
afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('SBOM referrer reuse on a fresh runner', () => {
  it('reuses our SBOM referrer of the same manifest: same digest, no layer read, no new referrer', async () => {
    const first = await build('app', '1.3.0');
    expect(first.reads).toMatchObject({ images: 1, fromReferrer: 0 });
    expect(first.reads.layersRead).toBeGreaterThan(0);
    const before = await referrersIndex('app', first.digest);
    const again = await build('app', '1.3.0');
    expect(again.digest).toBe(first.digest);
    expect(again.sbom).toBe(first.sbom);
    expect(again.reads).toEqual({ images: 1, fromCache: 0, fromReferrer: 1, layersRead: 0, bytesRead: 0, layersShared: 0 });
    expect(await referrersIndex('app', first.digest)).toBe(before);
    const listed = JSON.parse(before).manifests.filter((m: { artifactType: string }) => m.artifactType === CDX);
    expect(listed.map((m: { digest: string }) => m.digest)).toEqual([first.sbom]);
  }, 300_000);

  it('a changed image gets a new SBOM of its own', async () => {
    const old = await build('app', '1.3.0');
    const changed = await build('app', '1.3.1');
    expect(changed.digest).not.toBe(old.digest);
    expect(changed.sbom).not.toBe(old.sbom);
    expect(changed.reads.fromReferrer).toBe(0);
    expect(changed.reads.layersRead).toBeGreaterThan(0);
    const doc = JSON.parse((await sbomBlobOf('app', changed.sbom)).bytes.toString('utf8'));
    expect(doc.metadata.component.version).toBe(changed.digest);
    expect(doc.components.map((c: { purl: string }) => c.purl)).toContain('pkg:npm/left-pad@1.3.1');
  }, 300_000);

  it("another tool's SBOM referrer is not reused", async () => {
    const ours = await build('foreign', '2.0.0');
    // The same document but made by another tool, the only SBOM referrer of the manifest.
    const doc = JSON.parse((await sbomBlobOf('foreign', ours.sbom)).bytes.toString('utf8'));
    doc.metadata.tools.components = [{ type: 'application', name: 'other-scanner', version: '9.9' }];
    const theirs = Buffer.from(JSON.stringify(doc));
    await pushBlob('foreign', theirs);
    const subject = JSON.parse(await referrersIndex('foreign', ours.digest)) as { manifests: { digest: string }[] };
    const head = await get(`sbomreuse/foreign/manifests/${ours.digest}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
    const artifact = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: CDX,
        config: EMPTY,
        layers: [{ mediaType: CDX, digest: sha(theirs), size: theirs.length }],
        subject: { mediaType: OCI_MANIFEST, digest: ours.digest, size: Number(head.headers.get('content-length')) },
      }),
    );
    await putManifest('foreign', sha(artifact), OCI_MANIFEST, artifact);
    const others = subject.manifests.filter((m) => m.digest !== ours.sbom);
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [...others, { mediaType: OCI_MANIFEST, digest: sha(artifact), size: artifact.length, artifactType: CDX }],
    };
    await putManifest('foreign', `sha256-${ours.digest.slice(7)}`, index.mediaType, Buffer.from(JSON.stringify(index)));
    expect((await get(`sbomreuse/foreign/manifests/${ours.sbom}`, { method: 'DELETE' })).status).toBe(202);

    const again = await build('foreign', '2.0.0');
    expect(again.digest).toBe(ours.digest);
    expect(again.reads.fromReferrer).toBe(0);
    // Made anew from the layers: the registry records' diffID checks read them and fed the SBOM.
    expect(again.reads.layersShared).toBeGreaterThan(0);
    expect(again.sbom).toBe(ours.sbom); // made anew: the same deterministic document
    const listed = JSON.parse(await referrersIndex('foreign', ours.digest)).manifests.map((m: { digest: string }) => m.digest);
    expect(listed).toEqual(expect.arrayContaining([sha(artifact), ours.sbom]));
    expect((await get(`sbomreuse/foreign/manifests/${ours.sbom}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } })).status).toBe(200);
  }, 300_000);

  it('a referrer whose document is missing is not reused; the build pushes a fresh one', async () => {
    const ours = await build('missing', '3.0.0');
    const blob = await sbomBlobOf('missing', ours.sbom);
    expect((await get(`sbomreuse/missing/blobs/${blob.digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await get(`sbomreuse/missing/blobs/${blob.digest}`)).status).toBe(404);
    const again = await build('missing', '3.0.0');
    expect(again.reads.fromReferrer).toBe(0);
    // Made anew from the layers: the registry records' diffID checks read them and fed the SBOM.
    expect(again.reads.layersShared).toBeGreaterThan(0);
    expect(again.sbom).toBe(ours.sbom);
    const now = await sbomBlobOf('missing', again.sbom);
    expect(sha(now.bytes)).toBe(blob.digest);
  }, 300_000);

  it('a referrer whose document is corrupt is not reused; the build still succeeds', async () => {
    const ours = await build('corrupt', '4.0.0');
    const blob = await sbomBlobOf('corrupt', ours.sbom);
    const bad = Buffer.from(blob.bytes);
    bad[10] = bad[10]! ^ 0x20; // same size, other bytes
    writeFileSync(blobFile(blob.digest), bad);
    expect(sha((await sbomBlobOf('corrupt', ours.sbom)).bytes)).not.toBe(blob.digest);
    const again = await build('corrupt', '4.0.0');
    expect(again.reads.fromReferrer).toBe(0);
    // Made anew from the layers: the registry records' diffID checks read them and fed the SBOM.
    expect(again.reads.layersShared).toBeGreaterThan(0);
    expect(again.sbom).toBe(ours.sbom);
  }, 300_000);

  it('--no-cache makes the SBOM from the layers', async () => {
    const ours = await build('nocache', '5.0.0');
    const again = await build('nocache', '5.0.0', ['--no-cache']);
    expect(again.sbom).toBe(ours.sbom);
    expect(again.reads.fromReferrer).toBe(0);
    // No cache, no records: the layers are read for the SBOM.
    expect(again.reads.layersRead).toBeGreaterThan(0);
  }, 300_000);
});

describe('SBOM referrer reuse through the referrers API', () => {
  it('finds our referrer by the API, reuses it and writes no manifest for it and no fallback tag', async () => {
    const { startMemRegistry } = await import('./helpers/referrers-registry.js');
    const mem = await startMemRegistry({ referrers: true });
    try {
      const file = join(work, 'api.yml');
      writeFileSync(
        file,
        [
          'version: 1',
          'variants:',
          '  app:',
          '    base: scratch',
          `    image: ${mem.host}/acme/app`,
          '    steps:',
          '      - file: /app/node_modules/left-pad/package.json',
          `        content: '{"name":"left-pad","version":"1.3.0","license":"WTFPL"}'`,
        ].join('\n'),
      );
      const once = async (n: number) => {
        const map = join(work, `api-${n}.json`);
        const args = ['build', '--config', file, '--push', '--tag', 'v1', '--digest-map', map, '--cache-dir', join(work, `cache-api-${n}`)];
        const r = await cli([...args, '--cache-registry', 'false', '--verbose'], {
          env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' },
        });
        expect(r.code, r.stderr.slice(-3000)).toBe(0);
        const entry = JSON.parse(readFileSync(map, 'utf8')).app as { digest: string; attestations: Record<string, { sbom: string }> };
        return { digest: entry.digest, sbom: entry.attestations[entry.digest]!.sbom, reads: JSON.parse(r.stdout).sbom as Built['reads'] };
      };
      const first = await once(1);
      expect(first.reads.layersRead).toBeGreaterThan(0);
      const from = mem.requests.length;
      const again = await once(2);
      expect(again.digest).toBe(first.digest);
      expect(again.sbom).toBe(first.sbom);
      expect(again.reads).toEqual({ images: 1, fromCache: 0, fromReferrer: 1, layersRead: 0, bytesRead: 0, layersShared: 0 });
      const second = mem.requests.slice(from);
      expect(second.some((q) => q.method === 'GET' && q.path === `/v2/acme/app/referrers/${first.digest}`)).toBe(true);
      // Nothing changed: neither the image's manifest and tag nor the SBOM's artifact manifest is written.
      expect(second.filter((q) => q.method === 'PUT' && q.path.includes('/manifests/'))).toEqual([]);
      expect([...mem.tags.keys()].filter((t) => t.includes('sha256-'))).toEqual([]);
    } finally {
      await mem.close();
    }
  }, 300_000);
});
