import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { CLI, type Ran } from './helpers/cli.js';
import { imageView } from './helpers/image-tree.js';
import { cacheMountDir } from '../src/build/run-mounts.js';

/**
 * RUN --mount=type=cache's `sharing` across processes: two `oci-build build` processes with one
 * --cache-dir and one cache id. Each RUN appends `enter NAME` / `leave NAME` to a log in the
 * cache mount; a held step (HOLD=1) stays inside until the test creates `go-NAME` in the cache
 * directory, so the order of the log's lines is decided by the test, not by timing. A first
 * RUN touches `ready/NAME` in another cache mount: the build is about to reach the shared step.
 * - locked: the second build enters only after the first has left, though it was ready before;
 * - shared: both are inside at once;
 * - private: while a locked step holds the cache, a private one gets its own, empty directory
 *   and runs to the end at once;
 * - a holder killed with SIGKILL leaves its lock file, which the next build takes over (its
 *   owner's pid is gone).
 */

let reg: TestRegistry;
let base: string;
const work = mkdtempSync(join(tmpdir(), 'oci-build-cachesharing-'));

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'cachesharing/busybox')).single;
});
afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

function dockerfile(sharing: string): string {
  const dir = join(work, `ctx-${sharing}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'Dockerfile'),
    `ARG BASE
FROM \${BASE}
ARG NAME
ARG HOLD=0
RUN --mount=type=cache,id=ready,target=/r touch /r/$NAME
RUN --mount=type=cache,id=log,target=/c,sharing=${sharing} echo "enter $NAME" >> /c/log && cp /c/log /seen-at-enter && \\
  i=0; while [ "$HOLD" = 1 ] && [ ! -e /c/go-$NAME ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done; echo "leave $NAME" >> /c/log
`,
  );
  return dir;
}

interface Build {
  child: ChildProcess;
  done: Promise<Ran>;
  exited: boolean;
}

function build(cacheDir: string, sharing: string, name: string, hold: boolean): Build {
  const ctx = dockerfile(sharing);
  const args = [CLI, 'build', '-f', join(ctx, 'Dockerfile'), '--build-arg', `BASE=${base}`, '--build-arg', `NAME=${name}`];
  args.push('--build-arg', `HOLD=${hold ? 1 : 0}`, '-t', `${reg.host}/cachesharing/${name}:v1`, '--push', '--cache-dir', cacheDir, ctx);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const b: Build = { child, exited: false, done: undefined as unknown as Promise<Ran> };
  b.done = new Promise((resolve) =>
    child.on('close', (code) => {
      b.exited = true;
      resolve({ code: code ?? 1, stdout, stderr });
    }),
  );
  return b;
}

const logOf = (cacheDir: string) =>
  readFileSync(join(cacheMountDir(cacheDir, 'log'), 'log'), 'utf8')
    .trim()
    .split('\n');
const go = (cacheDir: string, name: string) => writeFileSync(join(cacheMountDir(cacheDir, 'log'), `go-${name}`), '');

async function until(what: string, ok: () => boolean, builds: Build[], seconds = 120): Promise<void> {
  for (let i = 0; i < seconds * 10; i++) {
    try {
      if (ok()) return;
    } catch {
      /* not there yet */
    }
    const gone = builds.find((b) => b.exited);
    if (gone) throw new Error(`${what}: a build ended first: ${JSON.stringify(await gone.done)}`);
    await sleep(100);
  }
  throw new Error(`${what}: timed out`);
}

const entered = (cacheDir: string, name: string) => () => logOf(cacheDir).includes(`enter ${name}`);
const ready = (cacheDir: string, name: string) => () => existsSync(join(cacheMountDir(cacheDir, 'ready'), name));

async function succeeded(b: Build): Promise<void> {
  const r = await b.done;
  expect(r.code, r.stderr).toBe(0);
}

describe('RUN --mount=type=cache sharing between two build processes', () => {
  it('locked: the second build waits for the first to leave the cache', async () => {
    const cache = join(work, 'cache-locked');
    const a = build(cache, 'locked', 'lock-a', true);
    await until('a enters', entered(cache, 'lock-a'), [a]);
    const b = build(cache, 'locked', 'lock-b', false);
    await until('b is ready', ready(cache, 'lock-b'), [a, b]);
    await sleep(3000); // time for b to reach the step; it must not enter while a is inside
    expect(logOf(cache)).toEqual(['enter lock-a']);
    go(cache, 'lock-a');
    await succeeded(a);
    await succeeded(b);
    expect(logOf(cache)).toEqual(['enter lock-a', 'leave lock-a', 'enter lock-b', 'leave lock-b']);
    expect(existsSync(`${cacheMountDir(cache, 'log')}.lock`)).toBe(false);
  });

  it('shared: both builds are inside the cache at once', async () => {
    const cache = join(work, 'cache-shared');
    const a = build(cache, 'shared', 'shared-a', true);
    await until('a enters', entered(cache, 'shared-a'), [a]);
    const b = build(cache, 'shared', 'shared-b', true);
    await until('b enters while a is inside', entered(cache, 'shared-b'), [a, b]);
    expect(logOf(cache)).toEqual(['enter shared-a', 'enter shared-b']);
    go(cache, 'shared-a');
    go(cache, 'shared-b');
    await succeeded(a);
    await succeeded(b);
  });

  it('private: while a locked step holds the cache, a private step gets its own empty directory and does not wait', async () => {
    const cache = join(work, 'cache-private');
    const a = build(cache, 'locked', 'priv-a', true);
    await until('a enters', entered(cache, 'priv-a'), [a]);
    const b = build(cache, 'private', 'priv-b', false);
    await succeeded(b);
    expect(a.exited).toBe(false);
    expect(logOf(cache)).toEqual(['enter priv-a']);
    // What b saw in its cache mount on entering: only its own line.
    const view = await imageView(`${reg.host}/cachesharing/priv-b:v1`);
    expect(view.tree['/seen-at-enter']?.sha256).toBe(createHash('sha256').update('enter priv-b\n').digest('hex'));
    go(cache, 'priv-a');
    await succeeded(a);
    expect(logOf(cache)).toEqual(['enter priv-a', 'leave priv-a']);
    // With the cache free, a private step uses (and keeps) the shared directory.
    await succeeded(build(cache, 'private', 'priv-c', false));
    expect(logOf(cache)).toEqual(['enter priv-a', 'leave priv-a', 'enter priv-c', 'leave priv-c']);
  });

  it('a lock whose holder was killed (SIGKILL) is taken over by the next build', async () => {
    const cache = join(work, 'cache-killed');
    const a = build(cache, 'locked', 'kill-a', true);
    await until('a enters', entered(cache, 'kill-a'), [a]);
    const lock = `${cacheMountDir(cache, 'log')}.lock`;
    expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${a.child.pid}-\\d+-[0-9a-f]+\\n$`));
    a.child.kill('SIGKILL');
    await a.done;
    expect(existsSync(lock)).toBe(true); // no handler ran
    const c = build(cache, 'locked', 'kill-c', false);
    await succeeded(c);
    expect(logOf(cache).slice(0, 3)).toEqual(['enter kill-a', 'enter kill-c', 'leave kill-c']);
    expect(existsSync(lock)).toBe(false);
  });
});
