import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultArtifactName, MAX_ARTIFACT_NAME, uploadDigestMapArtifact, type ArtifactClientLike } from '../src/github/artifact.js';
import { renderSummary, writeSummary, type SummaryRow } from '../src/github/summary.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-out-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const rows: SummaryRow[] = [
  {
    variant: 'claude',
    image: 'ghcr.io/acme/coop-claude',
    digest: D2,
    ref: `ghcr.io/acme/coop-claude@${D2}`,
    tags: ['ghcr.io/acme/coop-claude:latest-claude', 'ghcr.io/acme/coop-claude:sha-abc1234-claude'],
    platforms: ['linux/amd64', 'linux/arm64'],
    size: 12 * 1024 * 1024,
    layersPushed: 1,
    layersReused: 4,
    durationMs: 2500,
    pushed: true,
    attestations: {
      [D2]: { provenance: `sha256:${'a'.repeat(64)}` },
      [`sha256:${'3'.repeat(64)}`]: { provenance: `sha256:${'b'.repeat(64)}`, sbom: `sha256:${'c'.repeat(64)}` },
    },
  },
  {
    variant: 'base',
    image: 'ghcr.io/acme/coop-base',
    digest: D1,
    ref: `ghcr.io/acme/coop-base@${D1}`,
    tags: ['main'],
    platforms: ['linux/amd64'],
    size: 2048,
    pushed: false,
  },
];
const digestMap = {
  base: { image: 'ghcr.io/acme/coop-base', digest: D1, ref: `ghcr.io/acme/coop-base@${D1}`, tags: [], size: 2048, pushed: false },
  claude: { image: 'ghcr.io/acme/coop-claude', digest: D2, ref: `ghcr.io/acme/coop-claude@${D2}`, tags: [], size: 1, pushed: true },
};

describe('renderSummary', () => {
  const text = renderSummary(rows, digestMap);
  const bodyRows = text.split('\n').filter((l) => l.startsWith('<tr><td>'));

  it('one table, a row per variant, sorted by variant', () => {
    expect(text.match(/<table>/g)).toHaveLength(1);
    expect(bodyRows).toHaveLength(2);
    expect(bodyRows[0]).toContain('<b>base</b><br><sub>not pushed</sub>');
    expect(bodyRows[1]).toContain('<b>claude</b>');
    expect(text).toMatch(/^### oci-build: 2 images built, 1 pushed/);
  });

  it('short digest with the full ref in a <code>, tag names, platforms, size, layers, time', () => {
    const claude = bodyRows[1]!;
    expect(claude).toContain(`<summary><code>sha256:222222222222</code></summary><code>ghcr.io/acme/coop-claude@${D2}</code>`);
    expect(claude).toContain('<code>latest-claude</code> <code>sha-abc1234-claude</code>');
    expect(claude).toContain('linux/amd64<br>linux/arm64');
    expect(claude).toContain('12.0 MiB');
    expect(claude).toContain('1 pushed / 4 reused');
    expect(claude).toContain('2.50 s');
    expect(bodyRows[0]).toContain('<td>–</td><td>–</td></tr>'); // no layer stats, no time
    expect(bodyRows[0]).toContain('<code>main</code>');
  });

  it('an attestations column: counts per kind, each subject and artifact manifest when unfolded', () => {
    const claude = bodyRows[1]!;
    expect(claude).toContain('<details><summary>2 provenance, 1 SBOM</summary>');
    expect(claude).toContain(
      '<code>sha256:333333333333</code>: provenance <code>sha256:bbbbbbbbbbbb</code>, sbom <code>sha256:cccccccccccc</code>',
    );
    expect(claude).toContain('<code>sha256:222222222222</code>: provenance <code>sha256:aaaaaaaaaaaa</code>');
    expect(text).toContain('<th>Attestations</th>');
  });

  it('digest map JSON in a collapsed block', () => {
    expect(text).toContain('<details><summary>Digest map (JSON)</summary>');
    const json = /```json\n([\s\S]*?)\n```/.exec(text)![1]!;
    expect(JSON.parse(json)).toEqual(digestMap);
  });

  it('escapes HTML in values', () => {
    const t = renderSummary([{ ...rows[1]!, variant: '<script>x</script>', tags: ['a&b'] }], {});
    expect(t).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(t).toContain('<code>a&amp;b</code>');
    expect(t).not.toContain('<script>');
  });

  it('no rows, and a huge map is not inlined', () => {
    expect(renderSummary([], {})).toMatch(/0 images built, none pushed/);
    const big = { x: 'y'.repeat(600 * 1024) };
    expect(renderSummary([], big)).toMatch(/too big for the summary/);
  });
});

describe('writeSummary', () => {
  it('appends to GITHUB_STEP_SUMMARY; false when unset', async () => {
    const file = join(dir, 'summary.md');
    writeFileSync(file, 'before\n');
    expect(await writeSummary('hello', { GITHUB_STEP_SUMMARY: file })).toBe(true);
    expect(await writeSummary('again\n', { GITHUB_STEP_SUMMARY: file })).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('before\nhello\nagain\n');
    expect(await writeSummary('x', {})).toBe(false);
  });
});

function capture() {
  const info: string[] = [];
  const warn: string[] = [];
  return { info, warn, logger: { info: (m: string) => info.push(m), warn: (m: string) => warn.push(m) } };
}

describe('uploadDigestMapArtifact', () => {
  const file = join(dir, 'image-digests.json');
  writeFileSync(file, JSON.stringify(digestMap));

  it('uploads through the client and returns the id', async () => {
    const calls: unknown[][] = [];
    const client: ArtifactClientLike = {
      uploadArtifact: async (...args) => {
        calls.push(args);
        return { id: 77, size: 321 };
      },
    };
    const c = capture();
    expect(await uploadDigestMapArtifact(file, 'digest-map-build-base', 5, { client, logger: c.logger })).toBe(77);
    expect(calls).toEqual([['digest-map-build-base', [file], dir, { retentionDays: 5 }]]);
    expect(c.info[0]).toMatch(/"digest-map-build-base" uploaded \(image-digests\.json, id 77, 321 bytes\)/);
    expect(c.warn).toEqual([]);
  });

  it('empty name disables without a word', async () => {
    const c = capture();
    const client: ArtifactClientLike = {
      uploadArtifact: async () => {
        throw new Error('must not be called');
      },
    };
    expect(await uploadDigestMapArtifact(file, '', undefined, { client, logger: c.logger })).toBeUndefined();
    expect(c.warn).toEqual([]);
  });

  it('a failing upload warns and returns undefined (never throws)', async () => {
    const c = capture();
    const client: ArtifactClientLike = {
      uploadArtifact: async () => {
        throw new Error('Failed request: (409) Conflict: an artifact with this name already exists on the workflow run');
      },
    };
    expect(await uploadDigestMapArtifact(file, 'n', undefined, { client, logger: c.logger })).toBeUndefined();
    expect(c.warn[0]).toMatch(/artifact "n" not uploaded: .*409.*give each matrix job its own name/);
  });

  it('no id back, missing file, bad name, bad retention', async () => {
    const c = capture();
    const ok: ArtifactClientLike = { uploadArtifact: async () => ({}) };
    expect(await uploadDigestMapArtifact(file, 'n', undefined, { client: ok, logger: c.logger })).toBeUndefined();
    expect(c.warn.pop()).toMatch(/returned no artifact id/);
    expect(await uploadDigestMapArtifact(join(dir, 'nope.json'), 'n', undefined, { client: ok, logger: c.logger })).toBeUndefined();
    expect(c.warn.pop()).toMatch(/nope\.json does not exist/);
    expect(await uploadDigestMapArtifact(file, 'a/b', undefined, { client: ok, logger: c.logger })).toBeUndefined();
    expect(c.warn.pop()).toMatch(/may not contain/);
    const calls: unknown[] = [];
    const rec: ArtifactClientLike = {
      uploadArtifact: async (_n, _f, _r, o) => {
        calls.push(o);
        return { id: 1 };
      },
    };
    expect(await uploadDigestMapArtifact(file, 'n', 365, { client: rec, logger: c.logger })).toBe(1);
    expect(await uploadDigestMapArtifact(file, 'n', 0, { client: rec, logger: c.logger })).toBe(1);
    expect(calls).toEqual([{}, {}]);
    expect(c.warn.pop()).toMatch(/retention of 365 days is not a whole number from 1 to 90/);
  });

  it('no artifact service (off GitHub): warns, does not throw, never builds a client', async () => {
    const c = capture();
    expect(await uploadDigestMapArtifact(file, 'n', undefined, { logger: c.logger, env: {} })).toBeUndefined();
    expect(c.warn[0]).toMatch(/artifact service is not available here \(ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL are not set/);
    expect(await uploadDigestMapArtifact(file, 'n', undefined, { logger: c.logger, env: { ACTIONS_RUNTIME_TOKEN: 't' } })).toBeUndefined();
    expect(c.warn[1]).toMatch(/\(ACTIONS_RESULTS_URL is not set/);
  });

  it('the real DefaultArtifactClient failing (GHES, not supported) is a warning', async () => {
    const c = capture();
    const saved = process.env.GITHUB_SERVER_URL;
    process.env.GITHUB_SERVER_URL = 'https://ghes.example.com';
    try {
      const env = { ACTIONS_RUNTIME_TOKEN: 'token', ACTIONS_RESULTS_URL: 'http://127.0.0.1:9/' };
      expect(await uploadDigestMapArtifact(file, 'n', undefined, { logger: c.logger, env })).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.GITHUB_SERVER_URL;
      else process.env.GITHUB_SERVER_URL = saved;
    }
    expect(c.warn[0]).toMatch(/artifact "n" not uploaded: .*GHES/i);
  });
});

describe('defaultArtifactName', () => {
  it('job, sorted unique variants, extra; all when none', () => {
    expect(defaultArtifactName(['claude', 'base', 'claude'], { job: 'build' })).toBe('digest-map-build-base+claude');
    expect(defaultArtifactName([], { job: 'build' })).toBe('digest-map-build-all');
    expect(defaultArtifactName(['a'], {}, 'linux/arm64')).toBe('digest-map-a-linux-arm64');
  });

  it('distinct for different variant sets, including ones a plain join would confuse', () => {
    const names = [['a-b'], ['a', 'b'], ['a'], ['b'], ['a', 'b', 'c']].map((v) => defaultArtifactName(v, { job: 'j' }));
    expect(new Set(names).size).toBe(names.length);
  });

  it('long sets are cut with a hash and stay distinct and valid', () => {
    const many = Array.from({ length: 40 }, (_, i) => `variant-${i}`);
    const a = defaultArtifactName(many, { job: 'build' });
    const b = defaultArtifactName([...many.slice(0, 39), 'variant-x'], { job: 'build' });
    expect(a.length).toBeLessThanOrEqual(MAX_ARTIFACT_NAME);
    expect(a).toMatch(/^digest-map-build-variant-0\+.*-[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    expect(a).not.toMatch(/[":<>|*?\\/]/);
  });
});
