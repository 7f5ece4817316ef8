import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli, CLI } from './helpers/cli.js';

/**
 * Issue 12: a build killed with SIGKILL (no handler runs) leaves no process of its run: step
 * behind, under both isolations; its temporary root file system is removed by the next build
 * that uses the cache directory, and a build running at the same time keeps its own.
 */

let reg: TestRegistry;
let ctx: string;

function readdirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const rootfsDirs = (cache: string) => readdirNames(cache).filter((n) => n.startsWith('rootfs-'));

async function processes(): Promise<string> {
  return (await run('ps', ['-eo', 'args'])).stdout;
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function buildFile(dir: string, command: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'oci-build.yml');
  writeFileSync(
    file,
    `version: 1
variants:
  app:
    base: ${reg.host}/base/busybox:single
    steps:
      - run: ${JSON.stringify(command)}
`,
  );
  return file;
}

/** Starts a build in the background; resolves once its command (with `marker`) is running. */
async function startBuild(
  file: string,
  cache: string,
  isolation: string,
  marker: string,
): Promise<{ child: ChildProcess; exit: Promise<number | null>; stderr: () => string }> {
  const child = spawn(process.execPath, [CLI, 'build', '--config', file, '--cache-dir', cache, '--isolation', isolation, '--no-cache'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  await waitFor(`the run: step to start: ${err}`, async () => (await processes()).includes(marker), 60_000);
  return { child, exit, stderr: () => err };
}

beforeAll(async () => {
  reg = await startRegistry();
  await pushBusyboxBase(reg.host);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-kill-'));
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe.each(['runc', 'chroot'] as const)('SIGKILL of the build under --isolation %s', (isolation) => {
  it('leaves no process; the next build removes the temporary root file system', async () => {
    const cache = join(ctx, `cache-${isolation}`);
    const marker = `oci-build-killed-${isolation}-${process.pid}`;
    const b = await startBuild(
      buildFile(join(ctx, `kill-${isolation}`), `echo started; sleep 120; echo ${marker}`),
      cache,
      isolation,
      marker,
    );
    b.child.kill('SIGKILL');
    await b.exit;
    await waitFor('the step to die with the build', async () => !(await processes()).includes(marker), 10_000);
    const left = rootfsDirs(cache);
    expect(left).toHaveLength(1);
    if (isolation === 'runc') {
      const ids = (await run('runc', ['--root', '/run/oci-build/runc', 'list', '-q'])).stdout;
      expect(ids).not.toContain(`oci-build-${b.child.pid}-`);
    }
    const r = await cli([
      'build',
      '--config',
      buildFile(join(ctx, `next-${isolation}`), 'echo next > /next.txt'),
      '--cache-dir',
      cache,
      '--isolation',
      isolation,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(rootfsDirs(cache)).toEqual([]);
  }, 180_000);
});

describe('two builds sharing a cache directory', () => {
  it("one starting while the other runs a step does not remove the other's root file system", async () => {
    const cache = join(ctx, 'cache-shared');
    const marker = `oci-build-concurrent-${process.pid}`;
    const a = await startBuild(buildFile(join(ctx, 'a'), `sleep 6; echo ${marker} > /a.txt`), cache, 'runc', marker);
    const mine = rootfsDirs(cache);
    expect(mine).toHaveLength(1);
    const r = await cli(['build', '--config', buildFile(join(ctx, 'b'), 'echo b > /b.txt'), '--cache-dir', cache]);
    expect(r.code, r.stderr).toBe(0);
    expect(rootfsDirs(cache)).toEqual(mine);
    expect(await a.exit, a.stderr()).toBe(0);
    expect(rootfsDirs(cache)).toEqual([]);
  }, 180_000);
});

describe('a runc that cannot start containers', () => {
  it("fails the build naming the step, with runc's error and the chroot fallback as the fix", async () => {
    const bin = join(ctx, 'fake-bin');
    mkdirSync(bin);
    // Answers --version (so it is found) and fails every run as runc does without cgroups.
    writeFileSync(
      join(bin, 'runc'),
      `#!/bin/sh
case "$*" in *--version*) echo "runc version 0"; exit 0;; *" run "*) echo 'level=error msg="runc run failed: unable to apply cgroup configuration"' >&2; exit 1;; esac
exit 0
`,
    );
    chmodSync(join(bin, 'runc'), 0o755);
    const r = await cli(['build', '--config', buildFile(join(ctx, 'fake'), 'echo hi'), '--cache-dir', join(ctx, 'cache-fake')], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /oci-build\.yml:6: run: "echo hi" under runc \(runc could not start it.*--isolation chroot.*\) failed with exit code 1/,
    );
    expect(r.stderr).toContain('| level=error msg="runc run failed: unable to apply cgroup configuration"');
    expect(rootfsDirs(join(ctx, 'cache-fake'))).toEqual([]);
  }, 60_000);
});
