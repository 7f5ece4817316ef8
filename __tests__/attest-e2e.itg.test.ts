import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase, pushMultiArchBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';
import { validateOci } from './helpers/oci-schema.js';

/** The CLI with provenance and SBOM on (the default), against distribution 2.8 (no referrers API). */

const INTOTO = 'application/vnd.in-toto+json';
const CDX = 'application/vnd.cyclonedx+json';
interface Entry {
  digest: string;
  platforms?: Record<string, { digest: string }>;
  attestations?: Record<string, { provenance?: string; sbom?: string }>;
}

let reg: TestRegistry;
let work: string;

async function raw(ref: string): Promise<any> {
  return JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout);
}
async function tags(repo: string): Promise<string[]> {
  const res = await fetch(`${reg.url}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  return ((await res.json()) as { tags: string[] | null }).tags?.sort() ?? [];
}
/** What `build --verbose` prints besides the digest map: what the SBOM scans read. */
let lastSbomReads:
  | { images: number; fromCache: number; fromReferrer: number; layersRead: number; bytesRead: number; layersShared: number }
  | undefined;
let lastLayers: { origin: string }[] = [];

async function build(name: string, extra: string[] = [], cacheDir = join(work, 'cache')): Promise<Record<string, Entry>> {
  const map = join(work, `${name}.json`);
  const r = await cli(
    ['build', '--config', join(work, 'oci-build.yml'), '--push', '--tag', 'latest', '--digest-map', map, '--cache-dir', cacheDir, ...extra],
    { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000', TOKEN: 'sekret-from-env-1234' } },
  );
  expect(r.code, r.stderr.slice(-4000)).toBe(0);
  expect(r.stderr).not.toContain('sekret-from-env-1234');
  const verbose = extra.includes('--verbose') ? JSON.parse(r.stdout) : undefined;
  lastSbomReads = verbose?.sbom;
  lastLayers = verbose?.layers ?? [];
  return JSON.parse(readFileSync(map, 'utf8'));
}

beforeAll(async () => {
  reg = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'attest-e2e-'));
  await pushMultiArchBase(reg.host);
  await pushBusyboxBase(reg.host);
  writeFileSync(
    join(work, 'oci-build.yml'),
    [
      'version: 1',
      'args: { TOKEN: none }',
      'variants:',
      '  app:',
      `    base: ${reg.host}/base/multi:latest`,
      `    image: ${reg.host}/attest/app`,
      '    platforms: [linux/amd64, linux/arm64]',
      '    steps:',
      '      - file: /etc/app.conf',
      '        content: "token=${TOKEN}\\n"',
      '      - file: /app/node_modules/left-pad/package.json',
      '        content: \'{"name":"left-pad","version":"1.3.0","license":"WTFPL"}\'',
    ].join('\n'),
  );
}, 300_000);
afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('provenance and SBOM through the CLI', () => {
  let first: Entry;
  it('attaches them as referrers: the index lists only the real platforms, the fallback indexes list each attestation', async () => {
    first = (await build('first', ['--verbose'])).app!;
    // The base scan's pass gave the SBOM the bases' trees and probed their executables for Go
    // and cargo data (busybox is one) in that same pass: the SBOM reads no base layer, and each
    // layer built on them once.
    const built = lastLayers.filter((l) => l.origin !== 'base');
    const baseLayers = lastLayers.filter((l) => l.origin === 'base');
    expect(built.length).toBeGreaterThan(0);
    expect(baseLayers.length).toBeGreaterThan(0);
    expect(lastSbomReads).toMatchObject({ images: 2, fromCache: 0, layersRead: built.length });
    const index = await raw(`${reg.host}/attest/app:latest`);
    expect(index.manifests.map((m: any) => `${m.platform.os}/${m.platform.architecture}`).sort()).toEqual(['linux/amd64', 'linux/arm64']);
    const subjects = [first.digest, ...Object.values(first.platforms!).map((p) => p.digest)];
    expect(Object.keys(first.attestations!).sort()).toEqual([...subjects].sort());
    for (const subject of subjects) {
      const expected = first.attestations![subject]!;
      const isIndex = subject === first.digest;
      expect(Object.keys(expected).sort()).toEqual(isIndex ? ['provenance'] : ['provenance', 'sbom']);
      const fallback = await raw(`${reg.host}/attest/app:sha256-${subject.slice(7)}`);
      expect(validateOci('index', fallback)).toEqual([]);
      expect(fallback.manifests.map((m: any) => [m.artifactType, m.digest]).sort()).toEqual(
        Object.entries(expected)
          .map(([k, d]) => [k === 'sbom' ? CDX : INTOTO, d])
          .sort(),
      );
      for (const m of fallback.manifests) {
        const art = await raw(`${reg.host}/attest/app@${m.digest}`);
        expect(art.subject.digest).toBe(subject);
        const doc = (await (await fetch(`${reg.url}/v2/attest/app/blobs/${art.layers[0].digest}`)).json()) as any;
        if (m.artifactType === INTOTO) {
          expect(doc.subject[0].digest.sha256).toBe(subject.slice(7));
          expect(JSON.stringify(doc)).not.toContain('sekret-from-env-1234');
          expect(JSON.stringify(doc)).not.toMatch(/startedOn|finishedOn/);
          expect(doc.predicate.buildDefinition.resolvedDependencies.some((d: any) => d.uri === `oci://${reg.host}/base/multi:latest`)).toBe(
            true,
          );
          // SLSA wants a URI: the CLI names itself by a URN with its version.
          expect(doc.predicate.runDetails.builder.id).toMatch(/^urn:oci-build-action:cli:v\d+\.\d+\.\d+/);
          expect(new URL(doc.predicate.runDetails.builder.id).protocol).toBe('urn:');
        } else {
          expect(doc.components.map((c: any) => c.purl)).toContain('pkg:npm/left-pad@1.3.0');
        }
      }
    }
  }, 300_000);

  it('a re-run gives the same digests, reads no layer for the SBOMs and adds no fallback entry', async () => {
    const before = (
      await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/attest/app:sha256-${first.digest.slice(7)}`])
    ).stdout;
    const again = (await build('again', ['--verbose'])).app!;
    expect(again.digest).toBe(first.digest);
    expect(again.attestations).toEqual(first.attestations);
    // Both platforms' inventories are known by their diffIDs (kept in the cache dir).
    expect(lastSbomReads).toEqual({ images: 2, fromCache: 2, fromReferrer: 0, layersRead: 0, bytesRead: 0, layersShared: 0 });
    expect(
      (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/attest/app:sha256-${first.digest.slice(7)}`]))
        .stdout,
    ).toBe(before);
  }, 300_000);

  it('a fresh cache dir (the registry records): the same images and SBOMs, the SBOMs taken from the registry without reading a layer', async () => {
    const fresh = (await build('fresh', ['--verbose'], join(work, 'cache-fresh'))).app!;
    expect(fresh.digest).toBe(first.digest);
    // The same SBOM documents (same digests): the same packages.
    expect(fresh.attestations).toEqual(first.attestations);
    const recorded = lastLayers.filter((l) => l.origin !== 'base');
    expect(recorded.length).toBeGreaterThan(0);
    expect(recorded.every((l) => (l as { fromRegistry?: boolean }).fromRegistry)).toBe(true);
    // The registry holds this build's own SBOMs for these manifests: taken from there, no layer
    // read for them. (When it does not, the records' diffID checks feed the SBOM: the
    // attest-sbom-reuse tests of a foreign, missing or corrupt referrer assert layersShared.)
    expect(lastSbomReads).toMatchObject({ images: 2, fromCache: 0, fromReferrer: 2, layersRead: 0, layersShared: 0 });
  }, 300_000);

  it('image digests do not change with attestations off; nothing is recorded then', async () => {
    const off = (await build('off', ['--provenance', 'false', '--sbom', 'false'])).app!;
    expect(off.digest).toBe(first.digest);
    expect(off.attestations).toBeUndefined();
  }, 300_000);

  it('an OCI layout output gets the referrers in its index.json', async () => {
    const layout = join(work, 'layout');
    const r = await cli(
      [
        'build',
        '--config',
        join(work, 'oci-build.yml'),
        '--output',
        `oci:${layout}`,
        '--cache-dir',
        join(work, 'cache'),
        '--provenance',
        'mode=max',
      ],
      { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } },
    );
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    expect(validateOci('index', index)).toEqual([]);
    const referrers = index.manifests.filter((m: any) => m.artifactType);
    expect(referrers.map((m: any) => m.artifactType).sort()).toEqual([CDX, CDX, INTOTO, INTOTO, INTOTO]);
    for (const m of referrers) {
      const art = JSON.parse(readFileSync(join(layout, 'blobs/sha256', m.digest.slice(7)), 'utf8'));
      expect(art.subject.digest).toMatch(/^sha256:/);
    }
    // The variant is still found by its ref name.
    expect((await run('skopeo', ['inspect', '--raw', `oci:${layout}:app`])).stdout).toContain('manifests');
  }, 300_000);

  it('an OCI archive holds the referrers as the layout does; a docker archive cannot, and the build says so', async () => {
    const archive = join(work, 'app.oci.tar');
    const docker = join(work, 'app.docker.tar');
    const map = join(work, 'archive.json');
    const r = await cli(
      [
        'build',
        '--config',
        join(work, 'oci-build.yml'),
        '--output',
        `oci-archive:${archive}`,
        '--output',
        `docker-archive:${docker}`,
        '--digest-map',
        map,
        '--cache-dir',
        join(work, 'cache'),
      ],
      { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } },
    );
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const attested = (JSON.parse(readFileSync(map, 'utf8')) as Record<string, Entry>).app!.attestations!;
    const dir = join(work, 'archive-x');
    await run('mkdir', ['-p', dir]);
    await run('tar', ['-xf', archive, '-C', dir]);
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(validateOci('index', index)).toEqual([]);
    const referrers = index.manifests.filter((m: any) => m.artifactType);
    // Every attestation of the digest map, once, with its subject: the platform manifests and the index.
    const expected = Object.entries(attested).flatMap(([subject, a]) => Object.values(a).map((d) => [d, subject]));
    expect(referrers.map((m: any) => m.digest).sort()).toEqual(expected.map(([d]) => d).sort());
    for (const [digest, subject] of expected) {
      const art = JSON.parse(readFileSync(join(dir, 'blobs/sha256', digest!.slice(7)), 'utf8'));
      expect(validateOci('manifest', art)).toEqual([]);
      expect(art.subject.digest).toBe(subject);
      // Its blobs are in the archive too.
      for (const b of [art.config, ...art.layers]) expect(readFileSync(join(dir, 'blobs/sha256', b.digest.slice(7))).length).toBe(b.size);
    }
    // skopeo still reads the variant by its ref name, and the index lists only the real platforms.
    const app = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci-archive:${archive}:app`])).stdout);
    expect(app.manifests.map((m: any) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);
    // docker load reads manifest.json only: the attestations have no place there, and the log says where they can go.
    expect(r.stderr).toMatch(/docker archive .* holds no attestations .*use oci-archive: or oci:/);
    const listed = (await run('tar', ['-tf', docker])).stdout;
    for (const [digest] of expected) expect(listed).not.toContain(digest!.slice(7));
  }, 300_000);

  it('nothing is attached when the build fails', async () => {
    writeFileSync(
      join(work, 'bad.yml'),
      [
        'version: 1',
        'variants:',
        '  bad:',
        `    base: ${reg.host}/base/busybox:single`,
        `    image: ${reg.host}/attest/bad`,
        '    steps:',
        '      - run: exit 3',
      ].join('\n'),
    );
    const r = await cli(['build', '--config', join(work, 'bad.yml'), '--push', '--tag', 'latest', '--cache-dir', join(work, 'cache')]);
    expect(r.code).not.toBe(0);
    expect(await tags('attest/bad')).toEqual([]);
  }, 300_000);
});

describe('the CLI against a registry with the referrers API', () => {
  it('pushes the artifact manifests with their subject and writes no fallback tag', async () => {
    const { startMemRegistry } = await import('./helpers/referrers-registry.js');
    const mem = await startMemRegistry({ referrers: true });
    try {
      writeFileSync(
        join(work, 'api.yml'),
        [
          'version: 1',
          'variants:',
          '  app:',
          '    base: scratch',
          `    image: ${mem.host}/acme/app`,
          '    steps:',
          '      - file: /hello',
          '        content: hi',
        ].join('\n'),
      );
      const map = join(work, 'api.json');
      const r = await cli(
        [
          'build',
          '--config',
          join(work, 'api.yml'),
          '--push',
          '--tag',
          'v1',
          '--digest-map',
          map,
          '--cache-dir',
          join(work, 'cache-api'),
          '--cache-registry',
          'false',
        ],
        { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } },
      );
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      const entry = (JSON.parse(readFileSync(map, 'utf8')) as Record<string, Entry>).app!;
      const res = await fetch(`http://${mem.host}/v2/acme/app/referrers/${entry.digest}`);
      const listed = (await res.json()) as { manifests: { digest: string; artifactType: string }[] };
      expect(listed.manifests.map((m) => [m.artifactType, m.digest]).sort()).toEqual(
        Object.entries(entry.attestations![entry.digest]!)
          .map(([k, d]) => [k === 'sbom' ? CDX : INTOTO, d])
          .sort(),
      );
      expect([...mem.tags.keys()]).toEqual(['acme/app:v1']);
      expect(mem.requests.some((q) => q.path === `/v2/acme/app/manifests/sha256-${entry.digest.slice(7)}`)).toBe(false);
      // The tag moved only after the attestations were in: the v1 PUT is the last manifest PUT.
      const puts = mem.requests.filter((q) => q.method === 'PUT' && q.path.includes('/manifests/'));
      expect(puts.at(-1)!.path).toBe('/v2/acme/app/manifests/v1');
      expect(puts.map((q) => q.path.split('/').at(-1))).toEqual([
        entry.digest,
        ...puts.slice(1, 3).map((q) => q.path.split('/').at(-1)),
        'v1',
      ]);
      expect(
        puts
          .slice(1, 3)
          .map((q) => q.path.split('/').at(-1))
          .sort(),
      ).toEqual(Object.values(entry.attestations![entry.digest]!).sort());
    } finally {
      await mem.close();
    }
  }, 120_000);
});
