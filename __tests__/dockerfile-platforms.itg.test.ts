import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { pushBusyboxBase, pushMultiArchBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { ACTION, cli, parseGithubOutput, runNode } from './helpers/cli.js';
import { validateOci } from './helpers/oci-schema.js';

/**
 * Issue 13: one Dockerfile built for linux/amd64 and linux/arm64 (BuildKit's cross-compilation
 * pattern: a FROM --platform=$BUILDPLATFORM builder stage that reads TARGETOS/TARGETARCH, and a
 * final stage on a two-platform base) into one OCI index: from the CLI's -f, a build-file
 * variant and the action's drop-in inputs; compared with buildah; rebuilt as a no-op; refused
 * before any work where a RUN would need an emulator this machine does not have.
 */

let reg: TestRegistry;
let proxy: FaultProxy;
let busybox: string;
let multi: string;
let ctx: string;
let cache: string;

const DOCKERFILE = `ARG BUSYBOX
ARG BASE
FROM --platform=$BUILDPLATFORM \${BUSYBOX} AS build
ARG TARGETOS TARGETARCH
WORKDIR /out
RUN echo "$TARGETOS/$TARGETARCH" > /out/arch
FROM \${BASE}
ARG TARGETARCH
COPY --from=build /out/arch /opt/arch
COPY note.txt /opt/note.txt
ENV ARCH=$TARGETARCH
LABEL org.example.arch=$TARGETARCH
CMD ["cat", "/opt/arch"]
`;

beforeAll(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.host);
  busybox = (await pushBusyboxBase(reg.host, 'dfp/busybox')).single;
  multi = await pushMultiArchBase(reg.host, 'dfp/multi');
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-dfp-'));
  cache = join(ctx, 'cache');
  writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
  writeFileSync(join(ctx, 'note.txt'), 'the same on every platform\n');
  // A RUN in the final stage: arm64 would need an emulator (none is registered on the test machine).
  writeFileSync(join(ctx, 'Dockerfile.run'), `ARG BASE\nFROM \${BASE}\nCOPY note.txt /n\nRUN cat /n > /m\n`);
});

afterAll(async () => {
  await run('podman', ['rmi', '-f', `${proxy?.host}/dfp/app:v1`], { allowFail: true });
  await proxy?.close();
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

const buildArgs = () => ['--build-arg', `BUSYBOX=${busybox}`, '--build-arg', `BASE=${multi}`];

interface Built {
  code: number;
  stderr: string;
  map: Record<string, { digest: string; mediaType: string; platforms: Record<string, { digest: string }> }>;
  layers: { variant: string; platform: string; createdBy: string; origin: string }[];
}

async function dfBuild(repo: string, dockerfile = 'Dockerfile'): Promise<Built> {
  const mapFile = join(ctx, `${repo.replaceAll('/', '-')}.json`);
  const r = await cli([
    'build',
    '-f',
    join(ctx, dockerfile),
    '--platform',
    'linux/amd64,linux/arm64',
    ...buildArgs(),
    '-t',
    `${proxy.host}/${repo}:v1`,
    '--push',
    '--digest-map',
    mapFile,
    '--cache-dir',
    cache,
    '--verbose',
    ctx,
  ]);
  if (r.code !== 0) return { code: r.code, stderr: r.stderr, map: {}, layers: [] };
  return { code: 0, stderr: r.stderr, map: JSON.parse(readFileSync(mapFile, 'utf8')), layers: JSON.parse(r.stdout).layers };
}

let first: Promise<Built> | undefined;
/** The -f build of dfp/app, run once by whichever test needs it first. */
const firstBuild = () => {
  first ??= dfBuild('dfp/app');
  return first;
};

async function raw(ref: string): Promise<{ doc: Record<string, unknown> & { manifests: Manifest[] }; digest: string }> {
  const r = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return { doc: JSON.parse(r.stdout), digest: `sha256:${createHash('sha256').update(r.stdout).digest('hex')}` };
}
type Manifest = { digest: string; platform: { os: string; architecture: string; variant?: string } };

/** One platform of an index: its config and the content of `paths` read from its layers (skopeo copy to dir:). */
async function platformImage(ref: string, arch: string, paths: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'oci-build-dfp-arch-'));
  try {
    await run('skopeo', ['copy', '--src-tls-verify=false', '--override-arch', arch, `docker://${ref}`, `dir:${dir}`]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const config = JSON.parse(readFileSync(join(dir, manifest.config.digest.slice(7)), 'utf8'));
    const files: Record<string, string> = {};
    for (const l of manifest.layers as { digest: string }[]) {
      for (const p of paths) {
        const r = await run('tar', ['-xzOf', join(dir, l.digest.slice(7)), p.replace(/^\//, '')], { allowFail: true });
        if (r.code === 0) files[p] = r.stdout; // the topmost layer holding it wins
      }
    }
    return { config, files };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PLATFORMS = (doc: { manifests: Manifest[] }) => doc.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`);

describe('a Dockerfile for several platforms', () => {
  it('-f --platform linux/amd64,linux/arm64 pushes one index; the digest map entry is the index', async () => {
    const b = await firstBuild();
    expect(b.code, b.stderr).toBe(0);
    const [entry, ...more] = Object.values(b.map);
    expect(more).toEqual([]);
    expect(entry!.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(Object.keys(entry!.platforms)).toEqual(['linux/amd64', 'linux/arm64']);
    const index = await raw(`${reg.host}/dfp/app:v1`);
    expect(index.digest).toBe(entry!.digest);
    expect(validateOci('index', index.doc)).toEqual([]);
    expect(PLATFORMS(index.doc)).toEqual(['linux/amd64', 'linux/arm64']);
    expect(index.doc.manifests.map((m) => m.digest)).toEqual([
      entry!.platforms['linux/amd64']!.digest,
      entry!.platforms['linux/arm64']!.digest,
    ]);
  });

  it('each platform starts from its base entry and gets its own TARGETARCH in the copied file, ENV and LABEL', async () => {
    await firstBuild();
    for (const arch of ['amd64', 'arm64']) {
      const img = await platformImage(`${reg.host}/dfp/app:v1`, arch, ['/opt/arch', '/etc/base-arch', '/opt/note.txt']);
      expect(img.config.architecture).toBe(arch);
      expect(img.config.config.Env).toContain(`ARCH=${arch}`);
      expect(img.config.config.Labels['org.example.arch']).toBe(arch);
      expect(img.files).toEqual({
        '/opt/arch': `linux/${arch}\n`, // written by the build stage, which ran on this amd64 machine for each target
        '/etc/base-arch': `${arch}\n`,
        '/opt/note.txt': 'the same on every platform\n',
      });
    }
  });

  it('the build-platform stage ran once per target platform, on the build platform', async () => {
    const b = await firstBuild();
    const runs = b.layers.filter((l) => l.createdBy.startsWith('RUN ') && l.origin === 'built');
    expect(runs.map((l) => [l.variant, l.platform, /TARGETARCH=(\w+)/.exec(l.createdBy)?.[1]]).sort()).toEqual([
      ['build', 'linux/amd64', 'amd64'],
      ['build@linux-arm64', 'linux/amd64', 'arm64'],
    ]);
  });

  it('podman runs the amd64 image', async () => {
    await firstBuild();
    const out = await run('podman', ['run', '--rm', '--network', 'none', '--tls-verify=false', `${proxy.host}/dfp/app:v1`]);
    expect(out.stdout).toBe('linux/amd64\n');
  });

  it('rebuilding the same Dockerfile builds no layer and uploads no blob byte, with the same index', async () => {
    const b = await firstBuild();
    proxy.reset();
    const again = await dfBuild('dfp/app');
    expect(again.code, again.stderr).toBe(0);
    expect(again.layers.filter((l) => !['cached', 'base', 'from', 'shared'].includes(l.origin))).toEqual([]);
    expect(again.layers.some((l) => l.origin === 'cached')).toBe(true);
    const uploads = proxy.requests.filter((r) => r.path.includes('/blobs/uploads/'));
    expect(uploads.reduce((n, r) => n + r.requestBytes, 0)).toBe(0);
    expect(Object.values(again.map)[0]!.digest).toBe(Object.values(b.map)[0]!.digest);
  });

  it('buildah bud --platform on the same Dockerfile gives the same files and config per platform', async () => {
    await firstBuild();
    const list = `localhost/oci-build-dfp-${process.pid}`;
    const bud = await run(
      'buildah',
      [
        'bud',
        '--quiet',
        '--tls-verify=false',
        '--format',
        'oci',
        '--platform',
        'linux/amd64,linux/arm64',
        '--manifest',
        list,
        ...buildArgs(),
        '-f',
        join(ctx, 'Dockerfile'),
        ctx,
      ],
      { timeoutMs: 240_000, allowFail: true },
    );
    try {
      expect(bud.code, bud.stderr).toBe(0);
      await run('buildah', [
        'manifest',
        'push',
        '--all',
        '--format',
        'oci',
        '--tls-verify=false',
        list,
        `docker://${reg.host}/dfp/buildah:v1`,
      ]);
    } finally {
      await run('buildah', ['manifest', 'rm', list], { allowFail: true });
    }
    expect(PLATFORMS((await raw(`${reg.host}/dfp/buildah:v1`)).doc).sort()).toEqual(['linux/amd64', 'linux/arm64']);
    for (const arch of ['amd64', 'arm64']) {
      const paths = ['/opt/arch', '/etc/base-arch', '/opt/note.txt'];
      const ours = await platformImage(`${reg.host}/dfp/app:v1`, arch, paths);
      const theirs = await platformImage(`${reg.host}/dfp/buildah:v1`, arch, paths);
      expect(ours.files).toEqual(theirs.files);
      expect(ours.config.architecture).toBe(theirs.config.architecture);
      expect(ours.config.config.Env).toEqual(theirs.config.config.Env);
      expect(ours.config.config.Labels['org.example.arch']).toBe(theirs.config.config.Labels['org.example.arch']);
    }
  });

  it('a build-file variant with dockerfile: and platforms: gives the same per-platform manifests; one without platforms takes the run’s', async () => {
    const b = await firstBuild();
    const dir = join(ctx, 'bf');
    mkdirSync(dir, { recursive: true });
    const args = `{ BUSYBOX: "${busybox}", BASE: "${multi}" }`;
    writeFileSync(
      join(dir, 'oci-build.yml'),
      [
        'version: 1',
        'variants:',
        '  app:',
        `    image: ${proxy.host}/dfp/variant`,
        '    dockerfile: ../Dockerfile',
        `    args: ${args}`,
        '    platforms: [linux/amd64, linux/arm64]',
        '  plain:',
        `    image: ${proxy.host}/dfp/plain`,
        '    dockerfile: ../Dockerfile',
        `    args: ${args}`,
      ].join('\n'),
    );
    const build = async (extra: string[]) => {
      const r = await cli([
        'build',
        '--config',
        join(dir, 'oci-build.yml'),
        '--push',
        '--tag',
        'v1',
        '--digest-map',
        join(dir, 'map.json'),
        '--cache-dir',
        cache,
        ...extra,
      ]);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(readFileSync(join(dir, 'map.json'), 'utf8')) as Built['map'];
    };
    const map = await build([]);
    const fromF = Object.values(b.map)[0]!;
    expect(map.app!.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(map.app!.platforms).toEqual(fromF.platforms); // the same Dockerfile: the same manifests as -f built
    // No platforms and none asked for: this machine's platform, one manifest.
    expect(map.plain!.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    const asked = await build(['--variant', 'plain', '--platform', 'linux/amd64,linux/arm64']);
    expect(asked.plain!.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(asked.plain!.platforms).toEqual(fromF.platforms);
  });

  it('the action’s drop-in inputs with platforms: push the index and output its digest', async () => {
    const b = await firstBuild();
    const out = join(ctx, 'github-output');
    writeFileSync(out, '');
    const r = await runNode(ACTION, [], {
      cwd: ctx,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        RUNNER_TEMP: join(ctx, 'runner-temp'),
        GITHUB_OUTPUT: out,
        GITHUB_WORKSPACE: ctx,
        SOURCE_DATE_EPOCH: '0',
        INPUT_SUMMARY: 'false',
        INPUT_CACHE: 'false',
        INPUT_PROVENANCE: 'false',
        INPUT_SBOM: 'false',
        INPUT_CONTEXT: '.',
        INPUT_FILE: 'Dockerfile',
        'INPUT_BUILD-ARGS': `BUSYBOX=${busybox}\nBASE=${multi}`,
        INPUT_PLATFORMS: 'linux/amd64,linux/arm64',
        INPUT_TAGS: `${proxy.host}/dfp/action:v1`,
        INPUT_PUSH: 'true',
      },
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const outputs = parseGithubOutput(readFileSync(out, 'utf8'));
    const index = await raw(`${reg.host}/dfp/action:v1`);
    expect(outputs.digest).toBe(index.digest);
    expect(PLATFORMS(index.doc)).toEqual(['linux/amd64', 'linux/arm64']);
    // Outside GitHub no labels are added: the manifests are the ones -f built.
    expect(index.doc.manifests.map((m) => m.digest)).toEqual(Object.values(Object.values(b.map)[0]!.platforms).map((p) => p.digest));
  });

  it('a RUN in a stage built for a platform this machine cannot execute fails before any work, naming the line and the fix', async () => {
    proxy.reset();
    const b = await dfBuild('dfp/foreign', 'Dockerfile.run');
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(
      /Dockerfile\.run:4:1: RUN: "cat \/n > \/m" runs in a stage built for linux\/arm64, which this linux\/amd64 machine cannot execute/,
    );
    expect(b.stderr).toMatch(/setup-qemu-action.*qemu-user-static.*FROM --platform=\$BUILDPLATFORM/);
    expect(proxy.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
    const tags = await fetch(`${reg.url}/v2/dfp/foreign/tags/list`);
    expect(tags.status).toBe(404);
  });
});
