// The SBOM inventory cache (src/attest/sbom/inventory.ts): an image known by its diffIDs reads no
// layer; a new image on top of a scanned one reads only its own layers; and either way the
// packages are those of the two-pass scan from scratch (which the SBOM's digests depend on).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SbomInventory, type SbomLayer } from '../src/attest/sbom/inventory.js';
import { packagesOfExecutables } from '../src/attest/sbom/executables.js';
import { BlobStore } from '../src/layer/blobstore.js';
import type { LayerEntry } from '../src/layer/types.js';
import { writeLayer } from '../src/layer/writer.js';

let work: string;
let store: BlobStore;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sbom-inventory-'));
  store = new BlobStore(join(work, 'blobs'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const file = (path: string, content: string): LayerEntry => ({
  path,
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: Buffer.byteLength(content),
  open: () => Readable.from([Buffer.from(content)]),
});
const dir = (path: string): LayerEntry => ({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0 });
const symlink = (path: string, target: string): LayerEntry => ({ path, type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: target });
const whiteout = (path: string): LayerEntry => file(path, '');

const dpkg = (...pkgs: [string, string][]) =>
  pkgs.map(([n, v]) => `Package: ${n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n`).join('\n');
const npm = (name: string, version: string) => JSON.stringify({ name, version, license: 'MIT' });

async function layer(entries: LayerEntry[], base: boolean): Promise<SbomLayer> {
  const built = await writeLayer(entries, store, { mtime: new Date(0), compression: { algorithm: 'gzip', level: 1 } });
  return { diffId: built.diffId, base, open: () => store.open(built.descriptor.digest) };
}

describe('SBOM inventory cache', () => {
  let base: SbomLayer[];
  let app: SbomLayer;
  let top: SbomLayer;
  beforeAll(async () => {
    // A Debian-like base (os-release through a symlink, as Debian ships it) in two layers.
    base = [
      await layer(
        [
          dir('/etc'),
          dir('/usr/lib'),
          file('/usr/lib/os-release', 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n'),
          symlink('/etc/os-release', '../usr/lib/os-release'),
          dir('/var/lib/dpkg'),
          file('/var/lib/dpkg/status', dpkg(['libc6', '2.36-9'], ['tzdata', '2024a-0'])),
        ],
        true,
      ),
      await layer(
        [
          dir('/var/lib/dpkg'),
          file('/var/lib/dpkg/status', dpkg(['libc6', '2.36-9'], ['jq', '1.6-2.1'])),
          dir('/srv/node_modules/old'),
          file('/srv/node_modules/old/package.json', npm('old', '1.0.0')),
        ],
        true,
      ),
    ];
    // The app: a package, and a whiteout of one the base had.
    app = await layer(
      [
        dir('/srv/node_modules/left-pad'),
        file('/srv/node_modules/left-pad/package.json', npm('left-pad', '1.3.0')),
        dir('/srv/node_modules'),
        whiteout('/srv/node_modules/.wh.old'),
      ],
      false,
    );
    top = await layer(
      [dir('/opt/py/x-1.0.dist-info'), file('/opt/py/x-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\nName: x\nVersion: 1.0\n')],
      false,
    );
  });

  // The same layers scanned from nothing (no snapshot, nothing known): what a continued scan must equal.
  const scratch = (layers: SbomLayer[]) => new SbomInventory(undefined, 'scratch').packages(layers);

  it('finds what a scan from nothing finds, reads each layer once, and nothing when known', async () => {
    const cacheDir = join(work, 'cache-1');
    const first = new SbomInventory(cacheDir, 't1');
    const appImage = await first.packages([...base, app]);
    const topImage = await first.packages([...base, app, top]);
    const toolImage = await first.packages([...base, top]);
    expect(appImage).toEqual(await scratch([...base, app]));
    expect(topImage).toEqual(await scratch([...base, app, top]));
    expect(toolImage).toEqual(await scratch([...base, top]));
    expect(appImage.packages.map((p) => p.name)).toEqual(['jq', 'libc6', 'left-pad']);
    expect(appImage.os?.versionId).toBe('12');
    // base layers once, app once, top twice (once on app's image, once on the base): 5 of 9.
    expect(first.stats).toMatchObject({ images: 3, fromCache: 0, layersRead: 5 });

    // The next build (a new process: only the directory is shared) reads nothing.
    const again = new SbomInventory(cacheDir, 't1');
    expect(await again.packages([...base, app, top])).toEqual(topImage);
    expect(await again.packages([...base, app])).toEqual(appImage);
    expect(again.stats).toEqual({ images: 2, fromCache: 2, fromReferrer: 0, layersRead: 0, bytesRead: 0, layersShared: 0 });
  });

  it('continues from a stored snapshot: a changed top layer is the only one read', async () => {
    const cacheDir = join(work, 'cache-2');
    const first = new SbomInventory(cacheDir, 't1');
    await first.packages([...base, app]);
    const changed = await layer([dir('/srv/node_modules/b'), file('/srv/node_modules/b/package.json', npm('b', '2.0.0'))], false);
    const next = new SbomInventory(cacheDir, 't1');
    const found = await next.packages([...base, app, changed]);
    expect(found).toEqual(await scratch([...base, app, changed]));
    expect(found.packages.map((p) => p.name)).toContain('b');
    expect(next.stats.layersRead).toBe(1);
    expect(next.stats.bytesRead).toBeGreaterThan(0);
    // Another tool version does not trust these files.
    const other = new SbomInventory(cacheDir, 't2');
    await other.packages([...base, app]);
    expect(other.stats.layersRead).toBe(3);
    expect(readdirSync(cacheDir).some((f) => f.endsWith('.tree.json'))).toBe(true);
  });

  it('probes executables in the one pass per layer: a new top layer does not re-read the base, and equals a scan from nothing', async () => {
    const cacheDir = join(work, 'cache-exec');
    const program = { ...file('/usr/bin/prog', 'x'.repeat(8192)), mode: 0o755 };
    const withExe = await layer([dir('/usr'), dir('/usr/bin'), program], true);
    const first = new SbomInventory(cacheDir, 't1');
    await first.packages([...base, withExe, app]);
    const layersFirst = first.stats.layersRead;
    const tool = { ...file('/srv/bin/tool', 'y'.repeat(8192)), mode: 0o755 };
    const changed = await layer(
      [dir('/srv/bin'), tool, dir('/srv/node_modules/c'), file('/srv/node_modules/c/package.json', npm('c', '3.0.0'))],
      false,
    );
    const next = new SbomInventory(cacheDir, 't1');
    const found = await next.packages([...base, withExe, changed]);
    expect(found).toEqual(await scratch([...base, withExe, changed]));
    // Each layer once: its executables are probed in the pass that reads its tree (the first
    // build: the base's two, withExe, app); then the changed layer alone, none of the base's.
    expect(layersFirst).toBe(4);
    expect(next.stats.layersRead).toBe(1);
  });

  it('takes each final executable from the topmost layer that wrote it', () => {
    const go = (name: string) => ({ name, version: '1.0.0', purl: `pkg:golang/${name}@1.0.0`, source: '/bin/x' }) as never;
    const lower = { '/bin/x': [go('a')], '/bin/gone': [go('b')] };
    const upper = { '/bin/x': [] };
    expect(packagesOfExecutables([lower, upper], new Set(['/bin/x']))).toEqual([]);
    expect(packagesOfExecutables([lower], new Set(['/bin/x']))).toEqual([go('a')]);
    // Not in the final file system (deleted above): not listed.
    expect(packagesOfExecutables([lower, upper], new Set<string>())).toEqual([]);
  });

  it('does not read the layers again for a database that is a link to a file the pass did not keep: a note says so', async () => {
    const linked = await layer(
      [
        dir('/var/lib/dpkg'),
        dir('/data'),
        file('/data/status', dpkg(['zlib1g', '1.2.13'])),
        symlink('/var/lib/dpkg/status', '/data/status'),
      ],
      false,
    );
    const inv = new SbomInventory(undefined, 't1');
    const found = await inv.packages([...base, linked]);
    expect(found.packages.map((p) => p.name)).toEqual(['old']);
    expect(found.notes).toEqual(['/var/lib/dpkg/status not read: it is a link to /data/status, a file the scan does not keep']);
    expect(inv.stats.layersRead).toBe(3);
  });

  it('takes a layer the registry cache check read (one pass): the SBOM does not read it again', async () => {
    const inv = new SbomInventory(undefined, 't1');
    expect(await inv.recordLayerCheck(app.diffId, app.open)).toBe(true);
    // A layer that does not unpack to the diffID it is checked against: refused, nothing kept.
    expect(await inv.recordLayerCheck(top.diffId, app.open)).toBe(false);
    const found = await inv.packages([...base, app]);
    expect(found).toEqual(await scratch([...base, app]));
    expect(inv.stats).toMatchObject({ layersRead: 2, layersShared: 1 });
  });
});
