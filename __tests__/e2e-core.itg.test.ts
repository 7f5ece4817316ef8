import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, existsSync, chmodSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli, runNode, ACTION, parseGithubOutput } from './helpers/cli.js';
import { validateOci } from './helpers/oci-schema.js';

/**
 * Issue 2's end-to-end checks: three variants (two on a busybox base the test pushes as an
 * OCI index and as a Docker manifest list, one `from:` another) built by the bundled CLI,
 * pushed to the real registry, inspected with skopeo, run with podman.
 */

let reg: TestRegistry;
let ctx: string;
let cache: string;
const podmanRefs: string[] = [];

const HELLO = `#!/bin/sh
echo "variant=$VARIANT suite=$SUITE args=$* uid=$(id -u) gid=$(id -g) pwd=$(pwd)"
cat /etc/app/motd
ls /opt/app/scenarios
`;

function buildFile(): string {
  return `version: 1
args:
  REG: ${reg.host}
  GREETING: hello
defaults:
  labels:
    org.example.suite: e2e
  env:
    SUITE: e2e
variants:
  alpha:
    image: \${REG}/e2e/alpha
    base: \${REG}/base/busybox:oci-index
    steps:
      - copy: bin/hello.sh
        to: /usr/local/bin/hello
        mode: "0755"
      - copy: scenarios
        to: /opt/app/scenarios
        owner: app
      - copy: conf/*.conf
        to: /etc/app/
      - file: /etc/app/motd
        content: "\${GREETING} from \${variant}\\n"
        mode: "0640"
        owner: "1000:staff"
      - copy: data.txt
        to: /data/through-symlink.txt
    entrypoint: [/usr/local/bin/hello]
    cmd: [alpha-arg]
    env:
      VARIANT: alpha
    user: "1000"
    workdir: /opt/app
    labels:
      org.example.variant: alpha
    expose: [8080]
  beta:
    image: \${REG}/e2e/beta
    base: \${REG}/base/busybox:docker-list
    steps:
      - copy: bin/hello-exec.sh
        to: /usr/local/bin/hello
      - file: /etc/app/motd
        content: "beta motd\\n"
      - file: /opt/app/scenarios/none
        content: ""
    entrypoint: [/usr/local/bin/hello]
    env:
      VARIANT: beta
  gamma:
    from: alpha
    image: \${REG}/e2e/gamma
    steps:
      - file: /opt/app/extra.txt
        content: gamma extra
    cmd: [gamma-arg]
    env:
      VARIANT: gamma
    labels:
      org.example.variant: gamma
`;
}

async function skopeoJson(args: string[]): Promise<Record<string, unknown>> {
  const r = await run('skopeo', ['inspect', '--tls-verify=false', ...args]);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function servedDigest(ref: string): Promise<string> {
  const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return `sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`;
}

async function podmanRun(ref: string, args: string[] = [], extra: string[] = []): Promise<string> {
  podmanRefs.push(ref);
  const r = await run('podman', ['run', '--rm', '--network', 'none', '--tls-verify=false', ...extra, ref, ...args]);
  return r.stdout;
}

beforeAll(async () => {
  reg = await startRegistry();
  await pushBusyboxBase(reg.host);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-e2e-'));
  cache = join(ctx, '.cache');
  mkdirSync(join(ctx, 'bin'));
  writeFileSync(join(ctx, 'bin/hello.sh'), HELLO);
  chmodSync(join(ctx, 'bin/hello.sh'), 0o644); // mode: "0755" in the build file must win
  writeFileSync(join(ctx, 'bin/hello-exec.sh'), HELLO);
  chmodSync(join(ctx, 'bin/hello-exec.sh'), 0o775); // no mode: the executable bit is kept (as 0755)
  mkdirSync(join(ctx, 'scenarios/nested'), { recursive: true });
  writeFileSync(join(ctx, 'scenarios/login.yml'), 'name: login\n');
  writeFileSync(join(ctx, 'scenarios/nested/deep.yml'), 'name: deep\n');
  mkdirSync(join(ctx, 'conf'));
  writeFileSync(join(ctx, 'conf/a.conf'), 'a=1\n');
  writeFileSync(join(ctx, 'conf/b.conf'), 'b=2\n');
  writeFileSync(join(ctx, 'conf/ignored.txt'), 'not copied\n');
  writeFileSync(join(ctx, 'data.txt'), 'data\n');
  writeFileSync(join(ctx, 'oci-build.yml'), buildFile());
});

afterAll(async () => {
  for (const r of new Set(podmanRefs)) await run('podman', ['rmi', '-f', r], { allowFail: true });
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('core build and push', () => {
  let map: Record<string, { image: string; digest: string; ref: string; tags: string[]; size: number }>;
  let firstLog = '';

  it('builds and pushes three variants with the bundled CLI', async () => {
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--push',
      '--tag',
      'v1',
      '--tag',
      '${variant}-latest',
      '--digest-map',
      join(ctx, 'digests.json'),
      '--cache-dir',
      cache,
    ]);
    firstLog = r.stderr;
    expect(r.code, r.stderr).toBe(0);
    map = JSON.parse(readFileSync(join(ctx, 'digests.json'), 'utf8'));
    expect(Object.keys(map)).toEqual(['alpha', 'beta', 'gamma']);
    expect(map.alpha!.tags).toEqual([`${reg.host}/e2e/alpha:v1`, `${reg.host}/e2e/alpha:alpha-latest`]);
    expect(map.gamma!.ref).toBe(`${reg.host}/e2e/gamma@${map.gamma!.digest}`);
    // A log line per phase with sizes and times.
    expect(firstLog).toMatch(/validate: .*3 variant\(s\)/);
    expect(firstLog).toMatch(/\[alpha\] resolve base: .*base\/busybox:oci-index@sha256:/);
    expect(firstLog).toMatch(/\[alpha\] layer [0-9a-f]{12}: copy scenarios \/opt\/app\/scenarios .* in \d/);
    expect(firstLog).toMatch(/push: 3 image\(s\): \d+ blobs uploaded/);
    expect(firstLog).toMatch(/tag: 6 tag\(s\) written/);
    expect(JSON.parse(r.stdout)).toEqual(map);
  });

  it('every digest in the map is what the registry serves for each tag', async () => {
    for (const [, e] of Object.entries(map)) {
      for (const tag of e.tags) expect(await servedDigest(tag)).toBe(e.digest);
      expect(await servedDigest(e.ref)).toBe(e.digest);
    }
  });

  it('skopeo inspect shows the configured settings', async () => {
    const alpha = (await skopeoJson(['--config', `docker://${map.alpha!.ref}`])) as {
      config: Record<string, unknown>;
      rootfs: { diff_ids: string[] };
      history: unknown[];
      created: string;
    };
    expect(alpha.config.Entrypoint).toEqual(['/usr/local/bin/hello']);
    expect(alpha.config.Cmd).toEqual(['alpha-arg']);
    expect(alpha.config.User).toBe('1000');
    expect(alpha.config.WorkingDir).toBe('/opt/app');
    expect(alpha.config.Env).toEqual(['PATH=/usr/local/bin:/bin', 'SUITE=e2e', 'VARIANT=alpha']);
    expect(alpha.config.Labels).toEqual({ 'org.example.base': 'busybox', 'org.example.suite': 'e2e', 'org.example.variant': 'alpha' });
    expect(alpha.config.ExposedPorts).toEqual({ '8080/tcp': {} });
    expect(alpha.rootfs.diff_ids).toHaveLength(6);
    expect(alpha.created).toBe('1970-01-01T00:00:00Z');
    const gamma = (await skopeoJson(['--config', `docker://${map.gamma!.ref}`])) as {
      config: Record<string, unknown>;
      rootfs: { diff_ids: string[] };
    };
    expect(gamma.config.Entrypoint).toEqual(['/usr/local/bin/hello']);
    expect(gamma.config.Cmd).toEqual(['gamma-arg']);
    expect(gamma.config.Env).toEqual(['PATH=/usr/local/bin:/bin', 'SUITE=e2e', 'VARIANT=gamma']);
    expect(gamma.config.Labels).toMatchObject({ 'org.example.variant': 'gamma' });
    // gamma shares alpha's layers and adds one.
    expect(gamma.rootfs.diff_ids.slice(0, 6)).toEqual(alpha.rootfs.diff_ids);
    expect(gamma.rootfs.diff_ids).toHaveLength(7);
    const beta = (await skopeoJson(['--config', `docker://${map.beta!.ref}`])) as { config: Record<string, unknown> };
    expect(beta.config.Cmd ?? null).toBeNull(); // a new entrypoint drops the base's CMD
    const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${map.beta!.ref}`])).stdout);
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.annotations['org.opencontainers.image.base.name']).toBe(`${reg.host}/base/busybox:docker-list`);
    expect(manifest.annotations['org.opencontainers.image.base.digest']).toMatch(/^sha256:/);
    // Docker schema 2 base layers are written with the OCI media type (same bytes).
    expect(manifest.layers.every((l: { mediaType: string }) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar+gzip')).toBe(true);
    expect(validateOci('manifest', manifest)).toEqual([]);
  });

  it('podman runs each variant and its entrypoint prints what it should', async () => {
    const alpha = await podmanRun(`${reg.host}/e2e/alpha:v1`);
    expect(alpha).toContain('variant=alpha suite=e2e args=alpha-arg uid=1000 gid=1000 pwd=/opt/app');
    expect(alpha).toContain('hello from alpha');
    expect(alpha).toContain('login.yml');
    expect(alpha).toContain('nested');
    const beta = await podmanRun(`${reg.host}/e2e/beta:v1`);
    expect(beta).toContain('variant=beta suite=e2e args= uid=0');
    expect(beta).toContain('beta motd');
    const gamma = await podmanRun(`${reg.host}/e2e/gamma:v1`);
    expect(gamma).toContain('variant=gamma suite=e2e args=gamma-arg uid=1000');
    expect(gamma).toContain('hello from alpha');
  });

  it('owners, modes, globs and the base image directories come out right', async () => {
    const out = await podmanRun(
      `${reg.host}/e2e/gamma:v1`,
      [
        '-c',
        [
          'stat -c "%n %a %u:%g %F" /usr/local/bin/hello /opt/app/scenarios /opt/app/scenarios/login.yml /opt/app/scenarios/nested/deep.yml /etc/app/motd /etc/app/a.conf /etc/app/b.conf /opt/data /opt/data/through-symlink.txt',
          'test -L /data && echo data-is-symlink',
          'test -e /etc/app/ignored.txt || echo glob-filtered',
          'cat /opt/app/extra.txt',
        ].join('; '),
      ],
      ['--entrypoint', '/bin/sh', '--user', '0'],
    );
    const lines = out.trim().split('\n');
    expect(lines).toContain('/usr/local/bin/hello 755 0:0 regular file');
    expect(lines).toContain('/opt/app/scenarios 755 1000:1000 directory');
    expect(lines).toContain('/opt/app/scenarios/login.yml 644 1000:1000 regular file');
    expect(lines).toContain('/opt/app/scenarios/nested/deep.yml 644 1000:1000 regular file');
    expect(lines).toContain('/etc/app/motd 640 1000:50 regular file');
    expect(lines).toContain('/etc/app/a.conf 644 0:0 regular file');
    expect(lines).toContain('/etc/app/b.conf 644 0:0 regular file');
    // The base's /opt/data (0750, 1000:1000) and its /data -> /opt/data symlink are untouched.
    expect(lines).toContain('/opt/data 750 1000:1000 directory');
    expect(lines).toContain('/opt/data/through-symlink.txt 644 0:0 regular file');
    expect(lines).toContain('data-is-symlink');
    expect(lines).toContain('glob-filtered');
    expect(out).toContain('gamma extra');
  });

  it('building the same inputs again gives identical digests and uploads zero blob bytes', async () => {
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--push',
      '--tag',
      'v1',
      '--tag',
      '${variant}-latest',
      '--digest-map',
      join(ctx, 'digests2.json'),
      '--cache-dir',
      join(ctx, '.cache-fresh'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const again = JSON.parse(readFileSync(join(ctx, 'digests2.json'), 'utf8'));
    expect(again).toEqual(map);
    expect(r.stderr).toMatch(/push: 3 image\(s\): 0 blobs uploaded \(0 B\)/);
  });

  it('writes an OCI layout that skopeo reads and that validates against the OCI schemas', async () => {
    const dir = join(ctx, 'layout');
    const r = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--output', `oci:${dir}`, '--cache-dir', cache]);
    expect(r.code, r.stderr).toBe(0);
    const built = JSON.parse(r.stdout);
    for (const v of ['alpha', 'beta', 'gamma']) {
      const inspected = (await skopeoJson([`oci:${dir}:${v}`])) as { Digest: string };
      expect(inspected.Digest).toBe(map[v]!.digest); // same digests as pushed
      expect(built[v].digest).toBe(map[v]!.digest);
    }
    expect(validateOci('layout', JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8')))).toEqual([]);
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(validateOci('index', index)).toEqual([]);
    for (const m of index.manifests) {
      const manifest = JSON.parse(readFileSync(join(dir, 'blobs/sha256', m.digest.slice(7)), 'utf8'));
      expect(validateOci('manifest', manifest)).toEqual([]);
      if (m.artifactType) continue; // an attestation (referrer): its config is the empty descriptor
      const config = JSON.parse(readFileSync(join(dir, 'blobs/sha256', manifest.config.digest.slice(7)), 'utf8'));
      expect(validateOci('config', config)).toEqual([]);
      for (const l of manifest.layers) expect(existsSync(join(dir, 'blobs/sha256', l.digest.slice(7)))).toBe(true);
    }
    // Every blob file's name is its sha256.
    for (const f of readdirSync(join(dir, 'blobs/sha256'))) {
      const h = createHash('sha256')
        .update(readFileSync(join(dir, 'blobs/sha256', f)))
        .digest('hex');
      expect(h).toBe(f);
    }
  });

  it('writes a docker-archive that podman loads and runs', async () => {
    const file = join(ctx, 'images.tar');
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--variant',
      'beta',
      '--tag',
      'archived',
      '--output',
      `docker-archive:${file}`,
      '--cache-dir',
      cache,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const loaded = await run('podman', ['load', '-i', file]);
    expect(loaded.stdout + loaded.stderr).toContain(`${reg.host}/e2e/beta:archived`);
    podmanRefs.push(`${reg.host}/e2e/beta:archived`);
    const out = await run('podman', ['run', '--rm', '--network', 'none', '--pull', 'never', `${reg.host}/e2e/beta:archived`]);
    expect(out.stdout).toContain('variant=beta');
  });

  it('the bundled action sets its outputs and writes the digest map', async () => {
    const outFile = join(ctx, 'github-output');
    writeFileSync(outFile, '');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      RUNNER_TEMP: join(ctx, 'runner-temp'),
      GITHUB_OUTPUT: outFile,
      GITHUB_WORKSPACE: ctx,
      INPUT_CONFIG: join(ctx, 'oci-build.yml'),
      INPUT_VARIANTS: 'gamma',
      INPUT_PUSH: 'true',
      INPUT_TAGS: 'action-${variant}',
      INPUT_REGISTRY: 'ghcr.io',
      'INPUT_REGISTRY-USERNAME': 'someone',
      'INPUT_REGISTRY-PASSWORD': 'not-for-this-registry',
      'INPUT_DIGEST-MAP': join(ctx, 'action-digests.json'),
    };
    const r = await runNode(ACTION, [], { env, cwd: ctx });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('::group::variant alpha');
    // The runner learns the secret from the ::add-mask:: command; no other line may carry it.
    expect(r.stdout).toContain('::add-mask::not-for-this-registry');
    expect(
      r.stdout
        .split('\n')
        .filter((l) => !l.startsWith('::add-mask::'))
        .join('\n'),
    ).not.toContain('not-for-this-registry');
    const outputs = parseGithubOutput(readFileSync(outFile, 'utf8'));
    // gamma needs alpha (from:), so both are built and pushed.
    expect(JSON.parse(outputs.digests!)).toEqual({ alpha: map.alpha!.digest, gamma: map.gamma!.digest });
    const meta = JSON.parse(outputs.metadata!);
    expect(meta.gamma.tags).toEqual([`${reg.host}/e2e/gamma:action-gamma`]);
    expect(outputs['digest-map']).toBe(join(ctx, 'action-digests.json'));
    expect(JSON.parse(readFileSync(join(ctx, 'action-digests.json'), 'utf8'))).toEqual(meta);
    expect(await servedDigest(`${reg.host}/e2e/gamma:action-gamma`)).toBe(map.gamma!.digest);
  });
});

describe('invalid build files', () => {
  it('reports every problem with file and line and pushes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-bad-'));
    const file = join(dir, 'oci-build.yml');
    writeFileSync(
      file,
      `version: 1
variants:
  one:
    image: ${reg.host}/bad/one
    base: ${reg.host}/base/busybox:single
    steps:
      - copy: missing.txt
        to: /x
        mode: "0999"
  two:
    image: ${reg.host}/bad/Two
    from: nowhere
    entrypont: [/x]
`,
    );
    const r = await cli(['build', '--config', file, '--push', '--cache-dir', join(dir, 'cache')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${file}:7:\\d+: .*missing\\.txt`));
    expect(r.stderr).toMatch(new RegExp(`${file}:9:\\d+: .*mode`));
    expect(r.stderr).toMatch(new RegExp(`${file}:11:\\d+: .*lowercase`));
    expect(r.stderr).toMatch(new RegExp(`${file}:12:\\d+: .*nowhere`));
    expect(r.stderr).toMatch(new RegExp(`${file}:13:\\d+: .*entrypoint`));
    const catalog = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories.filter((x) => x.startsWith('bad/'))).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});
