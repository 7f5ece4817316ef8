import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli, CLI } from './helpers/cli.js';

/**
 * Issue 5 on a small busybox base (fast): run: steps (shell and exec form, user, workdir, env,
 * network: false, deletions as whiteouts), copy: from: a stage, stages never pushed or recorded,
 * one extraction per layer chain, deterministic digests across fresh caches, and a failing
 * command failing the build with its exit code and output tail and no tag written.
 */

let reg: TestRegistry;
let ctx: string;
const podmanRefs: string[] = [];

function buildFile(): string {
  return `version: 1
args:
  REG: ${reg.host}
defaults:
  base: \${REG}/base/busybox:single
  image: \${REG}/run/\${variant}
variants:
  tools:
    stage: true
    steps:
      - run: /bin/busybox mkdir -p /usr/bin /usr/sbin /sbin && /bin/busybox --install -s
      - run: |
          set -e
          mkdir -p /opt/build/lib
          echo built-by-tools > /opt/build/artifact.txt
          echo lib > /opt/build/lib/lib.txt
          ln -s artifact.txt /opt/build/current
          chown -R 1234:1234 /opt/build
          chmod 4750 /opt/build/artifact.txt
  app:
    steps:
      - copy: /opt/build/artifact.txt
        from: tools
        to: /opt/app/
      - copy: /opt/build/
        from: tools
        to: /opt/app2/
        owner: "1000:1000"
      - run: /bin/busybox rm -rf /opt/data /data /etc/group-unused
      - run: /bin/busybox touch /home/app/made-by-app && id > /home/app/id.txt
        user: app
      - run: echo "$FOO $(pwd)" > /srv/new/env.txt
        workdir: /srv/new
        env: { FOO: bar }
      - run: [/bin/sh, -c, "ls /sys/class/net > /net-none.txt"]
        network: false
    entrypoint: [/bin/sh, -c]
  app2:
    from: tools
    steps:
      - run: echo app2 > /app2.txt && rm /usr/bin/wget
    entrypoint: [/bin/sh, -c]
  app3:
    from: tools
    steps:
      - file: /etc/app3.conf
        content: "three\\n"
      - run: cat /etc/app3.conf > /app3.txt
    entrypoint: [/bin/sh, -c]
`;
}

async function podmanSh(ref: string, script: string): Promise<string> {
  podmanRefs.push(ref);
  const r = await run('podman', ['run', '--rm', '--network', 'none', '--tls-verify=false', '--user', '0', ref, script]);
  return r.stdout;
}

async function tagsOf(repo: string): Promise<string[]> {
  const r = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/${repo}`], { allowFail: true });
  if (r.code !== 0) return [];
  // sha256-<hex> tags are the referrers fallback of the attestations, and buildcache the layer
  // cache's record (cache-registry: auto), not image tags.
  return ((JSON.parse(r.stdout) as { Tags: string[] | null }).Tags ?? []).filter(
    (t) => !/^sha256-[a-f0-9]{64}$/.test(t) && t !== 'buildcache',
  );
}

beforeAll(async () => {
  reg = await startRegistry();
  await pushBusyboxBase(reg.host);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-run-'));
  writeFileSync(join(ctx, 'oci-build.yml'), buildFile());
});

afterAll(async () => {
  for (const r of new Set(podmanRefs)) await run('podman', ['rmi', '-f', r], { allowFail: true });
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('run: steps on a busybox base', () => {
  let map: Record<string, { digest: string; ref: string; tags: string[] }>;
  let log = '';

  it('builds and pushes; the stage is built but neither pushed nor recorded', async () => {
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--push',
      '--tag',
      'v1',
      '--digest-map',
      join(ctx, 'digests.json'),
      '--cache-dir',
      join(ctx, 'cache1'),
    ]);
    log = r.stderr;
    expect(r.code, r.stderr).toBe(0);
    map = JSON.parse(readFileSync(join(ctx, 'digests.json'), 'utf8'));
    expect(Object.keys(map).sort()).toEqual(['app', 'app2', 'app3']);
    expect(await tagsOf('run/tools')).toEqual([]);
    expect(await tagsOf('run/app')).toEqual(['v1']);
    // Run output is in the log, per variant.
    expect(log).toMatch(/\[app\]\s+\| uid=1000\(app\)|\[app\] run /);
    // No temporary root file system is left in the cache directory.
    expect(readdirNames(join(ctx, 'cache1')).filter((n) => n.startsWith('rootfs-'))).toEqual([]);
  });

  it('extracts each layer chain once: the base once, the stage never (its rootfs is reused)', () => {
    const baseExtractions = log.match(/rootfs: extracted base layer 1 of 1/g) ?? [];
    expect(baseExtractions).toHaveLength(1);
    // tools' own layers were made in place; app2 and app3 copy its rootfs instead of extracting.
    expect(log).not.toMatch(/rootfs: extracted run /);
    expect(log.match(/rootfs: copied /g)?.length).toBeGreaterThanOrEqual(3);
  });

  it('copy from a stage keeps owners and modes (or applies owner:); deletions are whiteouts', async () => {
    const out = await podmanSh(
      `${reg.host}/run/app:v1`,
      [
        'stat -c "%n %a %u:%g" /opt/app/artifact.txt /opt/app2/artifact.txt /opt/app2/lib /opt/app2/lib/lib.txt',
        'readlink /opt/app2/current',
        'test ! -e /opt/data && test ! -L /data && echo data-gone',
        'cat /opt/app/artifact.txt',
      ].join('; '),
    );
    const lines = out.trim().split('\n');
    expect(lines).toContain('/opt/app/artifact.txt 4750 1234:1234');
    expect(lines).toContain('/opt/app2/artifact.txt 4750 1000:1000');
    expect(lines).toContain('/opt/app2/lib 755 1000:1000');
    expect(lines).toContain('/opt/app2/lib/lib.txt 644 1000:1000');
    expect(lines).toContain('artifact.txt');
    expect(lines).toContain('data-gone');
    expect(lines).toContain('built-by-tools');
  });

  it('runs as the step user, in the step workdir (created), with the step env, without network when asked', async () => {
    const out = await podmanSh(
      `${reg.host}/run/app:v1`,
      [
        'stat -c "%n %u:%g" /home/app/made-by-app /srv/new',
        'cat /home/app/id.txt /srv/new/env.txt /net-none.txt',
        'test ! -e /etc/resolv.conf.oci-build && echo ok',
      ].join('; '),
    );
    expect(out).toContain('/home/app/made-by-app 1000:1000');
    expect(out).toContain('/srv/new 0:0');
    expect(out).toContain('uid=1000(app) gid=1000(app) groups=50(staff),1000(app)');
    expect(out).toContain('bar /srv/new');
    expect(out.split('\n')).toContain('lo');
    expect(out).not.toMatch(/^eth|^ens/m);
  });

  it('variants from a stage start from its file system', async () => {
    const out2 = await podmanSh(`${reg.host}/run/app2:v1`, 'cat /app2.txt; test ! -e /usr/bin/wget && echo wget-gone; ls /usr/bin/wc');
    expect(out2).toContain('app2');
    expect(out2).toContain('wget-gone');
    expect(out2).toContain('/usr/bin/wc');
    const out3 = await podmanSh(`${reg.host}/run/app3:v1`, 'cat /app3.txt');
    expect(out3).toContain('three');
  });

  it('a deleted directory is one whiteout, and the run layers hold only what changed', async () => {
    const cfg = JSON.parse((await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${map.app!.ref}`])).stdout) as {
      history: { created_by: string }[];
    };
    const createdBy = cfg.history.map((h) => h.created_by);
    expect(createdBy).toContain('oci-build run /bin/busybox rm -rf /opt/data /data /etc/group-unused');
    const dir = join(ctx, 'layout');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${map.app!.ref}`, `oci:${dir}:app`]);
    const manifest = JSON.parse(
      readFileSync(
        join(dir, 'blobs/sha256', JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).manifests[0].digest.slice(7)),
        'utf8',
      ),
    );
    const rmLayer = manifest.layers[3].digest.slice(7);
    const listing = (await run('tar', ['-tzvf', join(dir, 'blobs/sha256', rmLayer)])).stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).pop());
    expect(listing.sort()).toEqual(['.wh.data', 'opt/.wh.data']);
  });

  it('gives the same digests from a fresh cache (deterministic commands, deterministic layers)', async () => {
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--digest-map',
      join(ctx, 'digests2.json'),
      '--cache-dir',
      join(ctx, 'cache2'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const again = JSON.parse(readFileSync(join(ctx, 'digests2.json'), 'utf8')) as typeof map;
    for (const v of ['app', 'app2', 'app3']) expect(again[v]!.digest).toBe(map[v]!.digest);
  });

  it('a failing command fails the build with its exit code and last lines; no tag is written', async () => {
    const dir = join(ctx, 'failing');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'oci-build.yml'),
      `version: 1
defaults:
  base: ${reg.host}/base/busybox:single
variants:
  fine:
    image: ${reg.host}/fail/fine
    steps:
      - file: /fine.txt
        content: fine
  broken:
    image: ${reg.host}/fail/broken
    steps:
      - run: i=1; while [ $i -le 30 ]; do echo "output line $i"; i=$((i+1)); done; echo "to stderr" >&2; exit 3
`,
    );
    const r = await cli(['build', '--config', join(dir, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', join(dir, 'cache')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/oci-build\.yml:\d+: run: ".*" failed with exit code 3/);
    expect(r.stderr).toContain('| output line 30');
    expect(r.stderr).toContain('| to stderr');
    expect(r.stderr).toContain('| output line 12');
    // Exactly the last 20 lines. stdout and stderr are two pipes, so where "to stderr" lands
    // among the last stdout lines is not fixed: the window is lines 11-30 or 12-30 + that line.
    const errorPart = r.stderr.slice(r.stderr.indexOf('failed with exit code 3'));
    const after = errorPart.split('\n').slice(1);
    const end = after.findIndex((l) => !/^\s+\| /.test(l));
    const shown = end === -1 ? after : after.slice(0, end);
    expect(shown).toHaveLength(20);
    expect(shown).toContainEqual(expect.stringContaining('| output line 30'));
    expect(shown.every((l) => !/\| output line ([1-9]|10)$/.test(l))).toBe(true);
    expect(readdirNames(join(dir, 'cache')).filter((n) => n.startsWith('rootfs-'))).toEqual([]);
    expect(await tagsOf('fail/fine')).toEqual([]);
    expect(await tagsOf('fail/broken')).toEqual([]);
  });
});

describe('interrupts and privileges', () => {
  it('SIGINT during a run: step kills the command and removes the temporary root file systems', async () => {
    const dir = join(ctx, 'interrupt');
    mkdirSync(dir);
    const marker = `oci-build-interrupt-${process.pid}`;
    writeFileSync(
      join(dir, 'oci-build.yml'),
      `version: 1
variants:
  slow:
    base: ${reg.host}/base/busybox:single
    steps:
      - run: echo started; sleep 120; echo ${marker}
`,
    );
    const child = spawn(process.execPath, [CLI, 'build', '--config', join(dir, 'oci-build.yml'), '--cache-dir', join(dir, 'cache')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    await new Promise<void>((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`the run step did not start: ${err}`)), 60_000);
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('rootfs: extracted')) {
          clearTimeout(timer);
          setTimeout(resolvePromise, 1500);
        }
      });
    });
    expect((await run('ps', ['-eo', 'args'])).stdout).toContain(marker);
    child.kill('SIGINT');
    const signal = await new Promise<string | null>((r) => child.on('close', (_c, sig) => r(sig)));
    expect(signal).toBe('SIGINT');
    expect(err).toContain('SIGINT: stopping run: steps and removing temporary root file systems');
    await new Promise((r) => setTimeout(r, 500));
    expect((await run('ps', ['-eo', 'args'])).stdout).not.toContain(marker);
    expect(readdirNames(join(dir, 'cache')).filter((n) => n.startsWith('rootfs-'))).toEqual([]);
    expect(readFileSync('/proc/self/mounts', 'utf8')).not.toContain(join(dir, 'cache'));
  });

  it('as a user without root or passwordless sudo, a build with run: steps stops before any work, saying what it needs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-nonroot-'));
    try {
      chmodSync(dir, 0o777);
      writeFileSync(
        join(dir, 'oci-build.yml'),
        `version: 1
variants:
  app:
    base: ${reg.host}/base/busybox:single
    steps:
      - run: echo hi
`,
      );
      const r = await run(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          '--',
          process.execPath,
          CLI,
          'build',
          '--config',
          join(dir, 'oci-build.yml'),
          '--cache-dir',
          join(dir, 'cache'),
        ],
        { allowFail: true, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir } },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /variant\(s\) app \(run:\) need root .* without passwordless sudo: run oci-build as root, or give this user passwordless sudo/,
      );
      expect(readdirNames(join(dir, 'cache'))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** sudo is installed by .ci/setup-host.sh; the test user and its sudoers entry only live during the test. */
const SUDO_USER = 'oci-build-sudo-test';
describe.skipIf(!existsSync('/usr/bin/sudo') || process.getuid?.() !== 0)(
  'without root, with passwordless sudo (as on GitHub-hosted runners)',
  () => {
    let uid = 0;
    beforeAll(async () => {
      await run('userdel', [SUDO_USER], { allowFail: true });
      await run('useradd', ['--no-create-home', '--shell', '/bin/sh', SUDO_USER]);
      uid = Number((await run('id', ['-u', SUDO_USER])).stdout.trim());
      writeFileSync(`/etc/sudoers.d/${SUDO_USER}`, `${SUDO_USER} ALL=(ALL) NOPASSWD:ALL\n`, { mode: 0o440 });
    });
    afterAll(async () => {
      rmSync(`/etc/sudoers.d/${SUDO_USER}`, { force: true });
      await run('userdel', [SUDO_USER], { allowFail: true });
    });

    it('runs the build again as root with sudo -n, and gives back what it created', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'oci-build-sudo-'));
      try {
        chmodSync(dir, 0o777);
        writeFileSync(
          join(dir, 'oci-build.yml'),
          `version: 1
variants:
  app:
    base: ${reg.host}/base/busybox:single
    image: ${reg.host}/sudo/app
    steps:
      - run: id -u > /built-by.txt
`,
        );
        const r = await run(
          'setpriv',
          [
            `--reuid=${uid}`,
            `--regid=${uid}`,
            '--init-groups',
            '--',
            process.execPath,
            CLI,
            'build',
            '--config',
            join(dir, 'oci-build.yml'),
            '--cache-dir',
            join(dir, 'cache'),
            '--push',
            '--tag',
            'v1',
            '--digest-map',
            join(dir, 'map.json'),
            '--output',
            `oci:${join(dir, 'layout')}`,
          ],
          { allowFail: true, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir } },
        );
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toContain('need root: running this build again as root with sudo -n');
        expect(JSON.parse(readFileSync(join(dir, 'map.json'), 'utf8')).app.tags).toEqual([`${reg.host}/sudo/app:v1`]);
        // Everything the root run created belongs to the user again.
        const notMine = (
          await run('find', [join(dir, 'cache'), join(dir, 'layout'), join(dir, 'map.json'), '!', '-uid', String(uid)])
        ).stdout.trim();
        expect(notMine).toBe('');
        // Only the blob store and the layer cache's records stay: no working rootfs is left behind.
        expect(
          readdirNames(join(dir, 'cache')).filter((n) => !['blobs', 'layers', 'scans', 'keys', 'files.idx', 'sbom'].includes(n)),
        ).toEqual([]);
        expect(readdirNames(join(dir, 'cache'))).toContain('layers');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

function readdirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
