import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, chmodSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase, pushMultiArchBase, type BaseImages } from './helpers/base-image.js';
import { cli } from './helpers/cli.js';

/**
 * Issue 7: the layer cache rebuilds exactly the layers an input change affects. Each build's
 * --verbose result says, per layer, whether it was built or taken from the layer cache.
 */

let reg: TestRegistry;
let base: BaseImages;
let otherBase: string;
let ctx: string;
let cache: string;

interface Opts {
  owner?: string;
  run?: string;
  base?: string;
}

function buildFile(o: Opts = {}): string {
  return `version: 1
variants:
  app:
    base: ${o.base ?? base.single}
    steps:
      - copy: a.txt
        to: /opt/a.txt
      - copy: b.txt
        to: /opt/b.txt${o.owner ? `\n        owner: "${o.owner}"` : ''}
      - file: /etc/app.conf
        content: "x = 1"
      - run: ${o.run ?? 'cat /opt/a.txt /opt/b.txt > /opt/both.txt'}
`;
}

/** Builds and says, per step, whether its layer was built or reused. */
async function build(o: Opts = {}, extra: string[] = []): Promise<{ digest: string; layers: Record<string, 'built' | 'cached'> }> {
  writeFileSync(join(ctx, 'oci-build.yml'), buildFile(o));
  const r = await cli([
    'build',
    '--config',
    join(ctx, 'oci-build.yml'),
    '--output',
    `oci:${join(ctx, 'layout')}`,
    '--digest-map',
    join(ctx, 'map.json'),
    '--cache-dir',
    cache,
    '--verbose',
    ...extra,
  ]);
  expect(r.code, r.stderr).toBe(0);
  const report = JSON.parse(r.stdout) as { layers: { variant: string; createdBy: string; origin: string }[] };
  const layers: Record<string, 'built' | 'cached'> = {};
  for (const l of report.layers) {
    const step = /^oci-build (copy a\.txt|copy b\.txt|file \/etc\/app\.conf|run)(?: |$)/.exec(l.createdBy)?.[1];
    if (l.variant !== 'app' || !step) continue;
    expect(['built', 'cached'], `${step}: ${l.origin}`).toContain(l.origin);
    layers[step] = l.origin as 'built' | 'cached';
  }
  expect(Object.keys(layers).sort(), r.stderr).toEqual(['copy a.txt', 'copy b.txt', 'file /etc/app.conf', 'run'].sort());
  return { digest: JSON.parse(readFileSync(join(ctx, 'map.json'), 'utf8')).app.digest, layers };
}

const all = (how: 'built' | 'cached') => ({ 'copy a.txt': how, 'copy b.txt': how, 'file /etc/app.conf': how, run: how });

beforeAll(async () => {
  reg = await startRegistry();
  base = await pushBusyboxBase(reg.host);
  otherBase = await pushMultiArchBase(reg.host);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-cache-'));
  cache = join(ctx, 'cache');
  writeFileSync(join(ctx, 'a.txt'), 'a\n');
  writeFileSync(join(ctx, 'b.txt'), 'b\n');
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

/** Each test starts from the unchanged build file with a warm cache: its digest. */
async function baseline(): Promise<string> {
  return (await build()).digest;
}

describe('layer cache', () => {
  it('a first build builds every layer; an unchanged one reuses all, with the same digest', async () => {
    const a = await build();
    expect(a.layers).toEqual(all('built'));
    const first = a.digest;
    const b = await build();
    expect(b.layers).toEqual(all('cached'));
    expect(b.digest).toBe(first);
  });

  it('a changed file content rebuilds its layer and the run: step after it', async () => {
    const first = await baseline();
    writeFileSync(join(ctx, 'a.txt'), 'a changed\n');
    const r = await build();
    expect(r.layers).toEqual({ 'copy a.txt': 'built', 'copy b.txt': 'cached', 'file /etc/app.conf': 'cached', run: 'built' });
    expect(r.digest).not.toBe(first);
    writeFileSync(join(ctx, 'a.txt'), 'a\n');
    expect((await build()).digest).toBe(first); // back to the first content: all reused again
  });

  it('a changed file mode rebuilds its layer', async () => {
    await baseline();
    chmodSync(join(ctx, 'b.txt'), 0o755);
    const r = await build();
    expect(r.layers).toEqual({ 'copy a.txt': 'cached', 'copy b.txt': 'built', 'file /etc/app.conf': 'cached', run: 'built' });
    chmodSync(join(ctx, 'b.txt'), 0o644);
  });

  it('a changed step option (owner) rebuilds that layer', async () => {
    await baseline();
    const r = await build({ owner: '1000:1000' });
    expect(r.layers).toEqual({ 'copy a.txt': 'cached', 'copy b.txt': 'built', 'file /etc/app.conf': 'cached', run: 'built' });
  });

  it('a changed run: command rebuilds only the run: layer', async () => {
    await baseline();
    const r = await build({ run: 'cat /opt/b.txt /opt/a.txt > /opt/both.txt' });
    expect(r.layers).toEqual({ 'copy a.txt': 'cached', 'copy b.txt': 'cached', 'file /etc/app.conf': 'cached', run: 'built' });
  });

  it('another base image rebuilds the run: layer; copy layers that do not depend on it are reused', async () => {
    await baseline();
    const r = await build({ base: otherBase });
    expect(r.layers).toEqual({ 'copy a.txt': 'cached', 'copy b.txt': 'cached', 'file /etc/app.conf': 'cached', run: 'built' });
  });

  it('--no-cache builds everything again and gives the same digest', async () => {
    const first = await baseline();
    const r = await build({}, ['--no-cache']);
    expect(r.layers).toEqual(all('built'));
    expect(r.digest).toBe(first);
  });
});
