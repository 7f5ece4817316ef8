import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadDockerfile, type LoadedDockerfile } from '../src/dockerfile/index.js';
import { expandDockerfileVariants } from '../src/dockerfile/variants.js';
import { loadModel } from '../src/config/frontend.js';
import { specFor } from '../src/config/per-platform.js';
import { ConfigError, type CopyStep, type RunStep, type VariantSpec } from '../src/config/model.js';
import type { ContainerConfig, Platform } from '../src/oci/types.js';
import { formatPlatform } from '../src/oci/platform.js';

/** One Dockerfile for several target platforms: per-platform conversion, joined into one model (no registry). */

const dirs: string[] = [];
const loaded: LoadedDockerfile[] = [];
afterEach(async () => {
  for (const l of loaded.splice(0)) await l.dispose();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const amd64: Platform = { os: 'linux', architecture: 'amd64' };
const arm64: Platform = { os: 'linux', architecture: 'arm64' };
const seen: string[] = [];
/** Each platform's base config differs, so a wrong platform's lookup shows in the result. */
const imageConfig = async (ref: string, p: Platform): Promise<ContainerConfig> => {
  seen.push(`${ref}|${formatPlatform(p)}`);
  return { Env: [`PATH=/bin`, `BASE_ARCH=${p.architecture}`] };
};

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'df-platforms-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

async function load(
  dockerfile: string,
  platforms: Platform[],
  opts: { files?: Record<string, string>; canRun?: (p: Platform) => boolean } = {},
) {
  const dir = project({ Dockerfile: dockerfile, ...opts.files });
  seen.length = 0;
  const l = await loadDockerfile({
    file: join(dir, 'Dockerfile'),
    context: dir,
    buildArgs: {},
    platforms,
    buildPlatform: amd64,
    imageConfig,
    canRun: opts.canRun ?? (() => true),
  });
  loaded.push(l);
  const v = (name: string): VariantSpec => {
    const found = l.buildFile.variants.find((x) => x.name === name);
    if (!found) throw new Error(`no variant ${name} in ${l.buildFile.variants.map((x) => x.name).join(', ')}`);
    return found;
  };
  return { ...l, dir, v, names: () => l.buildFile.variants.map((x) => x.name).sort() };
}

const CROSS = [
  'FROM --platform=$BUILDPLATFORM busybox AS build',
  'ARG TARGETOS TARGETARCH',
  'RUN mkdir -p /out && echo "$TARGETOS/$TARGETARCH" > /out/arch',
  'FROM base',
  'ARG TARGETARCH',
  'COPY --from=build /out/arch /arch',
  'ENV ARCH=$TARGETARCH',
  'LABEL arch=$TARGETARCH',
].join('\n');

describe('Dockerfile for several platforms', () => {
  it('converts once per platform: TARGETARCH differs in ENV, LABEL and RUN; the build stage runs on the build platform once per target', async () => {
    const l = await load(CROSS, [amd64, arm64]);
    // The build stage uses TARGETARCH: one instance per target platform, both on the build platform.
    expect(l.names()).toEqual(['build', 'build@linux-arm64', 'stage-1']);
    const build = l.v('build');
    const buildArm = l.v('build@linux-arm64');
    expect([build.fixedPlatform, buildArm.fixedPlatform]).toEqual(['linux/amd64', 'linux/amd64']);
    expect((build.steps[0] as RunStep).env).toEqual({ TARGETOS: 'linux', TARGETARCH: 'amd64' });
    expect((buildArm.steps[0] as RunStep).env).toEqual({ TARGETOS: 'linux', TARGETARCH: 'arm64' });
    // The base of a build-platform stage is looked up for the build platform only.
    expect(seen.filter((s) => s.startsWith('busybox'))).toEqual(['busybox|linux/amd64', 'busybox|linux/amd64']);

    const target = l.v('stage-1');
    expect(l.target).toBe('stage-1');
    expect(target.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(target.fixedPlatform).toBeUndefined();
    const forAmd = specFor(target, 'linux/amd64');
    const forArm = specFor(target, 'linux/arm64');
    expect([forAmd.env, forArm.env]).toEqual([{ ARCH: 'amd64' }, { ARCH: 'arm64' }]);
    expect([forAmd.labels, forArm.labels]).toEqual([{ arch: 'amd64' }, { arch: 'arm64' }]);
    // Each platform copies from its own instance of the build stage.
    expect([(forAmd.steps[0] as CopyStep).from, (forArm.steps[0] as CopyStep).from]).toEqual(['build', 'build@linux-arm64']);
    // Only what differs is per platform: amd64 is the variant's own definition.
    expect(Object.keys(target.perPlatform ?? {})).toEqual(['linux/arm64']);
  });

  it('builds a build-platform stage that reads no TARGET* arg once for every target', async () => {
    const l = await load(
      ['FROM --platform=$BUILDPLATFORM busybox AS build', 'RUN echo hi > /hi', 'FROM base', 'COPY --from=build /hi /hi'].join('\n'),
      [amd64, arm64],
    );
    expect(l.names()).toEqual(['build', 'stage-1']);
    expect(l.v('build').fixedPlatform).toBe('linux/amd64');
    expect(l.v('stage-1').perPlatform).toBeUndefined();
    expect(l.v('stage-1').platforms).toEqual(['linux/amd64', 'linux/arm64']);
  });

  it('FROM --platform=literal fixes the stage (and stages FROM it) to that platform', async () => {
    const l = await load(
      [
        'FROM --platform=linux/arm64 base AS armfiles',
        'COPY a /a',
        'FROM armfiles AS more',
        'COPY a /b',
        'FROM base',
        'COPY --from=more /b /b',
      ].join('\n'),
      [amd64, arm64],
      { files: { a: 'x' } },
    );
    expect(l.v('armfiles').fixedPlatform).toBe('linux/arm64');
    expect(l.v('more').fixedPlatform).toBe('linux/arm64');
    expect(seen.filter((s) => s === 'base|linux/arm64').length).toBeGreaterThan(0);
  });

  it('FROM stage-$TARGETARCH picks a different stage per platform; each stage is built for the platforms that need it', async () => {
    const l = await load(
      [
        'FROM base AS base-amd64',
        'ENV K=a',
        'FROM base AS base-arm64',
        'ENV K=b',
        'ARG TARGETARCH',
        'FROM base-$TARGETARCH',
        'RUN true',
      ].join('\n'),
      [amd64, arm64],
    );
    expect(l.v('base-amd64').platforms).toEqual(['linux/amd64']);
    expect(l.v('base-arm64').platforms).toEqual(['linux/arm64']);
    const target = l.v('stage-2');
    expect([specFor(target, 'linux/amd64').from, specFor(target, 'linux/arm64').from]).toEqual(['base-amd64', 'base-arm64']);
  });

  it('keeps the single-platform model as it was: no platforms, no fixed platform when FROM --platform names the platform built', async () => {
    const l = await load(CROSS, [amd64]);
    expect(l.names()).toEqual(['build', 'stage-1']);
    expect(l.v('build').fixedPlatform).toBeUndefined();
    expect(l.v('stage-1').platforms).toBeUndefined();
    expect(l.v('stage-1').perPlatform).toBeUndefined();
  });

  it('a RUN in a stage built for a platform this machine cannot run is refused at its line, naming the platform and the fix', async () => {
    const err = await load(['FROM base', 'COPY a /a', 'RUN make'].join('\n'), [amd64, arm64], {
      files: { a: 'x' },
      canRun: (p) => p.architecture === 'amd64',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(1); // once, though two platforms were converted
    expect(problems[0]).toMatchObject({ line: 3, column: 1 });
    expect(problems[0]!.message).toMatch(/^RUN: "make" runs in a stage built for linux\/arm64, which this .* machine cannot execute/);
    expect(problems[0]!.hint).toMatch(/setup-qemu-action.*qemu-user-static.*FROM --platform=\$BUILDPLATFORM/);
  });

  it('a RUN in a build-platform stage needs no emulator', async () => {
    const l = await load(CROSS, [amd64, arm64], { canRun: (p) => p.architecture === 'amd64' });
    expect(l.names()).toContain('build@linux-arm64');
  });

  it('FROM --platform=$TARGETPLATFORM is an ordinary stage of each platform (the last stage may have it)', async () => {
    const l = await load('FROM --platform=$TARGETPLATFORM base\nARG TARGETARCH\nENV A=$TARGETARCH\n', [amd64, arm64]);
    const target = l.v('stage-0');
    expect(target.fixedPlatform).toBeUndefined();
    expect(target.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(specFor(target, 'linux/arm64').env).toEqual({ A: 'arm64' });
    expect(seen).toEqual(['base|linux/amd64', 'base|linux/arm64']);
  });

  it('refuses a target stage fixed to one platform when several are built', async () => {
    const err = await load('FROM --platform=$BUILDPLATFORM base\nCOPY a /a\n', [amd64, arm64], { files: { a: 'x' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems[0]).toMatchObject({
      line: 1,
      message: expect.stringMatching(/^FROM: the target stage is built for linux\/amd64/),
    });
  });

  it('a build-file Dockerfile variant with platforms converts for each of them (or those the run asks for)', async () => {
    const dir = project({
      'oci-build.yml': [
        'version: 1',
        'variants:',
        '  app:',
        '    dockerfile: Dockerfile',
        '    platforms: [linux/amd64, linux/arm64]',
      ].join('\n'),
      Dockerfile: 'FROM scratch\nARG TARGETARCH\nENV ARCH=$TARGETARCH\n',
    });
    const bf = await loadModel(join(dir, 'oci-build.yml'), { env: {} });
    const both = await expandDockerfileVariants(bf, { platforms: [], credentials: {}, dockerConfig: false });
    const app = both.variants.find((v) => v.name === 'app')!;
    expect(app.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect([specFor(app, 'linux/amd64').env.ARCH, specFor(app, 'linux/arm64').env.ARCH]).toEqual(['amd64', 'arm64']);
    const one = await expandDockerfileVariants(bf, { platforms: ['linux/arm64'], credentials: {}, dockerConfig: false });
    const armOnly = one.variants.find((v) => v.name === 'app')!;
    expect(armOnly.env.ARCH).toBe('arm64');
    expect(armOnly.perPlatform).toBeUndefined();
  });
});
