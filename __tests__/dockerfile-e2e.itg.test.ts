import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';

/**
 * `oci-build build -f Dockerfile` end to end: a multi-stage Dockerfile with build args, a target,
 * heredocs (BuildKit's behaviour: buildah 1.28 has none) and RUN --network=none is built, pushed
 * to a real registry and run with podman; a rebuild gives the same digest; changing one context
 * file changes only the layers from its COPY on; a Dockerfile with an unsupported instruction
 * fails before anything is pushed, naming Dockerfile:LINE:COL.
 */

let reg: TestRegistry;
let base: string;
const work = mkdtempSync(join(tmpdir(), 'oci-build-dfe2e-'));
const ctx = join(work, 'ctx');
const podmanRefs: string[] = [];

const DOCKERFILE = `# syntax=docker/dockerfile:1
ARG BASE
FROM \${BASE} AS build
ARG GREETING=hello
RUN --network=none <<EOF
mkdir -p /out
echo "$GREETING from a heredoc" > /out/greeting
ls /sys/class/net > /out/net
date +%s%N > /out/stamp
EOF
COPY <<"CONF" /out/app.conf
name=$NOT_EXPANDED
CONF

FROM \${BASE} AS unused
RUN exit 1

FROM \${BASE} AS app
COPY --from=build /out/ /opt/app/
COPY first.txt second.txt /opt/app/data/
WORKDIR /opt/app
ENV APP_HOME=/opt/app
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat greeting app.conf data/first.txt data/second.txt net; echo home=$APP_HOME; pwd"]
`;

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'dfe2e/busybox')).single;
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'Dockerfile'), DOCKERFILE);
  writeFileSync(join(ctx, 'first.txt'), 'first\n');
  writeFileSync(join(ctx, 'second.txt'), 'second\n');
});
afterAll(async () => {
  for (const r of podmanRefs) await run('podman', ['rmi', '-f', r], { allowFail: true });
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function build(tag: string, extra: string[] = []): Promise<{ digest: string; layers: string[] }> {
  const ref = `${reg.host}/dfe2e/app:${tag}`;
  const r = await cli([
    'build',
    '-f',
    join(ctx, 'Dockerfile'),
    '--build-arg',
    `BASE=${base}`,
    '--build-arg',
    'GREETING=hi',
    '--target',
    'APP',
    '-t',
    ref,
    '--push',
    '--cache-dir',
    join(work, 'cache'),
    ...extra,
    ctx,
  ]);
  expect(r.code, r.stderr).toBe(0);
  const map = JSON.parse(r.stdout) as Record<string, { digest: string; tags: string[] }>;
  expect(Object.keys(map)).toEqual(['app']);
  expect(map.app!.tags).toEqual([ref]);
  const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout) as {
    layers: { digest: string }[];
  };
  return { digest: map.app!.digest, layers: manifest.layers.map((l) => l.digest) };
}

describe('oci-build build -f Dockerfile', () => {
  it("builds the target, pushes it, and podman runs it with the Dockerfile's config", async () => {
    const first = await build('v1');
    const ref = `${reg.host}/dfe2e/app:v1`;
    podmanRefs.push(ref);
    const out = await run('podman', ['run', '--rm', '--network', 'none', '--tls-verify=false', ref]);
    expect(out.stdout).toBe('hi from a heredoc\nname=$NOT_EXPANDED\nfirst\nsecond\nlo\nhome=/opt/app\n/opt/app\n');
    // Same inputs, same image: the RUN (which writes the time) came from the layer cache, not run again.
    expect((await build('v1-again')).digest).toBe(first.digest);
    // ... which is what made it equal: without the cache the RUN runs and the image changes.
    expect((await build('v1-nocache', ['--no-cache'])).digest).not.toBe(first.digest);
  });

  it('changing one context file changes its COPY layer and nothing before it', async () => {
    const before = await build('v2');
    writeFileSync(join(ctx, 'second.txt'), 'second, changed\n');
    const after = await build('v3');
    // base layer(s), COPY --from=build, then the COPY of the changed file (the WORKDIR exists: no layer).
    expect(after.layers.length).toBe(before.layers.length);
    expect(after.layers.slice(0, -1)).toEqual(before.layers.slice(0, -1));
    expect(after.layers.at(-1)).not.toBe(before.layers.at(-1));
  });

  it('fails before any work on an unsupported instruction, with Dockerfile:LINE:COL, and pushes nothing', async () => {
    const bad = join(work, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(
      join(bad, 'Dockerfile'),
      `FROM ${base}\nCOPY nothing-here /x\n  RUN --mount=type=secret,id=token,required cat /run/secrets/token\n`,
    );
    const r = await cli([
      'build',
      '-f',
      join(bad, 'Dockerfile'),
      '-t',
      `${reg.host}/dfe2e/bad:v1`,
      '--push',
      '--cache-dir',
      join(work, 'cache'),
      bad,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Dockerfile:2:1: COPY: copy source "nothing-here" does not exist/);
    expect(r.stderr).toMatch(
      /Dockerfile:3:3: RUN: --mount=type=secret,id=token,required: the required secret "token" was not given \(fix: /,
    );
    const tags = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/dfe2e/bad`], { allowFail: true });
    expect(tags.code).not.toBe(0);
  });
});
