import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { cli, ROOT } from './helpers/cli.js';
import { run } from './helpers/exec.js';
import { imageView } from './helpers/image-tree.js';
import { buildahView } from './helpers/buildah-view.js';

/**
 * Issue 15: examples/robot — an app directory and a Go runtime binary (built with Debian's
 * golang-go) packed onto a base (--base VARIANT=REF), pushed, saved as a docker-archive tarball,
 * run with podman; then exported as a Dockerfile, built by `buildah bud` in the build file's
 * directory and by our own Dockerfile front end, and compared file by file and config by config.
 */

let reg: TestRegistry;
let ctx: string;
let base: string;
const env = () => ({ ...process.env, REGISTRY: reg.host, SOURCE_DATE_EPOCH: '1700000000' });
const bases = () => ['--base', `robot=${base}`, '--base', `maps=${base}`];
const noAttest = ['--provenance', 'false', '--sbom', 'false'];

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'robot/busybox')).single;
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-robot-'));
  cpSync(resolve(ROOT, 'examples/robot'), ctx, { recursive: true, verbatimSymlinks: true });
  rmSync(join(ctx, 'bin'), { recursive: true, force: true });
  rmSync(join(ctx, '.oci-build'), { recursive: true, force: true });
  await run('go', ['build', '-trimpath', '-ldflags=-buildid=', '-o', join(ctx, 'bin/robotd'), '.'], {
    cwd: join(ctx, 'robotd'),
    env: { ...process.env, CGO_ENABLED: '0' },
    timeoutMs: 240_000,
  });
}, 300_000);

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

const ROBOT_OUT = ['robotd r2: uid 1000, home /opt/robot', 'behaviors: dock.txt, patrol.txt'];

describe('examples/robot', () => {
  let digests: Record<string, { ref: string; digest: string }>;

  it('builds the app and the runtime onto the base, pushes, saves a tarball, and runs with podman', async () => {
    const tar = join(ctx, 'robot.tar');
    const r = await cli(
      [
        'build',
        '--config',
        join(ctx, 'oci-build.yml'),
        ...bases(),
        '--push',
        '--tag',
        'v1',
        '--output',
        `docker-archive:${tar}`,
        ...noAttest,
      ],
      { env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    digests = JSON.parse(r.stdout);
    expect(Object.keys(digests).sort()).toEqual(['robot', 'robot-debug']);
    await run('podman', ['pull', '--tls-verify=false', digests.robot!.ref]);
    const out = await run('podman', ['run', '--rm', '--network', 'none', digests.robot!.ref]);
    expect(out.stdout.trim().split('\n')).toEqual(ROBOT_OUT);
    const files = await run('podman', [
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      '/bin/sh',
      digests.robot!.ref,
      '-c',
      'cat /var/lib/robot/calibration /opt/robot/app/maps.sha256; busybox stat -c "%u:%g %a %n" /opt/robot/bin/robotd /opt/robot/app/robot.json /etc/robot/robot.conf',
    ]); // prettier-ignore
    expect(files.stdout.trim().split('\n')).toEqual([
      'calibrated as 1000 in /var/lib/robot',
      'mode factory',
      expect.stringMatching(/^[0-9a-f]{64} {2}maps\/floor1\.map$/),
      expect.stringMatching(/^[0-9a-f]{64} {2}maps\/floor2\.map$/),
      '0:0 755 /opt/robot/bin/robotd',
      '1000:1000 644 /opt/robot/app/robot.json',
      '0:0 644 /etc/robot/robot.conf',
    ]);
    // The tarball: both images, named by their tags, for podman load / docker load.
    const loaded = await run('podman', ['load', '-i', tar]);
    expect(loaded.stdout).toContain(`${reg.host}/robot-debug:v1`);
    const debug = await run('podman', ['run', '--rm', '--network', 'none', `${reg.host}/robot-debug:v1`]);
    expect(debug.stdout.trim().split('\n')).toEqual([...ROBOT_OUT, 'debug: ROBOT_DEBUG=1']);
    const inspected = JSON.parse((await run('skopeo', ['inspect', `docker-archive:${tar}:${reg.host}/robot:v1`])).stdout) as {
      Digest: string;
    };
    expect(inspected.Digest).toMatch(/^sha256:/);
  });

  it('exports a Dockerfile that buildah builds to the same files and config', async () => {
    const dockerfile = join(ctx, 'Dockerfile');
    const r = await cli(['dockerfile', '--config', join(ctx, 'oci-build.yml'), ...bases(), '-o', dockerfile], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`wrote 2 file(s) under ${join(ctx, '.oci-build/export')}/`);
    expect(readFileSync(join(ctx, '.oci-build/export/robot/step-4'), 'utf8')).toBe('name = r2\nspeed = 3\n');
    const text = readFileSync(dockerfile, 'utf8');
    expect(text).not.toContain('<<');
    for (const target of ['robot', 'robot-debug']) {
      const theirs = await buildahView(ctx, 'Dockerfile', target, `${reg.host}/robot-buildah/${target}:v1`);
      const ours = await imageView(`${reg.host}/${target}:v1`);
      expect(theirs.tree).toEqual(ours.tree);
      expect(theirs.config).toEqual(ours.config);
    }
  });

  it('builds the exported Dockerfile with our own Dockerfile front end to the same tree', async () => {
    expect(existsSync(join(ctx, 'Dockerfile'))).toBe(true);
    const r = await cli(
      ['build', '-f', join(ctx, 'Dockerfile'), '--target', 'robot', '-t', `${reg.host}/robot-roundtrip:v1`, '--push', ...noAttest, ctx],
      { env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    const again = await imageView(`${reg.host}/robot-roundtrip:v1`);
    const ours = await imageView(`${reg.host}/robot:v1`);
    expect(again.tree).toEqual(ours.tree);
    expect(again.config).toEqual(ours.config);
  });

  it('refuses what a Dockerfile cannot say, naming the step', async () => {
    const bad = join(ctx, 'bad.yml');
    for (const arch of ['amd64', 'arm64']) cpSync(join(ctx, 'bin/robotd'), join(ctx, `bin/robotd-${arch}`));
    writeFileSync(
      bad,
      'version: 1\nvariants:\n  arm:\n    base: scratch\n    platforms: [linux/amd64, linux/arm64]\n    steps:\n      - copy: bin/robotd-${arch}\n        to: /robotd\n',
    );
    const r = await cli(['dockerfile', '--config', bad], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yml:7: variant arm step 1 \(copy .*\): a source per platform/);
  });
});
