import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  copyStepKey,
  fileStepKey,
  hashKey,
  LAYER_CACHE_FORMAT,
  LayerCache,
  stepKeyParts,
  type KeyEntry,
  type KeyStep,
  type LayerKeyOptions,
} from '../src/cache/layer-cache.js';

/**
 * Issue 7: layer cache keys. A key must change with anything that changes the layer's bytes
 * (content, mode, owner, destination, step options, the parent directories the step emits,
 * mtime, gzip level) and stay equal otherwise (entry order, host stat data, the step's place
 * in the build file, absolute host paths).
 */

const H = (c: string) => `sha256:${c.repeat(64).slice(0, 64)}`;
type CopyStep = Extract<KeyStep, { kind: 'copy' }>;

function step(over: Partial<CopyStep> = {}): CopyStep {
  return { kind: 'copy', sources: [{ pattern: 'app/scenarios/', isGlob: false }], to: '/opt/app/scenarios/', owner: '1000:1000', ...over };
}

/** The entries stepEntries would give for that copy: two missing parents, the directory, files. */
function entries(): KeyEntry[] {
  return [
    { path: '/opt', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
    { path: '/opt/app', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
    { path: '/opt/app/scenarios', type: 'dir', mode: 0o755, uid: 1000, gid: 1000 },
    { path: '/opt/app/scenarios/login.yml', type: 'file', mode: 0o644, uid: 1000, gid: 1000, size: 120, contentHash: H('a') },
    { path: '/opt/app/scenarios/run.sh', type: 'file', mode: 0o755, uid: 1000, gid: 1000, size: 40, contentHash: H('b') },
    { path: '/opt/app/scenarios/latest', type: 'symlink', mode: 0o777, uid: 1000, gid: 1000, linkname: 'login.yml' },
  ];
}

const OPTS: LayerKeyOptions = { mtime: 0, compression: { algorithm: 'gzip', level: 6 } };
const BASE = copyStepKey(step(), entries(), OPTS);

function withEntry(path: string, change: Partial<KeyEntry>): KeyEntry[] {
  return entries().map((e) => (e.path === path ? { ...e, ...change } : e));
}

describe('canonicalJson', () => {
  it('sorts object keys at every level and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' }, u: undefined })).toBe(
      '{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  });

  it('spells dates, bytes and -0 one way', () => {
    expect(canonicalJson(new Date(0))).toBe('"1970-01-01T00:00:00.000Z"');
    expect(canonicalJson(Buffer.from('hi'))).toBe('{"$bytes":"6869"}');
    expect(canonicalJson(new Uint8Array([1, 2]))).toBe('{"$bytes":"0102"}');
    expect(canonicalJson(-0)).toBe('0');
  });

  it('refuses values that would be dropped or are ambiguous', () => {
    expect(() => canonicalJson({ a: NaN })).toThrow(/\$\.a is NaN/);
    expect(() => canonicalJson([1, undefined])).toThrow(/undefined/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/function/);
    expect(() => canonicalJson({ m: new Map() })).toThrow(/Map/);
    expect(() => canonicalJson(10n)).toThrow(/bigint/);
    expect(() => canonicalJson(Symbol('x'))).toThrow(/symbol/);
  });

  it('hashKey and LayerCache.key are the same 64-hex sha256', () => {
    const k = hashKey({ a: 1 });
    expect(k).toMatch(/^[a-f0-9]{64}$/);
    expect(new LayerCache('/nonexistent').key({ a: 1 })).toBe(k);
    expect(hashKey({ a: 1 })).not.toBe(hashKey({ a: 2 }));
    expect(hashKey({ a: '1' })).not.toBe(hashKey({ a: 1 }));
  });
});

describe('copyStepKey stays equal', () => {
  it('for the same inputs', () => {
    expect(copyStepKey(step(), entries(), OPTS)).toBe(BASE);
  });

  it('whatever the order of the entries (the writer sorts them)', () => {
    expect(copyStepKey(step(), entries().reverse(), OPTS)).toBe(BASE);
  });

  it('when only host-side data differs: stat fields, host paths, the step position, glob matches', () => {
    const hostish = entries().map((e, i) => ({
      ...e,
      mtimeMs: 1_700_000_000_000 + i,
      ino: 42 + i,
      hostPath: `/home/runner/work/x/${e.path}`,
    }));
    expect(copyStepKey(step(), hostish, OPTS)).toBe(BASE);
    const s = { ...step(), pos: { file: '/elsewhere/oci-build.yml', line: 99, column: 3 } } as CopyStep;
    expect(copyStepKey(s, entries(), OPTS)).toBe(BASE);
    const m = step({
      sources: [{ pattern: 'app/scenarios/', isGlob: false, matches: ['/tmp/checkout-2/app/scenarios'] } as CopyStep['sources'][number]],
    });
    expect(copyStepKey(m, entries(), OPTS)).toBe(BASE);
  });

  it('when mode carries file-type bits, as stat modes do', () => {
    expect(copyStepKey(step(), withEntry('/opt/app/scenarios/run.sh', { mode: 0o100755 }), OPTS)).toBe(BASE);
  });

  it('for a Date mtime and the same time in seconds', () => {
    const a = copyStepKey(step(), entries(), { mtime: new Date(1_700_000_000_000), compression: { algorithm: 'gzip', level: 6 } });
    expect(copyStepKey(step(), entries(), { mtime: 1_700_000_000, compression: { algorithm: 'gzip', level: 6 } })).toBe(a);
  });
});

describe('copyStepKey changes', () => {
  const cases: [string, () => string][] = [
    ['file content', () => copyStepKey(step(), withEntry('/opt/app/scenarios/login.yml', { contentHash: H('c') }), OPTS)],
    ['file size', () => copyStepKey(step(), withEntry('/opt/app/scenarios/login.yml', { size: 121 }), OPTS)],
    ['a file mode', () => copyStepKey(step(), withEntry('/opt/app/scenarios/run.sh', { mode: 0o750 }), OPTS)],
    ['a setuid bit', () => copyStepKey(step(), withEntry('/opt/app/scenarios/run.sh', { mode: 0o4755 }), OPTS)],
    ['a file uid', () => copyStepKey(step(), withEntry('/opt/app/scenarios/login.yml', { uid: 0 }), OPTS)],
    ['a file gid', () => copyStepKey(step(), withEntry('/opt/app/scenarios/login.yml', { gid: 50 }), OPTS)],
    ['a directory owner', () => copyStepKey(step(), withEntry('/opt/app/scenarios', { uid: 0, gid: 0 }), OPTS)],
    ['a directory mode', () => copyStepKey(step(), withEntry('/opt/app', { mode: 0o700 }), OPTS)],
    ['a symlink target', () => copyStepKey(step(), withEntry('/opt/app/scenarios/latest', { linkname: 'run.sh' }), OPTS)],
    [
      'an entry type',
      () =>
        copyStepKey(step(), withEntry('/opt/app/scenarios/latest', { type: 'hardlink', linkname: '/opt/app/scenarios/login.yml' }), OPTS),
    ],
    [
      'a file renamed',
      () => copyStepKey(step(), withEntry('/opt/app/scenarios/login.yml', { path: '/opt/app/scenarios/logout.yml' }), OPTS),
    ],
    [
      'a file added',
      () =>
        copyStepKey(
          step(),
          [
            ...entries(),
            { path: '/opt/app/scenarios/new.yml', type: 'file', mode: 0o644, uid: 1000, gid: 1000, size: 0, contentHash: H('e') },
          ],
          OPTS,
        ),
    ],
    [
      'a file removed',
      () =>
        copyStepKey(
          step(),
          entries().filter((e) => e.path !== '/opt/app/scenarios/run.sh'),
          OPTS,
        ),
    ],
    // The parent had /opt already: the layer no longer carries that directory entry.
    [
      'the parent directories emitted (FsView)',
      () =>
        copyStepKey(
          step(),
          entries().filter((e) => e.path !== '/opt'),
          OPTS,
        ),
    ],
    [
      'the destination (step and entries)',
      () =>
        copyStepKey(
          step({ to: '/srv/scenarios/' }),
          entries().map((e) => ({ ...e, path: e.path.replace('/opt/app/scenarios', '/srv/scenarios') })),
          OPTS,
        ),
    ],
    ['the destination as written only', () => copyStepKey(step({ to: '/opt/app/scenarios' }), entries(), OPTS)],
    ['the step mode option', () => copyStepKey(step({ mode: 0o755 }), entries(), OPTS)],
    ['the step owner option as written', () => copyStepKey(step({ owner: 'app' }), entries(), OPTS)],
    ['no owner option', () => copyStepKey(step({ owner: undefined }), entries(), OPTS)],
    ['the source pattern', () => copyStepKey(step({ sources: [{ pattern: 'app/scenarios/*', isGlob: true }] }), entries(), OPTS)],
    [
      'a second source',
      () =>
        copyStepKey(
          step({
            sources: [
              { pattern: 'app/scenarios/', isGlob: false },
              { pattern: 'x', isGlob: false },
            ],
          }),
          entries(),
          OPTS,
        ),
    ],
    ['the gzip level', () => copyStepKey(step(), entries(), { ...OPTS, compression: { algorithm: 'gzip', level: 9 } })],
    ['gzip level 0', () => copyStepKey(step(), entries(), { ...OPTS, compression: { algorithm: 'gzip', level: 0 } })],
    ['the mtime (SOURCE_DATE_EPOCH)', () => copyStepKey(step(), entries(), { ...OPTS, mtime: 1_700_000_000 })],
  ];
  it.each(cases)('with %s', (_name, key) => {
    expect(key()).not.toBe(BASE);
  });

  it('all those keys differ from each other too', () => {
    const keys = cases.map(([, k]) => k());
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('copyStepKey refuses incomplete input', () => {
  it('a file without a content hash or size', () => {
    expect(() => copyStepKey(step(), withEntry('/opt/app/scenarios/login.yml', { contentHash: undefined }), OPTS)).toThrow(
      /login.yml has no content hash/,
    );
    expect(() => copyStepKey(step(), withEntry('/opt/app/scenarios/login.yml', { contentHash: 'md5:abc' }), OPTS)).toThrow(
      /no content hash/,
    );
    expect(() => copyStepKey(step(), withEntry('/opt/app/scenarios/login.yml', { size: undefined }), OPTS)).toThrow(/no size/);
  });

  it('duplicate paths, bad gzip levels, bad mtimes', () => {
    expect(() => copyStepKey(step(), [...entries(), entries()[0]!], OPTS)).toThrow(/duplicate path \/opt/);
    expect(() => copyStepKey(step(), entries(), { ...OPTS, compression: { algorithm: 'gzip', level: 10 } })).toThrow(/gzip level/);
    expect(() => copyStepKey(step(), entries(), { ...OPTS, compression: { algorithm: 'gzip', level: 1.5 } })).toThrow(/gzip level/);
    expect(() => copyStepKey(step(), entries(), { ...OPTS, mtime: new Date('nope') })).toThrow(/mtime/);
  });
});

describe('fileStepKey', () => {
  const fstep = (content: string, over: Partial<Extract<KeyStep, { kind: 'file' }>> = {}): Extract<KeyStep, { kind: 'file' }> => ({
    kind: 'file',
    path: '/etc/app/config.toml',
    content,
    mode: 0o640,
    owner: '1000:staff',
    ...over,
  });
  const fentries = (size: number): KeyEntry[] => [
    { path: '/etc/app', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
    { path: '/etc/app/config.toml', type: 'file', mode: 0o640, uid: 1000, gid: 50, size },
  ];

  it('takes the content hash from the step and changes with the content', () => {
    const a = fileStepKey(fstep('listen = 1\n'), fentries(11), OPTS);
    expect(fileStepKey(fstep('listen = 1\n'), fentries(11), OPTS)).toBe(a);
    expect(fileStepKey(fstep('listen = 2\n'), fentries(11), OPTS)).not.toBe(a);
    expect(fileStepKey(fstep('listen = 1\n', { mode: 0o600 }), fentries(11), OPTS)).not.toBe(a);
    expect(fileStepKey(fstep('listen = 1\n', { owner: '1000:1000' }), fentries(11), OPTS)).not.toBe(a);
  });

  it('is not the key of a copy step with the same entries', () => {
    const parts = stepKeyParts(fstep('x'), fentries(1), OPTS);
    expect((parts.step as { kind: string }).kind).toBe('file');
    const asCopy = fentries(1).map((e) =>
      e.type === 'file' ? { ...e, contentHash: (parts.entries as { content?: string }[])[1]!.content } : e,
    );
    expect(copyStepKey(step({ to: '/etc/app/config.toml' }), asCopy, OPTS)).not.toBe(fileStepKey(fstep('x'), fentries(1), OPTS));
  });
});

describe('hashKey of a big key', () => {
  it('is the sha256 of the format tag and the canonical JSON, hashed in pieces', async () => {
    const { createHash } = await import('node:crypto');
    // More than one 64 KiB piece, with non-ASCII paths across piece boundaries.
    const entries = Array.from({ length: 5000 }, (_, i) => ({
      path: `/app/n\u00e9-\u{1f600}-${i}`,
      mode: 0o644,
      contentHash: `sha256:${i}`,
    }));
    const parts = { entries, kind: 'copy' };
    const json = canonicalJson(parts);
    expect(json.length).toBeGreaterThan(3 << 16);
    const prefix = `oci-build/layer-cache/v${LAYER_CACHE_FORMAT}\n`;
    expect(hashKey(null)).toBe(createHash('sha256').update(prefix).update('null').digest('hex'));
    expect(hashKey(parts)).toBe(createHash('sha256').update(prefix).update(json).digest('hex'));
  });
});
