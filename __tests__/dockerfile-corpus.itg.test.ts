import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, cpSync, existsSync, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';
import { imageView, type ImageView } from './helpers/image-tree.js';

/**
 * The Dockerfile corpus: each case under fixtures/dockerfiles/ is built by `buildah bud` and by
 * `oci-build build -f`, both pushed to a local registry, unpacked, and their file trees (path,
 * type, mode, owner, size, link target, content hash) and configs compared. Timestamps are not
 * compared (ours are SOURCE_DATE_EPOCH by design).
 *
 * case.json (optional): args (build args), target, setup (modes and links git cannot keep),
 * buildkit (paths and config keys where buildah 1.28 differs from BuildKit's documented
 * behaviour: we follow BuildKit, and the case says what BuildKit gives).
 */

interface Case {
  args?: Record<string, string>;
  /** buildah's image format (docker: it keeps HEALTHCHECK and ONBUILD, which its OCI format drops). */
  format?: 'oci' | 'docker';
  target?: string;
  setup?: { chmod?: Record<string, string>; hardlink?: Record<string, string>; symlink?: Record<string, string>; sh?: string };
  buildkit?: { tree?: Record<string, unknown>; config?: Record<string, unknown>; why: string };
}

const FIXTURES = join(import.meta.dirname, 'fixtures', 'dockerfiles');
const cases = readdirSync(FIXTURES)
  .filter((d) => existsSync(join(FIXTURES, d, 'Dockerfile')))
  .sort();

let reg: TestRegistry;
let base: string;
/** Files for ADD <url> cases, at HTTP_URL (a build arg of every case). */
const SERVED: Record<string, Buffer> = {
  '/tool.sh': Buffer.from('#!/bin/sh\necho tool\n'),
  '/data.tar.gz': gzipSync(Buffer.from('a download is never unpacked\n')),
};
let http: Server;
let httpUrl: string;
const work = mkdtempSync(join(tmpdir(), 'oci-build-corpus-'));

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'corpus/busybox')).single;
  http = createServer((req, res) => {
    const body = SERVED[req.url ?? ''];
    res.writeHead(body ? 200 : 404).end(body ?? 'not found');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
});
afterAll(async () => {
  http?.close();
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function prepare(name: string, c: Case): Promise<string> {
  const ctx = join(work, name);
  cpSync(join(FIXTURES, name), ctx, { recursive: true, verbatimSymlinks: true });
  rmSync(join(ctx, 'case.json'), { force: true });
  for (const [p, mode] of Object.entries(c.setup?.chmod ?? {})) chmodSync(join(ctx, p), parseInt(mode, 8));
  for (const [p, target] of Object.entries(c.setup?.hardlink ?? {})) linkSync(join(ctx, target), join(ctx, p));
  for (const [p, target] of Object.entries(c.setup?.symlink ?? {})) symlinkSync(target, join(ctx, p));
  if (c.setup?.sh) await run('sh', ['-ec', c.setup.sh], { cwd: ctx });
  return ctx;
}

async function withBuildah(name: string, ctx: string, c: Case): Promise<ImageView> {
  const local = `localhost/oci-build-corpus-${name}:${process.pid}`;
  const args = Object.entries({ BASE: base, HTTP_URL: httpUrl, ...c.args }).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  await run(
    'buildah',
    [
      'bud',
      '--quiet',
      '--tls-verify=false',
      '--network',
      'none',
      '--format',
      c.format ?? 'oci',
      ...args,
      ...(c.target ? ['--target', c.target] : []),
      '-f',
      join(ctx, 'Dockerfile'),
      '-t',
      local,
      ctx,
    ],
    { timeoutMs: 240_000 },
  );
  try {
    await run('buildah', ['push', '--quiet', '--tls-verify=false', local, `docker://${reg.host}/corpus/${name}:buildah`]);
  } finally {
    await run('buildah', ['rmi', '-f', local], { allowFail: true });
  }
  const view = await imageView(`${reg.host}/corpus/${name}:buildah`);
  // buildah's RUN leaves its mount points and an empty /etc/hostname behind (BuildKit does not).
  for (const p of ['/dev', '/proc', '/sys', '/run', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf']) {
    const n = view.tree[p];
    const empty = n?.type === 'dir' ? !Object.keys(view.tree).some((k) => k.startsWith(`${p}/`)) : n?.size === 0;
    if (n && empty) delete view.tree[p];
  }
  return view;
}

async function withOciBuild(name: string, ctx: string, c: Case): Promise<ImageView> {
  const args = Object.entries({ BASE: base, HTTP_URL: httpUrl, ...c.args }).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
  const r = await cli([
    'build',
    '-f',
    join(ctx, 'Dockerfile'),
    ...args,
    ...(c.target ? ['--target', c.target] : []),
    '-t',
    `${reg.host}/corpus/${name}:ours`,
    '--push',
    '--cache-dir',
    join(work, 'cache'),
    ctx,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return imageView(`${reg.host}/corpus/${name}:ours`);
}

describe('Dockerfile corpus against buildah bud', () => {
  it('has cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40);
  });
  it.each(cases)('%s', async (name) => {
    const file = join(FIXTURES, name, 'case.json');
    const c: Case = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Case) : {};
    const ctx = await prepare(name, c);
    const theirs = await withBuildah(name, ctx, c);
    const ours = await withOciBuild(name, ctx, c);
    // Where buildah 1.28 is not BuildKit, the case states BuildKit's result for those paths/keys.
    for (const [p, node] of Object.entries(c.buildkit?.tree ?? {})) {
      if (node === null) delete theirs.tree[p];
      else theirs.tree[p] = node as ImageView['tree'][string];
    }
    Object.assign(theirs.config, c.buildkit?.config ?? {});
    expect(ours.tree).toEqual(theirs.tree);
    expect(ours.config).toEqual(theirs.config);
  });
});
