import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { cli } from './helpers/cli.js';
import { run } from './helpers/exec.js';

/**
 * Issue 15, explain's limits: `plan --explain` lists a base's layers only when copy or file steps
 * need its files (run: steps are keyed by the manifest and config alone), and a `copy: from:`
 * layer is predicted from its source variant — cached when that variant comes whole from the
 * cache, else "depends on variant X's files" naming X's rebuilt layer — as the build then does.
 */

let reg: TestRegistry;
let ctx: string;
let base: string;
let baseLayerHex: string;
const env = () => ({ ...process.env, SOURCE_DATE_EPOCH: '1700000000' });

interface XLayer {
  step: number;
  decision: string;
  reasons: string[];
}
type Decisions = Record<string, string>;

async function explain(file: string, cache: string): Promise<{ layers: Record<string, XLayer>; decisions: Decisions }> {
  const r = await cli(['plan', '--explain', '--json', '--config', file, '--cache-dir', cache], { env: env() });
  expect(r.code, r.stderr).toBe(0);
  const x = JSON.parse(r.stdout) as { variants: { variant: string; layers: XLayer[] }[] };
  const layers: Record<string, XLayer> = {};
  const decisions: Decisions = {};
  for (const v of x.variants)
    for (const l of v.layers) {
      layers[`${v.variant}:${l.step}`] = l;
      decisions[`${v.variant}:${l.step}`] = l.decision === 'shared' ? 'rebuilt' : l.decision;
    }
  return { layers, decisions };
}

async function build(file: string, cache: string): Promise<Decisions> {
  const r = await cli(
    ['build', '--config', file, '--cache-dir', cache, '--push', '--verbose', '--provenance', 'false', '--sbom', 'false'],
    {
      env: env(),
    },
  );
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { layers: { variant: string; index: number; origin: string }[] };
  const inherited = new Map<string, number>();
  for (const l of out.layers)
    if (l.origin === 'base' || l.origin === 'from') inherited.set(l.variant, Math.max(inherited.get(l.variant) ?? 0, l.index + 1));
  const decisions: Decisions = {};
  for (const l of out.layers)
    if (l.origin !== 'base' && l.origin !== 'from')
      decisions[`${l.variant}:${l.index - (inherited.get(l.variant) ?? 0) + 1}`] = l.origin === 'cached' ? 'cached' : 'rebuilt';
  return decisions;
}

/** Whether any file under `dir` is named by `hex` (the blob store keeps blobs by digest). */
function holds(dir: string, hex: string): boolean {
  if (!existsSync(dir)) return false;
  return (readdirSync(dir, { recursive: true }) as string[]).some((p) => p.includes(hex));
}

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'explain/busybox')).single;
  const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${base}`])).stdout) as {
    layers: { digest: string }[];
  };
  baseLayerHex = manifest.layers[0]!.digest.slice('sha256:'.length);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-explain-limits-'));
  writeFileSync(join(ctx, 'input.txt'), 'robot\n');
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('plan --explain, its limits', () => {
  it("lists a base's layers only when copy or file steps need them", async () => {
    const runOnly = join(ctx, 'run-only.yml');
    writeFileSync(runOnly, `version: 1\nvariants:\n  a:\n    base: ${base}\n    steps:\n      - run: echo hi > /hi\n`);
    const withFile = join(ctx, 'with-file.yml');
    writeFileSync(withFile, `version: 1\nvariants:\n  a:\n    base: ${base}\n    steps:\n      - file: /etc/x\n        content: x\n`);
    const x = await explain(runOnly, join(ctx, 'c-run'));
    expect(x.decisions).toEqual({ 'a:1': 'rebuilt' });
    expect(holds(join(ctx, 'c-run'), baseLayerHex)).toBe(false);
    await explain(withFile, join(ctx, 'c-file'));
    expect(holds(join(ctx, 'c-file'), baseLayerHex)).toBe(true);
  });

  it('predicts a copy: from: layer from its source variant, and the build agrees', async () => {
    const file = join(ctx, 'oci-build.yml');
    const cache = join(ctx, 'c-copy');
    const text = (mode: string) => `version: 1
variants:
  gen:
    stage: true
    base: ${base}
    steps:
      - copy: input.txt
        to: /in/input.txt
      - run: busybox mkdir -p /out && busybox tr a-z A-Z < /in/input.txt > /out/upper.txt
        network: false
  app:
    base: scratch
    image: ${reg.host}/explain/app
    steps:
      - copy: /out/upper.txt
        from: gen
        to: /upper.txt${mode}
`;
    writeFileSync(file, text(''));
    await build(file, cache);
    // Nothing changed: the source comes whole from the cache, so does the copy.
    const same = await explain(file, cache);
    expect(same.decisions).toEqual({ 'gen:1': 'cached', 'gen:2': 'cached', 'app:1': 'cached' });
    expect(await build(file, cache)).toEqual(same.decisions);
    // The source's input changed: the copy depends on the source's rebuilt layer.
    writeFileSync(join(ctx, 'input.txt'), 'robot 2\n');
    const moved = await explain(file, cache);
    expect(moved.decisions).toEqual({ 'gen:1': 'rebuilt', 'gen:2': 'rebuilt', 'app:1': 'unknown' });
    expect(moved.layers['app:1']!.reasons).toEqual([
      "depends on variant gen's files: layer 2, gen step 1 (copy input.txt /in/input.txt), is rebuilt, so what this step copies is known only once it is built",
    ]);
    expect(await build(file, cache)).toEqual({ 'gen:1': 'rebuilt', 'gen:2': 'rebuilt', 'app:1': 'rebuilt' });
    // The copy's own option changed: rebuilt, and why.
    writeFileSync(file, text('\n        mode: "0600"'));
    const option = await explain(file, cache);
    expect(option.decisions).toEqual({ 'gen:1': 'cached', 'gen:2': 'cached', 'app:1': 'rebuilt' });
    expect(option.layers['app:1']!.reasons).toEqual(['step option mode: (default) -> 0600']);
    expect(await build(file, cache)).toEqual(option.decisions);
    expect(readFileSync(file, 'utf8')).toContain('mode: "0600"');
  });
});
