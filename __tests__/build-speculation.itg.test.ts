import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase, type BaseImages } from './helpers/base-image.js';
import { cli } from './helpers/cli.js';
import { run } from './helpers/exec.js';

/**
 * Issue 7: during a cold base scan the first copy layer is made on a guess of the parent
 * directories (src/build/speculate.ts). Right or wrong, the image must be the one a build
 * without the guess gives: same digest, the base's directories and symlinks untouched.
 */

let reg: TestRegistry;
let base: BaseImages;
let ctx: string;
let big: Buffer;
const HIT = 'the layer started during the base scan is the one this step needs';
const MISS = 'the layer started during the base scan guessed other parent directories; building it again';

beforeAll(async () => {
  reg = await startRegistry();
  base = await pushBusyboxBase(reg.host, 'base/spec');
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-spec-'));
  big = randomBytes(5 << 20); // above SPECULATE_BYTES
  writeFileSync(join(ctx, 'big.bin'), big);
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

interface Built {
  stderr: string;
  digest: string;
  firstLayer: string | undefined;
}

async function build(name: string, to: string, cache: string): Promise<Built> {
  writeFileSync(
    join(ctx, `${name}.yml`),
    `version: 1
variants:
  ${name}:
    base: ${base.single}
    image: ${reg.host}/spec/${name}
    steps:
      - copy: big.bin
        to: ${to}
        mode: "0644"
      - file: /etc/spec
        content: "${name}"
`,
  );
  const r = await cli([
    'build',
    '--config',
    join(ctx, `${name}.yml`),
    '--push',
    '--tag',
    'v1',
    '--verbose',
    '--cache-dir',
    cache,
    '--cache-registry',
    'false',
    '--digest-map',
    join(ctx, `${name}.json`),
  ]);
  expect(r.code, r.stderr).toBe(0);
  // --verbose prints where each layer came from: the copy step's layer is the first that is not the base's.
  const report = JSON.parse(r.stdout) as { layers: { variant: string; origin: string }[] };
  const firstLayer = report.layers.find((l) => l.variant === name && l.origin !== 'base')?.origin;
  return { stderr: r.stderr, digest: JSON.parse(readFileSync(join(ctx, `${name}.json`), 'utf8'))[name].digest, firstLayer };
}

/** The same build again with the base's scan saved (no guess) and no layer records (all built). */
async function reference(name: string, to: string, cache: string): Promise<Built> {
  rmSync(join(cache, 'layers'), { recursive: true, force: true });
  rmSync(join(cache, 'blobs'), { recursive: true, force: true });
  return await build(name, to, cache);
}

describe('a first layer made during the base scan', () => {
  const cases: [string, string, string, (out: string) => void][] = [
    // The guess holds: /usr/local/bin is in the base.
    ['hit', '/usr/local/bin/big', HIT, () => {}],
    // The guess is wrong: /opt exists, /opt/new and /opt/new/deep do not.
    ['miss', '/opt/new/deep/big', MISS, (out) => expect(out).toContain('/opt/new/deep/big')],
    // /data is a symlink to /opt/data (1000:1000, 0750) in the base: neither the guess nor the
    // real entries may put a directory over it.
    ['symlink', '/data/big', HIT, (out) => expect(out).toMatch(/lrwxrwxrwx\s.*\/data -> \/opt\/data/)],
  ];
  for (const [name, to, note, check] of cases) {
    it(`${name}: ${to}`, async () => {
      const cache = join(ctx, `cache-${name}`);
      mkdirSync(cache);
      const first = await build(name, to, cache);
      expect(first.stderr).toContain(note);
      expect(first.firstLayer).toBe(note === HIT ? 'speculated' : 'built');
      const ref = await reference(name, to, cache);
      expect(ref.stderr).not.toContain(HIT);
      expect(ref.stderr).not.toContain(MISS);
      expect(ref.firstLayer).toBe('built');
      expect(ref.digest).toBe(first.digest);
      const ref2 = `${reg.host}/spec/${name}:v1`;
      const r = await run('podman', [
        'run',
        '--rm',
        '--network',
        'none',
        '--tls-verify=false',
        ref2,
        'sh',
        '-c',
        `sha256sum ${to}; ls -ld /data /opt/data ${to.replace(/\/[^/]+$/, '')}; ls -l /opt/new/deep 2>/dev/null || true`,
      ]);
      expect(r.stdout.split(' ')[0]).toBe(createHash('sha256').update(big).digest('hex'));
      expect(r.stdout).toMatch(/drwxr-x---\s+\d+\s+(1000|app)\s+(1000|app)\s.*\/opt\/data/);
      check(r.stdout);
      await run('podman', ['rmi', '-f', ref2], { allowFail: true });
    });
  }
});
