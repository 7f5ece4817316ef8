import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseOf, onlySubjects, readPartial, writePartial, type PartialMap } from '../src/distribute/partial.js';

/** The attestations' digests travel from the build jobs to the merge job in the partial maps. */

const dir = mkdtempSync(join(tmpdir(), 'attest-partial-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const d = (c: string) => `sha256:${c.repeat(64)}` as const;

const partial: PartialMap = {
  kind: 'oci-build-partial',
  version: 1,
  buildFile: 'a'.repeat(64),
  job: 'app[linux/amd64]',
  variants: {
    app: {
      kind: 'platforms',
      image: 'ghcr.io/acme/app',
      platforms: {
        'linux/amd64': {
          digest: d('1'),
          size: 10,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          totalSize: 99,
          base: { ref: 'debian:12', digest: d('9') },
        },
      },
      attestations: { [d('1')]: { provenance: d('2'), sbom: d('3') } },
    },
    tool: {
      kind: 'entry',
      entry: {
        image: 'ghcr.io/acme/tool',
        digest: d('4'),
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ref: `ghcr.io/acme/tool@${d('4')}`,
        tags: [],
        size: 5,
        pushed: true,
        attestations: { [d('4')]: { provenance: d('5') } },
      },
    },
  },
};

describe('partial digest maps', () => {
  it('keep the attestations and bases through a write and a read (the schema does not strip them)', async () => {
    const file = join(dir, 'p.json');
    await writePartial(file, partial);
    expect(await readPartial(file)).toEqual(partial);
  });

  it('refuse an attestation digest that is not one, naming the field', async () => {
    const file = join(dir, 'bad.json');
    const bad = JSON.parse(JSON.stringify(partial));
    bad.variants.app.attestations[d('1')].sbom = 'sha256:nope';
    writeFileSync(file, JSON.stringify(bad));
    await expect(readPartial(file)).rejects.toThrow(/variants\.app\.attestations\.sha256:1{64}\.sbom/);
  });

  it('onlySubjects keeps the platform manifests’ entries; baseOf reads the base annotations', () => {
    expect(onlySubjects({ [d('1')]: { sbom: d('2') }, [d('7')]: { provenance: d('8') } }, [d('1')])).toEqual({
      attestations: { [d('1')]: { sbom: d('2') } },
    });
    expect(onlySubjects({ [d('7')]: { provenance: d('8') } }, [d('1')])).toEqual({});
    expect(
      baseOf({ annotations: { 'org.opencontainers.image.base.name': 'debian:12', 'org.opencontainers.image.base.digest': d('9') } }),
    ).toEqual({ base: { ref: 'debian:12', digest: d('9') } });
    expect(baseOf({ annotations: { 'org.opencontainers.image.base.name': 'debian:12' } })).toEqual({});
  });
});
