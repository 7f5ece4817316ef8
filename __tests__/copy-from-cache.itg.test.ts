import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { cli } from './helpers/cli.js';

/**
 * A cached `copy: from:` / COPY --from layer is found without materializing the source
 * variant's root file system (issue 13: a no-op rebuild of a multi-stage build does no root file
 * system work): by an alias of the source's layer chain, the layers below and the step. A source
 * rebuilt with the same copied files still hits through the content key, as before. A cached
 * RUN --mount=type=bind,from= is keyed by the source's layers and does not mount (extract) it.
 */

let reg: TestRegistry;
let ctx: string;
let base: string;

const BUILD_FILE = `version: 1
args: { BASE: none }
variants:
  src:
    base: \${BASE}
    stage: true
    steps:
      - { copy: bin.txt, to: /out/bin.txt }
      - { copy: other.txt, to: /out/other.txt }
  app:
    base: \${BASE}
    steps:
      - { copy: /out/bin.txt, from: src, to: /srv/ }
      - { file: /srv/after.txt, content: "after" }
  df:
    dockerfile: Dockerfile
    contexts: { src: "variant:src" }
    args: { BASE: "\${BASE}" }
`;

const DOCKERFILE = `ARG BASE
FROM \${BASE}
WORKDIR /opt/work
RUN --mount=type=bind,from=src,source=/out,target=/mnt cat /mnt/bin.txt > made.txt
COPY --from=src /out /opt/out
`;

type Layer = { variant: string; createdBy: string; origin: string; digest: string };
type Result = { layers: Layer[]; rootfs: { layersExtracted: number; clones: number } };

async function build(): Promise<Result> {
  const r = await cli(
    ['build', '--config', join(ctx, 'oci-build.yml'), '--cache-dir', join(ctx, '.cache'), '--verbose', '--sbom', 'false'],
    { env: { ...process.env, BASE: base, SOURCE_DATE_EPOCH: '1700000000' } },
  );
  expect(r.code, r.stderr.slice(-4000)).toBe(0);
  return JSON.parse(r.stdout);
}

const copies = (r: Result) => r.layers.filter((l) => /copy --from=src|COPY --from=src/.test(l.createdBy));

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host)).single;
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-cfc-'));
  writeFileSync(join(ctx, 'oci-build.yml'), BUILD_FILE);
  writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
  writeFileSync(join(ctx, 'bin.txt'), 'the binary\n');
  writeFileSync(join(ctx, 'other.txt'), 'one\n');
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('copy from another variant, cached', () => {
  let first: Result;

  it('a no-op rebuild takes the copy layers from the cache without extracting the source', async () => {
    first = await build();
    expect(copies(first).map((l) => [l.variant, l.origin])).toEqual([
      ['app', 'built'],
      ['df', 'built'],
    ]);
    // The first build extracts src's layers to read the files it copies.
    expect(first.rootfs.layersExtracted).toBeGreaterThan(0);
    const again = await build();
    expect(again.layers.filter((l) => l.origin === 'built')).toEqual([]);
    expect(copies(again).map((l) => [l.variant, l.origin])).toEqual([
      ['app', 'cached'],
      ['df', 'cached'],
    ]);
    expect(again.rootfs).toEqual({ layersExtracted: 0, clones: 0 });
    expect(again.layers.map((l) => l.digest)).toEqual(first.layers.map((l) => l.digest));
    // The WORKDIR's layer is keyed like the others, so plan --explain can tell the RUN after it
    // and the COPY --from are cached too.
    const x = await cli(['plan', '--explain', '--json', '--config', join(ctx, 'oci-build.yml'), '--cache-dir', join(ctx, '.cache')], {
      env: { ...process.env, BASE: base, SOURCE_DATE_EPOCH: '1700000000' },
    });
    expect(x.code, x.stderr).toBe(0);
    const decisions = (JSON.parse(x.stdout).variants as { variant: string; layers: { step: number; decision: string }[] }[]).flatMap((v) =>
      v.layers.map((l) => `${v.variant}:${l.step} ${l.decision}`),
    );
    expect(decisions.sort()).toEqual(['src:1', 'src:2', 'app:1', 'app:2', 'df:1', 'df:2', 'df:3'].map((s) => `${s} cached`).sort());
  }, 300_000);

  it('a rebuilt source with the same copied file still hits by content; a changed file rebuilds the copy', async () => {
    // src's second layer changes (its chain, so the alias, misses); /out/bin.txt does not.
    writeFileSync(join(ctx, 'other.txt'), 'two\n');
    const r = await build();
    const app = r.layers.filter((l) => l.variant === 'app');
    expect(app.find((l) => l.createdBy.includes('copy --from=src'))?.origin).toBe('cached');
    expect(app.map((l) => l.digest)).toEqual(first.layers.filter((l) => l.variant === 'app').map((l) => l.digest));
    // df copies all of /out: other.txt changed, so its layer is rebuilt.
    expect(copies(r).find((l) => l.variant === 'df')?.origin).toBe('built');
    expect(r.rootfs.layersExtracted).toBeGreaterThan(0);
    // ...and recorded under the new chain's alias: the next no-op build extracts nothing again.
    const again = await build();
    expect(again.layers.filter((l) => l.origin === 'built')).toEqual([]);
    expect(again.rootfs).toEqual({ layersExtracted: 0, clones: 0 });
    writeFileSync(join(ctx, 'bin.txt'), 'another binary\n');
    const changed = await build();
    expect(copies(changed).map((l) => [l.variant, l.origin])).toEqual([
      ['app', 'built'],
      ['df', 'built'],
    ]);
  }, 300_000);
});
