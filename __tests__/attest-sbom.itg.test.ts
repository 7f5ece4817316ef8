import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { SbomInventory } from '../src/attest/sbom/inventory.js';
import { cyclonedxDocument } from '../src/attest/sbom/cyclonedx.js';
import { sha256, type Digest } from '../src/oci/digest.js';
import { parseDpkgStatus } from '../src/attest/sbom/dpkg.js';
import { parseApkInstalled } from '../src/attest/sbom/apk.js';
import { parseNodePackage, parsePythonMetadata } from '../src/attest/sbom/lang.js';
import { RegistryClient } from '../src/registry/client.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { pushDebianBase } from './helpers/debian-base.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';

interface Cdx {
  bomFormat: string;
  specVersion: string;
  metadata: { component: { name: string; version: string }; timestamp?: string };
  components?: { name: string; version: string; purl?: string; type: string }[];
}

const TOOL = { name: 'oci-build-action', version: 'test' };
const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
async function expectValid(bytes: Buffer): Promise<Cdx> {
  expect(await validator.validate(bytes.toString('utf8'))).toBeNull();
  return JSON.parse(bytes.toString('utf8')) as Cdx;
}

/** A layer as a plain tar made by GNU tar from a directory (not by our writer), as the builder gives it to the SBOM. */
async function tarLayer(dir: string, out: string): Promise<{ diffId: Digest; base: boolean; open: () => Promise<Readable> }> {
  await run('tar', ['--numeric-owner', '-C', dir, '-cf', out, '.']);
  return { diffId: sha256(readFileSync(out)), base: false, open: async () => Readable.from([readFileSync(out)]) };
}

const CDX = 'application/vnd.cyclonedx+json';

/** The SBOM the build attached to `repository@digest`, read back from the registry (the tag fallback of distribution 2.8). */
async function pushedSbom(registryUrl: string, registryHost: string, repository: string, digest: string): Promise<Buffer> {
  const index = JSON.parse(
    (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registryHost}/${repository}:sha256-${digest.slice(7)}`]))
      .stdout,
  ) as { manifests: { artifactType?: string; digest: string }[] };
  const sbom = index.manifests.filter((m) => m.artifactType === CDX);
  expect(sbom).toHaveLength(1);
  const art = JSON.parse(
    (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registryHost}/${repository}@${sbom[0]!.digest}`])).stdout,
  ) as {
    subject: { digest: string };
    layers: { digest: string }[];
  };
  expect(art.subject.digest).toBe(digest);
  return Buffer.from(await (await fetch(`${registryUrl}/v2/${repository}/blobs/${art.layers[0]!.digest}`)).arrayBuffer());
}

describe('package databases', () => {
  it('dpkg: installed packages only, with arch, distro and source qualifiers', () => {
    const status = [
      'Package: jq',
      'Status: install ok installed',
      'Architecture: amd64',
      'Source: jq',
      'Version: 1.6-2.1',
      'Description: x',
      ' more',
      '',
      'Package: libjq1',
      'Status: install ok installed',
      'Architecture: amd64',
      'Source: jq (1.6-2.1)',
      'Version: 1.6-2.1',
      '',
      'Package: gone',
      'Status: deinstall ok config-files',
      'Architecture: amd64',
      'Version: 1.0',
      '',
    ].join('\n');
    const pkgs = parseDpkgStatus(status, { id: 'debian', versionId: '12' });
    expect(pkgs.map((p) => p.purl)).toEqual([
      'pkg:deb/debian/jq@1.6-2.1?arch=amd64&distro=debian-12',
      'pkg:deb/debian/libjq1@1.6-2.1?arch=amd64&distro=debian-12&upstream=jq',
    ]);
  });

  it('apk, npm (scoped) and Python metadata', () => {
    const apk = parseApkInstalled(
      'C:Q1x\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\n\nP:busybox\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\n',
      { id: 'alpine', versionId: '3.20.3' },
    );
    expect(apk.map((p) => [p.purl, p.license])).toEqual([
      ['pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3', 'MIT'],
      ['pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&distro=alpine-3.20.3', 'GPL-2.0-only'],
    ]);
    expect(
      parseNodePackage('/app/node_modules/@types/node/package.json', '{"name":"@types/node","version":"24.1.0","license":"MIT"}')?.purl,
    ).toBe('pkg:npm/%40types/node@24.1.0');
    expect(parseNodePackage('/x/node_modules/a/package.json', '{"name":"a"}')).toBeUndefined();
    const py = parsePythonMetadata(
      '/usr/lib/python3/dist-packages/Foo_Bar-2.0.dist-info/METADATA',
      'Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 2.0\nLicense: UNKNOWN\n\nName: not-this\n',
    );
    expect(py).toMatchObject({ name: 'Foo_Bar', version: '2.0', purl: 'pkg:pypi/foo-bar@2.0' });
    expect(py?.license).toBeUndefined();
  });

  it('applies layers with whiteouts: a package removed in a later layer is gone, a later status file wins', async () => {
    const work = mkdtempSync(join(tmpdir(), 'attest-sbom-'));
    try {
      const l1 = join(work, 'l1');
      mkdirSync(join(l1, 'var/lib/dpkg'), { recursive: true });
      mkdirSync(join(l1, 'etc'), { recursive: true });
      mkdirSync(join(l1, 'app/node_modules/left-pad'), { recursive: true });
      mkdirSync(join(l1, 'app/node_modules/kept'), { recursive: true });
      writeFileSync(join(l1, 'etc/os-release'), 'ID=debian\nVERSION_ID="12"\n');
      writeFileSync(join(l1, 'var/lib/dpkg/status'), 'Package: old\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n');
      writeFileSync(join(l1, 'app/node_modules/left-pad/package.json'), '{"name":"left-pad","version":"1.3.0"}');
      writeFileSync(join(l1, 'app/node_modules/kept/package.json'), '{"name":"kept","version":"2.0.0","license":"ISC"}');
      const l2 = join(work, 'l2');
      mkdirSync(join(l2, 'var/lib/dpkg'), { recursive: true });
      mkdirSync(join(l2, 'app/node_modules'), { recursive: true });
      writeFileSync(join(l2, 'var/lib/dpkg/status'), 'Package: new\nStatus: install ok installed\nVersion: 2\nArchitecture: amd64\n');
      writeFileSync(join(l2, 'app/node_modules/.wh.left-pad'), '');
      const layers = [await tarLayer(l1, join(work, 'l1.tar')), await tarLayer(l2, join(work, 'l2.tar'))];
      // The inventory the builder's attestations use (src/attest/attest.ts), and its document.
      const found = await new SbomInventory(undefined, 'test').packages(layers);
      const doc = await expectValid(cyclonedxDocument({ name: 'r.example/app', digest: `sha256:${'a'.repeat(64)}` }, found, TOOL));
      const names = (doc.components ?? [])
        .filter((c) => c.type === 'library')
        .map((c) => c.name)
        .sort();
      expect(names).toEqual(['kept', 'new']);
      expect(doc.metadata.timestamp).toBeUndefined();
      expect(doc.metadata.component.version).toBe(`sha256:${'a'.repeat(64)}`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('the schema check can fail: a document without bomFormat is rejected', async () => {
    expect(await validator.validate(JSON.stringify({ specVersion: '1.6', components: [{ name: 'x' }] }))).not.toBeNull();
  });
});

describe('SBOM of real images', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let work: string;
  beforeAll(async () => {
    reg = await startRegistry();
    client = new RegistryClient();
    work = mkdtempSync(join(tmpdir(), 'attest-sbom-real-'));
  }, 1_200_000);
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  async function layersOf(
    repository: string,
    ref: string,
  ): Promise<{ digest: Digest; layers: (() => Promise<Readable>)[]; digests: Digest[] }> {
    const repo = { registry: reg.host, repository };
    const m = await client.getManifest(repo, ref);
    const manifest = JSON.parse(m.bytes.toString('utf8')) as { layers: { digest: Digest; size: number }[] };
    return {
      digest: m.digest,
      digests: manifest.layers.map((l) => l.digest),
      layers: manifest.layers.map((l) => () => client.getBlob(repo, l.digest, l.size)),
    };
  }

  it('busybox on scratch: an empty but valid document', async () => {
    await pushBusyboxBase(reg.host);
    // A variant with no steps: the image is the base's, its SBOM made by a real build and push.
    writeFileSync(
      join(work, 'busybox.yml'),
      ['version: 1', 'variants:', '  bb:', `    base: ${reg.host}/base/busybox:single`, `    image: ${reg.host}/attest/bb`].join('\n'),
    );
    const r = await cli(['build', '--config', join(work, 'busybox.yml'), '--push', '--tag', 'latest', '--cache-dir', join(work, 'cache')], {
      env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' },
    });
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const img = await layersOf('attest/bb', 'latest');
    const doc = await expectValid(await pushedSbom(reg.url, reg.host, 'attest/bb', img.digest));
    expect(doc.components ?? []).toEqual([]);
    expect(doc.metadata.component.version).toBe(img.digest);
  }, 300_000);

  it('Debian with `apt-get install jq` in a run: step lists jq with its Debian version and purl', async () => {
    await pushDebianBase(reg.host);
    writeFileSync(
      join(work, 'oci-build.yml'),
      [
        'version: 1',
        'variants:',
        '  jq:',
        `    base: ${reg.host}/base/debian:bookworm`,
        `    image: ${reg.host}/attest/jq`,
        '    steps:',
        '      - run: apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*',
        '        env: { DEBIAN_FRONTEND: noninteractive }',
      ].join('\n'),
    );
    const r = await cli(
      ['build', '--config', join(work, 'oci-build.yml'), '--push', '--tag', 'latest', '--cache-dir', join(work, 'cache')],
      { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } },
    );
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const img = await layersOf('attest/jq', 'latest');
    const doc = await expectValid(await pushedSbom(reg.url, reg.host, 'attest/jq', img.digest));
    // What dpkg itself says about the image's status database (the apt-get layer's copy).
    const top = join(work, 'top.tar.gz');
    writeFileSync(top, Buffer.from(await (await fetch(`${reg.url}/v2/attest/jq/blobs/${img.digests.at(-1)}`)).arrayBuffer()));
    const root = join(work, 'top');
    mkdirSync(root);
    await run('tar', ['-xzf', top, '-C', root, '--wildcards', '*var/lib/dpkg/status']);
    const admin = join(root, 'var/lib/dpkg');
    const expected = (await run('dpkg-query', [`--admindir=${admin}`, '-W', '-f', '${Version} ${Architecture}', 'jq'])).stdout
      .trim()
      .split(' ');
    const jq = (doc.components ?? []).find((c) => c.name === 'jq');
    expect(jq?.version).toBe(expected[0]);
    expect(decodeURIComponent(jq?.purl ?? '')).toBe(`pkg:deb/debian/jq@${expected[0]}?arch=${expected[1]}&distro=debian-12`);
    // The base's own packages are there too, and the OS.
    expect((doc.components ?? []).some((c) => c.name === 'libc6')).toBe(true);
    expect((doc.components ?? []).find((c) => c.type === 'operating-system')).toMatchObject({ name: 'debian', version: '12' });
  }, 1_500_000);
});
