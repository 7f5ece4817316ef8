import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase, pushMultiArchBase } from './helpers/base-image.js';
import { cli, ROOT } from './helpers/cli.js';
import { run } from './helpers/exec.js';

/**
 * Issue 15: examples/habitat (a phased dev environment of stages chained with from:) built,
 * pushed and run with podman; `plan --explain --json` before each build, and the build's own
 * layer report must agree with it, layer by layer: nothing changed, a source file, a step
 * option, a run: command, the base moving to another digest, --rebuild-from, --target.
 */

let reg: TestRegistry;
let ctx: string;
let cache: string;
let baseRef: string;
let moved: string;
const PHASES = ['base', 'users', 'env', 'tools', 'repos', 'files', 'scripts', 'final'];

interface XLayer {
  step: number;
  layer: number;
  decision: string;
  reasons: string[];
  changes: { field: string }[];
}
interface XVariant {
  variant: string;
  inheritedLayers: number;
  start: { base?: string; digest?: string; overridden?: string };
  layers: XLayer[];
}
type Decisions = Record<string, string>; // "variant:step" -> cached | rebuilt

const env = () => ({ ...process.env, REGISTRY: reg.host, SOURCE_DATE_EPOCH: '1700000000' });
// --base REF alone: `base` is the one variant with a base image.
const common = () => ['--config', join(ctx, 'oci-build.yml'), '--cache-dir', cache, '--base', baseRef];

async function explain(extra: string[] = []): Promise<{ variants: XVariant[]; decisions: Decisions }> {
  const r = await cli(['plan', '--explain', '--json', ...common(), ...extra], { env: env() });
  expect(r.code, r.stderr).toBe(0);
  const x = JSON.parse(r.stdout) as { variants: XVariant[] };
  const decisions: Decisions = {};
  for (const v of x.variants)
    for (const l of v.layers) decisions[`${v.variant}:${l.step}`] = l.decision === 'shared' ? 'rebuilt' : l.decision;
  return { variants: x.variants, decisions };
}

/** Builds and pushes; returns the final digest and, per variant and step, cached or rebuilt from the layer report. */
async function build(extra: string[] = []): Promise<{ digest: string; decisions: Decisions }> {
  const r = await cli(
    ['build', ...common(), '--push', '--tag', 'latest', '--verbose', '--provenance', 'false', '--sbom', 'false', ...extra],
    { env: env() },
  );
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as {
    digestMap: Record<string, { digest: string }>;
    layers: { variant: string; index: number; origin: string }[];
  };
  const inherited = new Map<string, number>();
  for (const l of out.layers)
    if (l.origin === 'base' || l.origin === 'from') inherited.set(l.variant, Math.max(inherited.get(l.variant) ?? 0, l.index + 1));
  const decisions: Decisions = {};
  for (const l of out.layers) {
    if (l.origin === 'base' || l.origin === 'from') continue;
    decisions[`${l.variant}:${l.index - (inherited.get(l.variant) ?? 0) + 1}`] = l.origin === 'cached' ? 'cached' : 'rebuilt';
  }
  return { digest: out.digestMap.final!.digest, decisions };
}

/** Explains, builds, and checks the two agree; returns both. */
async function explainThenBuild(extra: string[] = []) {
  const x = await explain(extra);
  const b = await build(extra);
  expect(b.decisions).toEqual(x.decisions);
  return { x, b };
}

const layerOf = (x: { variants: XVariant[] }, variant: string, step = 1) =>
  x.variants.find((v) => v.variant === variant)!.layers.find((l) => l.step === step)!;
const rebuilt = (d: Decisions) =>
  Object.entries(d)
    .filter(([, how]) => how !== 'cached')
    .map(([k]) => k)
    .sort();

beforeAll(async () => {
  reg = await startRegistry();
  const images = await pushBusyboxBase(reg.host, 'habitat/busybox');
  baseRef = `${reg.host}/habitat/base:current`;
  await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${images.single}`, `docker://${baseRef}`]);
  moved = await pushMultiArchBase(reg.host, 'habitat/other');
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-habitat-'));
  cpSync(resolve(ROOT, 'examples/habitat'), ctx, { recursive: true });
  cache = join(ctx, '.cache');
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('examples/habitat with plan --explain', () => {
  let first: string;

  it('builds cold as explained, pushes, and runs as the non-root user with its files', async () => {
    const { x, b } = await explainThenBuild();
    expect(Object.values(x.decisions).every((d) => d === 'rebuilt')).toBe(true);
    expect(layerOf(x, 'files').reasons).toEqual(['no earlier build of this step is recorded in the cache directory']);
    expect(x.variants.map((v) => v.variant)).toEqual(PHASES);
    // --base is visible in the explanation, next to what the build file says.
    expect(x.variants[0]!.start).toMatchObject({ base: baseRef, overridden: 'docker.io/library/busybox:1.36.1' });
    first = b.digest;
    const image = `${reg.host}/habitat@${first}`;
    await run('podman', ['pull', '--tls-verify=false', image]);
    const out = await run('podman', ['run', '--rm', '--network', 'none', image]);
    expect(out.stdout.trim().split('\n')).toEqual([
      'habitat: dev in /home/dev, HABITAT=1',
      'setup ran as dev (1100)',
      'profile owner: dev',
      'repos: demo repository',
    ]);
    const owners = await run('podman', [
      'run',
      '--rm',
      '--network',
      'none',
      image,
      '/bin/sh',
      '-c',
      'busybox stat -c "%u:%g %a %n" /home/dev /home/dev/.profile /home/dev/bin/setup.sh /home/dev/repos/demo/README /usr/local/bin/hello-habitat',
    ]);
    expect(owners.stdout.trim().split('\n')).toEqual([
      '1100:1100 750 /home/dev',
      '1100:1100 644 /home/dev/.profile',
      '1100:1100 755 /home/dev/bin/setup.sh',
      '1100:1100 644 /home/dev/repos/demo/README',
      '0:0 755 /usr/local/bin/hello-habitat',
    ]);
  });

  it('explains an unchanged build as all cached, and the build reuses everything', async () => {
    const { x, b } = await explainThenBuild();
    expect(rebuilt(x.decisions)).toEqual([]);
    expect(b.digest).toBe(first);
  });

  it('names the source file that changed', async () => {
    writeFileSync(join(ctx, 'dotfiles/.profile'), `${readFileSync(join(ctx, 'dotfiles/.profile'), 'utf8')}export LANG=C.UTF-8\n`);
    const { x } = await explainThenBuild();
    // The dotfiles' layer, and the setup script's run: step on top of it (its parent chain moved).
    expect(rebuilt(x.decisions)).toEqual(['files:1', 'scripts:2']);
    expect(layerOf(x, 'files').reasons).toEqual(['dotfiles/.profile (/home/dev/.profile) changed']);
    expect(layerOf(x, 'scripts', 2).reasons).toEqual([
      'layer 7, files step 1 (copy dotfiles/ /home/dev/), is rebuilt, so this command starts from another file system',
    ]);
  });

  it('names the step option that changed', async () => {
    const file = join(ctx, 'oci-build.yml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(
        '        to: /usr/local/bin/\n        mode: "0755"',
        '        to: /usr/local/bin/\n        mode: "0750"',
      ),
    );
    const { x } = await explainThenBuild();
    expect(rebuilt(x.decisions)).toEqual(['repos:1', 'scripts:2', 'tools:1']);
    expect(layerOf(x, 'tools').reasons).toEqual(
      expect.arrayContaining(['step option mode: 493 -> 488', 'mode of /usr/local/bin/hello-habitat: 0755 -> 0750']),
    );
    expect(layerOf(x, 'repos').reasons).toEqual([
      'layer 5, tools step 1 (copy tools/ /usr/local/bin/), is rebuilt, so this command starts from another file system',
    ]);
  });

  it('rebuilds a changed run: command and the commands after it', async () => {
    const file = join(ctx, 'oci-build.yml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('echo "demo repository"', 'echo "demo repository, v2"'));
    const { x } = await explainThenBuild();
    expect(rebuilt(x.decisions)).toEqual(['repos:1', 'scripts:2']);
    expect(layerOf(x, 'repos').changes.map((c) => c.field)).toEqual(['step.command']);
    expect(layerOf(x, 'scripts', 2).reasons[0]).toMatch(/starts from another file system/);
  });

  it('says when the base moved to another digest', async () => {
    const before = (await explain()).variants[0]!.start.digest;
    await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${moved}`, `docker://${baseRef}`]);
    const { x } = await explainThenBuild();
    const now = x.variants[0]!.start.digest;
    expect(now).not.toBe(before);
    // Copy and file layers do not depend on the base (but for the directories they create); commands do.
    expect(rebuilt(x.decisions)).toEqual(['repos:1', 'scripts:2', 'users:1']);
    expect(layerOf(x, 'users').reasons).toEqual([`base image ${baseRef} moved: ${before} -> ${now}`]);
  });

  it('--rebuild-from ignores the cache from that phase on, as explained, and gives the same image', async () => {
    const cachedBuild = await build();
    const { x, b } = await explainThenBuild(['--rebuild-from', 'files']);
    expect(rebuilt(x.decisions)).toEqual(['files:1', 'scripts:1', 'scripts:2']);
    expect(b.digest).toBe(cachedBuild.digest);
    const step = await explainThenBuild(['--rebuild-from', 'scripts:2']);
    expect(rebuilt(step.x.decisions)).toEqual(['scripts:2']);
  });

  it('--target stops after a phase and writes that stage to the outputs', async () => {
    const layout = join(ctx, 'tools-layout');
    const r = await cli(
      ['build', ...common(), '--target', 'tools', '--output', `oci:${layout}`, '--verbose', '--provenance', 'false', '--sbom', 'false'],
      { env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { digestMap: Record<string, unknown>; layers: { variant: string }[] };
    expect(Object.keys(out.digestMap)).toEqual(['tools']);
    expect([...new Set(out.layers.map((l) => l.variant))]).toEqual(['base', 'users', 'env', 'tools']);
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toEqual(['tools']);
  });
});
