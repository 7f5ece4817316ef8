import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';
import { startRegistry } from './helpers/registry.js';
import { parseRpmHeader, rpmPackage } from '../src/attest/sbom/rpm.js';

/**
 * Issue 14: packages recorded in files of the image that no package database lists. A real Go
 * program (Debian's golang-go, a local module dependency), a Rust-shaped binary with a
 * cargo-auditable `.dep-v0` section (made by hand with objcopy: no cargo-auditable here), and
 * an rpmdb.sqlite (made by hand with sqlite3, headers in rpm's format: no rpm here) go into an
 * image built by the CLI; its SBOM, read from the OCI layout output, lists them.
 */

const CDX = 'application/vnd.cyclonedx+json';
const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
let work: string;

/** An rpm header blob as rpmdb.sqlite stores it: region tag first, then the string/int32 tags. */
function rpmHeader(tags: [number, 'string' | 'int32', string | number][]): Buffer {
  const entries: Buffer[] = [];
  const data: Buffer[] = [];
  let off = 0;
  const region = Buffer.alloc(16);
  region.writeUInt32BE(63, 0); // RPMTAG_HEADERIMMUTABLE, type BIN, pointing at the trailer
  region.writeUInt32BE(7, 4);
  entries.push(region);
  for (const [tag, type, value] of tags) {
    if (type === 'int32') off = (off + 3) & ~3; // int32s are aligned
    const pad = off - data.reduce((n, b) => n + b.length, 0);
    if (pad) data.push(Buffer.alloc(pad));
    const e = Buffer.alloc(16);
    e.writeUInt32BE(tag, 0);
    e.writeUInt32BE(type === 'int32' ? 4 : 6, 4);
    e.writeInt32BE(off, 8);
    e.writeUInt32BE(1, 12);
    entries.push(e);
    const bytes = type === 'int32' ? Buffer.alloc(4) : Buffer.from(`${value}\0`);
    if (type === 'int32') bytes.writeUInt32BE(value as number);
    data.push(bytes);
    off += bytes.length;
  }
  const trailer = Buffer.alloc(16);
  trailer.writeUInt32BE(63, 0);
  trailer.writeUInt32BE(7, 4);
  trailer.writeInt32BE(-(entries.length * 16), 8);
  trailer.writeUInt32BE(16, 12);
  region.writeInt32BE(off, 8);
  data.push(trailer);
  const store = Buffer.concat(data);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(entries.length, 0);
  head.writeUInt32BE(store.length, 4);
  return Buffer.concat([head, ...entries, store]);
}

const pkgTags = (
  name: string,
  version: string,
  release: string,
  arch: string,
  epoch?: number,
): [number, 'string' | 'int32', string | number][] => [
  [1000, 'string', name],
  [1001, 'string', version],
  [1002, 'string', release],
  ...(epoch !== undefined ? ([[1003, 'int32', epoch]] as [number, 'int32', number][]) : []),
  [1014, 'string', 'MIT'],
  [1022, 'string', arch],
];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'attest-bin-'));
  const src = join(work, 'gosrc');
  mkdirSync(join(src, 'greet'), { recursive: true });
  writeFileSync(
    join(src, 'go.mod'),
    'module example.com/hello\n\ngo 1.19\n\nrequire example.com/greet v1.2.3\n\nreplace example.com/greet => ./greet\n',
  );
  writeFileSync(join(src, 'main.go'), 'package main\n\nimport "example.com/greet"\n\nfunc main() { println(greet.Hello()) }\n');
  writeFileSync(join(src, 'greet', 'go.mod'), 'module example.com/greet\n\ngo 1.19\n');
  writeFileSync(join(src, 'greet', 'greet.go'), 'package greet\n\nfunc Hello() string { return "hello" }\n');
  await run('go', ['build', '-trimpath', '-o', join(work, 'hello'), '.'], {
    cwd: src,
    env: {
      ...process.env,
      CGO_ENABLED: '0',
      GOFLAGS: '-mod=mod',
      GOPROXY: 'off',
      GOCACHE: join(work, 'gocache'),
      GOPATH: join(work, 'gopath'),
    },
  });
  // cargo-auditable's section: zlib-compressed JSON of the dependency tree, in an ELF binary.
  const deps = {
    packages: [
      { name: 'rusty', version: '0.1.0', source: 'local', dependencies: [1, 2], root: true },
      { name: 'itoa', version: '1.0.9', source: 'crates.io' },
      { name: 'cc', version: '1.0.83', source: 'crates.io', kind: 'build' },
    ],
  };
  writeFileSync(join(work, 'dep-v0'), deflateSync(Buffer.from(JSON.stringify(deps))));
  await run('objcopy', ['--add-section', `.dep-v0=${join(work, 'dep-v0')}`, '/bin/true', join(work, 'rusty')]);
  chmodSync(join(work, 'rusty'), 0o755);
  // A Go program under a name and in a layer of its own, then overwritten: the last layer wins.
  copyFileSync('/bin/true', join(work, 'not-go'));
  const rows = [
    pkgTags('bash', '5.2.26', '3.fc40', 'x86_64'),
    pkgTags('openssl-libs', '3.2.1', '2.fc40', 'x86_64', 1),
    pkgTags('gpg-pubkey', 'a15b79cc', '63d04c2c', '(none)'),
  ];
  const sql = [
    'CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);',
    ...rows.map((t) => `INSERT INTO Packages (blob) VALUES (X'${rpmHeader(t).toString('hex')}');`),
  ].join('\n');
  await run('sqlite3', [join(work, 'rpmdb.sqlite'), sql]);
  writeFileSync(
    join(work, 'oci-build.yml'),
    [
      'version: 1',
      'variants:',
      '  bins:',
      '    base: scratch',
      '    steps:',
      '      - file: /etc/os-release',
      '        content: "ID=fedora\\nVERSION_ID=40\\n"',
      '      - copy: hello',
      '        to: /usr/local/bin/shadowed',
      '      - copy: not-go',
      '        to: /usr/local/bin/shadowed',
      '      - copy: hello',
      '        to: /usr/local/bin/hello',
      '      - copy: rusty',
      '        to: /usr/local/bin/rusty',
      '      - copy: rpmdb.sqlite',
      '        to: /usr/lib/sysimage/rpm/rpmdb.sqlite',
    ].join('\n'),
  );
}, 600_000);
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('SBOM of executables and the rpm sqlite database', () => {
  it('lists the Go modules, the crates and the rpm packages with purls, in a schema-valid document', async () => {
    const layout = join(work, 'layout');
    const r = await cli(
      ['build', '--config', join(work, 'oci-build.yml'), '--output', `oci:${layout}`, '--cache-dir', join(work, 'cache')],
      {
        env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' },
      },
    );
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    const sbomRef = index.manifests.find((m: any) => m.artifactType === CDX);
    const art = JSON.parse(readFileSync(join(layout, 'blobs/sha256', sbomRef.digest.slice(7)), 'utf8'));
    const text = readFileSync(join(layout, 'blobs/sha256', art.layers[0].digest.slice(7)), 'utf8');
    expect(await validator.validate(text)).toBeNull();
    const doc = JSON.parse(text) as {
      components: { name: string; version: string; purl: string; properties?: { name: string; value: string }[] }[];
    };
    const where = (purl: string) =>
      doc.components.find((c) => c.purl === purl)?.properties?.find((p) => p.name === 'oci-build:package:found-in')?.value;
    const goVersion = /go version go(\S+)/.exec((await run('go', ['version'])).stdout)![1]!;
    const purls = doc.components.flatMap((c) => (c.purl ? [c.purl] : [])).sort(); // (the OS component has none)
    expect(purls).toEqual(
      [
        'pkg:golang/example.com/hello', // the main module, (devel): no version in the purl
        'pkg:golang/example.com/greet@v1.2.3', // replaced by a local directory: the required version names it
        `pkg:golang/stdlib@${goVersion}`,
        'pkg:cargo/rusty@0.1.0',
        'pkg:cargo/itoa@1.0.9', // cc is a build dependency: not in the binary
        'pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40',
        'pkg:rpm/fedora/openssl-libs@3.2.1-2.fc40?arch=x86_64&distro=fedora-40&epoch=1', // no gpg-pubkey
      ].sort(),
    );
    expect(where('pkg:golang/example.com/greet@v1.2.3')).toBe('/usr/local/bin/hello'); // not the shadowed copy
    expect(where('pkg:cargo/itoa@1.0.9')).toBe('/usr/local/bin/rusty');
    expect(where('pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40')).toBe('/usr/lib/sysimage/rpm/rpmdb.sqlite');
    expect(doc.components.find((c) => c.name === 'openssl-libs')!.version).toBe('1:3.2.1-2.fc40');
  }, 600_000);

  it('a Node without node:sqlite (as Node 22.5-22.12 without the flag): the build goes on, the SBOM says rpm is missing', async () => {
    const layout = join(work, 'layout-nosqlite');
    // A cache directory of its own: the first build's inventory of these layers is kept per
    // diffID list, and a machine with another Node has not seen it.
    const r = await cli(
      ['build', '--config', join(work, 'oci-build.yml'), '--output', `oci:${layout}`, '--cache-dir', join(work, 'cache-nosqlite')],
      {
        env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000', NODE_OPTIONS: '--no-experimental-sqlite' },
      },
    );
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(r.stderr).toMatch(/SBOM of bins \(linux\/amd64\): rpm packages not listed: .*node:sqlite is not available/);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    const art = JSON.parse(
      readFileSync(join(layout, 'blobs/sha256', index.manifests.find((m: any) => m.artifactType === CDX).digest.slice(7)), 'utf8'),
    );
    const text = readFileSync(join(layout, 'blobs/sha256', art.layers[0].digest.slice(7)), 'utf8');
    expect(await validator.validate(text)).toBeNull();
    const doc = JSON.parse(text) as { metadata: { properties?: { name: string; value: string }[] }; components: { purl?: string }[] };
    expect(doc.components.filter((c) => c.purl?.startsWith('pkg:rpm/'))).toEqual([]);
    expect(doc.components.some((c) => c.purl === 'pkg:cargo/itoa@1.0.9')).toBe(true);
    expect(doc.metadata.properties).toEqual([
      {
        name: 'oci-build:sbom:incomplete',
        value: expect.stringMatching(/^rpm packages not listed: \/usr\/lib\/sysimage\/rpm\/rpmdb\.sqlite: node:sqlite is not available/),
      },
    ]);
  }, 600_000);

  it('on a base that holds them: the base scan probes its executables in its one pass, the SBOM reads no base layer for them again', async () => {
    const reg = await startRegistry();
    try {
      // The binaries' image pushed as a base, then an image on it built with an empty cache.
      const layout = join(work, 'layout-as-base');
      const made = await cli([
        'build',
        '--config',
        join(work, 'oci-build.yml'),
        '--output',
        `oci:${layout}`,
        '--cache-dir',
        join(work, 'c1'),
      ]);
      expect(made.code, made.stderr.slice(-3000)).toBe(0);
      const tag = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests.find((m: any) => m.annotations)!.annotations[
        'org.opencontainers.image.ref.name'
      ];
      await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:${tag}`, `docker://${reg.host}/sbom/bins:1`]);
      const top = join(work, 'oci-build-top.yml');
      writeFileSync(
        top,
        ['version: 1', 'variants:', '  top:', `    base: ${reg.host}/sbom/bins:1`, `    image: ${reg.host}/sbom/top`, '    steps:']
          .concat(['      - file: /etc/top.conf', '        content: "x"'])
          .join('\n'),
      );
      const r = await cli(['build', '--config', top, '--push', '--tag', 't', '--cache-dir', join(work, 'c2'), '--verbose']);
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      const verbose = JSON.parse(r.stdout);
      // No base layer is read again for its tree or its executables (six layers, from the base
      // scan's one pass). Read: the new layer; rusty's layer once more, for the bytes of its
      // .dep-v0 section (the section table that locates them comes after them); and the rpm
      // database, from the top down to the first layer that writes it (the new one, then bins' last).
      expect(verbose.sbom).toMatchObject({ images: 1, fromCache: 0, layersRead: 4 });
      const sbom = verbose.digestMap.top.attestations[verbose.digestMap.top.digest].sbom;
      const art = JSON.parse(
        (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/sbom/top@${sbom}`])).stdout,
      );
      const doc = (await (await fetch(`${reg.url}/v2/sbom/top/blobs/${art.layers[0].digest}`)).json()) as {
        components: { purl?: string }[];
      };
      const purls = doc.components.flatMap((c) => (c.purl ? [c.purl] : []));
      expect(purls).toEqual(
        expect.arrayContaining([
          'pkg:golang/example.com/greet@v1.2.3',
          'pkg:cargo/itoa@1.0.9',
          'pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40',
        ]),
      );
    } finally {
      await reg.stop();
    }
  }, 600_000);

  it('the rpm header reader can fail: a truncated header gives no package', () => {
    const blob = rpmHeader(pkgTags('bash', '5.2.26', '3.fc40', 'x86_64'));
    expect(rpmPackage(parseRpmHeader(blob), undefined, '/x')?.name).toBe('bash');
    expect(rpmPackage(parseRpmHeader(blob.subarray(0, blob.length - 30)), undefined, '/x')).toBeUndefined();
  });
});
