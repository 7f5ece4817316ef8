import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PullUsageError } from '../src/pull/errors.js';
import { targetFromReference, targetsFromDigestMap } from '../src/pull/targets.js';

const D = `sha256:${'a'.repeat(64)}`;

function mapFile(doc: unknown): string {
  const f = join(mkdtempSync(join(tmpdir(), 'pull-targets-')), 'map.json');
  writeFileSync(f, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return f;
}

describe('what pull pulls', () => {
  it('names a reference by its tag, latest when it has none', () => {
    expect(targetFromReference('ubuntu')).toMatchObject({ name: 'latest', image: 'docker.io/library/ubuntu', tags: ['latest'] });
    expect(targetFromReference('127.0.0.1:5000/a/b:v1')).toMatchObject({
      name: 'v1',
      image: '127.0.0.1:5000/a/b',
      reference: { tag: 'v1' },
    });
    expect(targetFromReference(`ghcr.io/acme/app@${D}`)).toMatchObject({ name: 'app', tags: [], reference: { digest: D } });
    expect(() => targetFromReference('Not/Valid')).toThrow(PullUsageError);
  });

  it('pulls each variant of a digest map by its digest', async () => {
    const f = mapFile({
      empty: { image: 'ghcr.io/acme/coop-empty', digest: D, ref: `ghcr.io/acme/coop-empty@${D}`, tags: ['ghcr.io/acme/coop-empty:v1'] },
      other: { image: '127.0.0.1:5000/acme/other', digest: D },
    });
    const all = await targetsFromDigestMap(f, []);
    expect(all.map((t) => [t.name, t.reference.digest, t.tags])).toEqual([
      ['empty', D, ['v1']],
      ['other', D, []],
    ]);
    expect((await targetsFromDigestMap(f, ['other'])).map((t) => t.image)).toEqual(['127.0.0.1:5000/acme/other']);
  });

  it('says what is wrong with a digest map', async () => {
    await expect(targetsFromDigestMap(mapFile({ a: { image: 'x/y', digest: D } }), ['b'])).rejects.toThrow(
      /has no variant b \(it has: a\)/,
    );
    await expect(targetsFromDigestMap(mapFile('[1]'), [])).rejects.toThrow(/not a digest map/);
    await expect(targetsFromDigestMap(mapFile('{'), [])).rejects.toThrow(PullUsageError);
    await expect(targetsFromDigestMap(mapFile({ a: { tags: [] } }), [])).rejects.toThrow(/neither "ref" nor "image" and "digest"/);
  });
});
