import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli, type Ran } from './helpers/cli.js';
import { imageView, type ImageView } from './helpers/image-tree.js';

/**
 * RUN --mount end to end (`oci-build build -f`, pushed to a real registry, read back with skopeo
 * and umoci): a cache mount keeps its content between builds and never reaches a layer or the
 * cache key; a secret is readable in the step and nowhere else (every blob of the pushed image,
 * the digest map, stdout and stderr are searched for its value); binds from a stage and from
 * the context are read-only unless rw (and then writes are discarded); a tmpfs starts empty.
 * Each isolation mode (runc, chroot) runs the mount cases.
 */

let reg: TestRegistry;
let base: string;
const work = mkdtempSync(join(tmpdir(), 'oci-build-dfmount-'));
const SECRET = `s3cr3t-${Math.random().toString(36).slice(2)}-value`;

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'dfmount/busybox')).single;
});
afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

function context(name: string, dockerfile: string, files: Record<string, string> = {}): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
  return dir;
}

async function build(ctx: string, ref: string, extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<Ran & { digest: string }> {
  const r = await cli(
    [
      'build',
      '-f',
      join(ctx, 'Dockerfile'),
      '--build-arg',
      `BASE=${base}`,
      '-t',
      ref,
      '--push',
      '--cache-dir',
      join(work, 'cache'),
      ...extra,
      ctx,
    ],
    env ? { env: { ...process.env, ...env } } : {},
  );
  expect(r.code, r.stderr).toBe(0);
  const map = JSON.parse(r.stdout) as Record<string, { digest: string }>;
  return { ...r, digest: Object.values(map)[0]!.digest };
}

function file(view: ImageView, path: string): string | undefined {
  return view.tree[path] ? 'present' : undefined;
}

async function content(ref: string, path: string): Promise<string> {
  const dir = mkdtempSync(join(work, 'view-'));
  await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}/l:i`]);
  await run('umoci', ['unpack', '--image', `${dir}/l:i`, `${dir}/b`]);
  return readFileSync(join(dir, 'b', 'rootfs', path), 'utf8');
}

describe.each(['runc', 'chroot'])('RUN --mount (isolation %s)', (isolation) => {
  const iso = ['--isolation', isolation];

  it('type=cache: the content persists between builds, is in no layer, and is not in the cache key', async () => {
    const ctx = context(
      `cache-${isolation}`,
      `ARG BASE
FROM \${BASE}
ARG BUMP
RUN --mount=type=cache,target=/var/cache/count,id=counter-${isolation},mode=0700,uid=1000 \\
    n=$(cat /var/cache/count/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /var/cache/count/n; \\
    echo "$n $(stat -c %a:%u /var/cache/count)" > /count; echo bump=$BUMP
`,
    );
    const ref = (t: string) => `${reg.host}/dfmount/cache-${isolation}:${t}`;
    const one = await build(ctx, ref('one'), [...iso, '--build-arg', 'BUMP=1']);
    expect(await content(ref('one'), 'count')).toBe('1 700:1000\n');
    // Another arg value: the step runs again and finds what the first run left in the cache.
    await build(ctx, ref('two'), [...iso, '--build-arg', 'BUMP=2']);
    expect(await content(ref('two'), 'count')).toBe('2 700:1000\n');
    const view = await imageView(ref('two'));
    expect(file(view, '/var/cache/count')).toBeUndefined();
    expect(Object.keys(view.tree).filter((p) => p.startsWith('/var/cache'))).toEqual([]);
    // The cache now holds 2, yet the first build's step is a cache hit: content is not in the key.
    const again = await build(ctx, ref('one-again'), [...iso, '--build-arg', 'BUMP=1']);
    expect(again.digest).toBe(one.digest);
  });

  it('type=secret: readable in the step, in no blob, digest map or log', async () => {
    const ctx = context(
      `secret-${isolation}`,
      `ARG BASE
FROM \${BASE}
# Each isolation mode runs the step itself (no cache hit from the other's build).
ENV ISOLATION=${isolation}
RUN --mount=type=secret,id=token,required \\
    --mount=type=secret,id=token,target=/etc/app/token,mode=0440,uid=1000,gid=50 \\
    --mount=type=secret,id=token,env=TOKEN \\
    --mount=type=secret,id=absent \\
    test "$(cat /run/secrets/token)" = "$TOKEN" && \\
    echo "len=$(wc -c < /run/secrets/token) $(stat -c %a:%u:%g /etc/app/token) absent=$(test -e /run/secrets/absent && echo yes || echo no)" > /seen && \\
    echo "printed: $TOKEN"
`,
    );
    const secretFile = join(work, `token-${isolation}`);
    writeFileSync(secretFile, SECRET);
    const ref = `${reg.host}/dfmount/secret-${isolation}:v1`;
    const r = await build(ctx, ref, [...iso, '--secret', `id=token,src=${secretFile}`, '--provenance', 'mode=max']);
    expect(await content(ref, 'seen')).toBe(`len=${SECRET.length} 440:1000:50 absent=no\n`);
    // The step printed the value: the log shows *** instead.
    expect(r.stderr + r.stdout).toContain('printed: ***');
    expect(r.stdout + r.stderr).not.toContain(SECRET);
    const layout = mkdtempSync(join(work, 'blobs-'));
    await run('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:i`]);
    const blobs = readdirSync(join(layout, 'blobs', 'sha256'));
    expect(blobs.length).toBeGreaterThan(3);
    for (const b of blobs) {
      const raw = readFileSync(join(layout, 'blobs', 'sha256', b));
      const text =
        b && raw[0] === 0x1f ? (await run('sh', ['-c', `zcat ${join(layout, 'blobs', 'sha256', b)}`])).stdout : raw.toString('latin1');
      expect(text.includes(SECRET), `blob ${b}`).toBe(false);
    }
    const view = await imageView(ref);
    expect(Object.keys(view.tree).filter((p) => p.startsWith('/run') || p.startsWith('/etc/app'))).toEqual([]);
    // The secret also comes from an environment variable; a missing required one fails before any work.
    const env = await build(ctx, `${reg.host}/dfmount/secret-${isolation}:env`, [...iso, '--secret', 'id=token,env=MY_TOKEN'], {
      MY_TOKEN: SECRET,
    });
    expect(env.stdout + env.stderr).not.toContain(SECRET);
    const missing = await cli([
      'build',
      '-f',
      join(ctx, 'Dockerfile'),
      '--build-arg',
      `BASE=${base}`,
      '-t',
      `${reg.host}/dfmount/nosecret:v1`,
      '--push',
      '--cache-dir',
      join(work, 'cache'),
      ctx,
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/Dockerfile:5:1: RUN: --mount=type=secret,id=token,required: the required secret "token" was not given/);
    const tags = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/dfmount/nosecret`], { allowFail: true });
    expect(tags.code).not.toBe(0);
  });

  it('type=bind from a stage and the context: read-only by default, rw writes discarded; type=tmpfs is empty', async () => {
    const ctx = context(
      `bind-${isolation}`,
      `ARG BASE
FROM \${BASE} AS tools
RUN mkdir -p /opt/tools && echo from-stage > /opt/tools/tool.txt

FROM \${BASE}
ENV ISOLATION=${isolation}
RUN --mount=type=bind,from=tools,source=/opt/tools,target=/mnt/tools \\
    --mount=type=bind,source=src,target=/mnt/src \\
    --mount=type=bind,source=src,target=/mnt/rw,rw \\
    --mount=type=tmpfs,target=/mnt/tmp,size=1m \\
    { cat /mnt/tools/tool.txt; cat /mnt/src/a.txt; \\
      touch /mnt/src/new 2>/dev/null && echo src-writable || echo src-readonly; \\
      touch /mnt/tools/new 2>/dev/null && echo stage-writable || echo stage-readonly; \\
      echo changed > /mnt/rw/a.txt && cat /mnt/rw/a.txt; \\
      ls -A /mnt/tmp | wc -l; echo scratch > /mnt/tmp/x; } > /result
`,
      { 'src/a.txt': 'from-context\n' },
    );
    const ref = `${reg.host}/dfmount/bind-${isolation}:v1`;
    const first = await build(ctx, ref, iso);
    expect(await content(ref, 'result')).toBe('from-stage\nfrom-context\nsrc-readonly\nstage-readonly\nchanged\n0\n');
    // The rw write went to a copy: the context is as it was.
    expect(readFileSync(join(ctx, 'src', 'a.txt'), 'utf8')).toBe('from-context\n');
    const view = await imageView(ref);
    expect(Object.keys(view.tree).filter((p) => p.startsWith('/mnt'))).toEqual([]);
    // A bind's content is part of the key: changing the bound context file runs the step again.
    writeFileSync(join(ctx, 'src', 'a.txt'), 'edited\n');
    const second = await build(ctx, `${reg.host}/dfmount/bind-${isolation}:v2`, iso);
    expect(second.digest).not.toBe(first.digest);
    expect((await content(`${reg.host}/dfmount/bind-${isolation}:v2`, 'result')).split('\n')[1]).toBe('edited');
  });
});

describe('RUN --mount: bad options', () => {
  it('names Dockerfile:LINE:COL and the option, before any work', async () => {
    const ctx = context(
      'bad',
      `ARG BASE
FROM \${BASE}
RUN --mount=type=cache,target=/c,sharing=sometimes true
RUN --mount=type=bind,target=/x,colour=red true
RUN --mount=type=tmpfs true
RUN --mount=type=ssh true
`,
    );
    const r = await cli([
      'build',
      '-f',
      join(ctx, 'Dockerfile'),
      '--build-arg',
      `BASE=${base}`,
      '-t',
      `${reg.host}/dfmount/bad:v1`,
      '--push',
      '--cache-dir',
      join(work, 'cache'),
      ctx,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /Dockerfile:3:1: RUN: --mount=type=cache,target=\/c,sharing=sometimes: sharing must be shared, private or locked/,
    );
    expect(r.stderr).toMatch(/Dockerfile:4:1: RUN: .*unknown option "colour" for type=bind/);
    expect(r.stderr).toMatch(/Dockerfile:5:1: RUN: .*needs target=PATH/);
    expect(r.stderr).toMatch(/Dockerfile:6:1: RUN: .*unknown type "ssh"/);
  });
});
