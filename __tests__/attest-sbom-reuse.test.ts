// The order attestVariant asks for an image's SBOM (src/attest/attest.ts): the inventory when it
// knows the layers (no network), else the registry's referrer (existingSbom), else the scan.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attestVariant, type RunFacts, type VariantFacts } from '../src/attest/attest.js';
import { SbomInventory } from '../src/attest/sbom/inventory.js';
import type { WantedSbom } from '../src/attest/sbom-reuse.js';
import { BlobStore } from '../src/layer/blobstore.js';
import { writeLayer } from '../src/layer/writer.js';
import { sha256 } from '../src/oci/digest.js';

const TOOL = { name: 'oci-build-action', version: 't1' };
const run: RunFacts = {
  buildFile: { path: 'oci-build.yml', digest: sha256('version: 1\n'), content: 'version: 1\n' },
  builder: { id: 'urn:oci-build-action:cli:vt1', version: 't1' },
  args: {},
  fromEnvironment: [],
};
let work: string;
let facts: VariantFacts;
let opened = 0;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'sbom-reuse-'));
  const store = new BlobStore(join(work, 'blobs'));
  const body = Buffer.from('{"name":"left-pad","version":"1.3.0"}');
  const entry = { path: '/app/node_modules/left-pad/package.json', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, size: body.length };
  const built = await writeLayer([{ ...entry, open: () => Readable.from([body]) }], store, {
    mtime: new Date(0),
    compression: { algorithm: 'gzip', level: 1 },
  });
  const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('m'), size: 1 };
  facts = {
    variant: 'app',
    image: 'registry.test/acme/app',
    steps: [],
    images: [
      {
        manifest,
        platform: 'linux/amd64',
        layers: [
          {
            diffId: built.diffId,
            base: false,
            open: () => {
              opened++;
              return store.open(built.descriptor.digest);
            },
          },
        ],
      },
    ],
  };
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sbomOf = (list: Awaited<ReturnType<typeof attestVariant>>) => list[0]!.attestations.find((a) => a.kind === 'sbom')!.bytes;

describe('SBOM reuse order', () => {
  it('takes the referrer when the inventory does not know the image, asked with the subject, name, tool and timestamp', async () => {
    const asked: WantedSbom[] = [];
    const held = Buffer.from('{"held":true}');
    const inv = new SbomInventory(undefined, TOOL.version);
    opened = 0;
    const settings = { provenance: false as const, sbom: true, sourceDateEpoch: 1700000000 };
    const list = await attestVariant(
      facts,
      run,
      {
        ...settings,
        existingSbom: async (w) => {
          asked.push(w);
          return held;
        },
      },
      TOOL,
      inv,
    );
    expect(sbomOf(list)).toEqual(held);
    expect(asked).toEqual([{ subject: facts.images[0]!.manifest, name: facts.image, tool: TOOL, timestamp: new Date(1700000000 * 1000) }]);
    expect(inv.stats).toEqual({ images: 1, fromCache: 0, fromReferrer: 1, layersRead: 0, bytesRead: 0, layersShared: 0 });
    expect(opened).toBe(0);
  });

  it('scans when the registry has none, and does not ask once the inventory knows the layers', async () => {
    const inv = new SbomInventory(undefined, TOOL.version);
    let asks = 0;
    const settings = {
      provenance: false as const,
      sbom: true,
      existingSbom: async () => {
        asks++;
        return undefined;
      },
    };
    const made = sbomOf(await attestVariant(facts, run, settings, TOOL, inv));
    expect(asks).toBe(1);
    expect(inv.stats.layersRead).toBe(1);
    expect(JSON.parse(made.toString('utf8')).components.map((c: { purl: string }) => c.purl)).toContain('pkg:npm/left-pad@1.3.0');
    const again = sbomOf(await attestVariant(facts, run, settings, TOOL, inv));
    expect(asks).toBe(1);
    expect(again).toEqual(made);
    expect(inv.stats).toMatchObject({ images: 2, fromCache: 1, fromReferrer: 0, layersRead: 1 });
  });
});
