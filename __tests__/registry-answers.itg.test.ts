import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startFaultProxy, WRONG_DIGEST, type FaultProxy } from './helpers/fault-proxy.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';

/**
 * A blob HEAD answering 200 for something else (a wrong Content-Length, or a
 * Docker-Content-Digest naming another blob) is not taken as "the blob is present": the blob
 * is uploaded, and the push succeeds against the real registry behind the proxy.
 */

let reg: TestRegistry;
let proxy: FaultProxy;
let ctx: string;
/** The image's blobs (digest -> size), from a build into an OCI layout. */
const blobs = new Map<string, number>();

const build = () =>
  cli(
    [
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--push',
      '--tag',
      'v1',
      '--cache-dir',
      join(ctx, 'cache'),
      '--provenance',
      'false',
      '--sbom',
      'false',
    ],
    { env: { ...process.env, HOME: ctx } },
  );

function yaml(repo: string): string {
  return `version: 1
variants:
  app:
    image: ${proxy.host}/${repo}
    base: scratch
    steps:
      - file: /hello
        content: "hello\\n"
`;
}

beforeAll(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.host);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-answers-'));
  writeFileSync(join(ctx, 'oci-build.yml'), yaml('answers/probe'));
  const r = await cli([
    'build',
    '--config',
    join(ctx, 'oci-build.yml'),
    '--output',
    `oci:${join(ctx, 'layout')}`,
    '--cache-dir',
    join(ctx, 'cache'),
    '--provenance',
    'false',
    '--sbom',
    'false',
  ]);
  expect(r.code, r.stderr).toBe(0);
  const index = JSON.parse(readFileSync(join(ctx, 'layout', 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(join(ctx, 'layout', 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {
    config: { digest: string; size: number };
    layers: { digest: string; size: number }[];
  };
  for (const d of [manifest.config, ...manifest.layers]) blobs.set(d.digest, d.size);
}, 120_000);

afterAll(async () => {
  await proxy?.close();
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

async function pushedOk(repo: string): Promise<void> {
  // Straight from the registry: every blob of the tagged image is there.
  const r = await run('skopeo', [
    'copy',
    '--src-tls-verify=false',
    `docker://${reg.host}/${repo}:v1`,
    `oci:${join(ctx, repo.replace('/', '-'))}:v1`,
  ]);
  expect(r.code).toBe(0);
}

describe('blob HEAD answers that do not match', () => {
  it('a 200 with the wrong Content-Length: the blob is uploaded, the push succeeds', async () => {
    proxy.reset();
    writeFileSync(join(ctx, 'oci-build.yml'), yaml('answers/length'));
    const head = proxy.add({
      method: 'HEAD',
      path: /\/blobs\/sha256:/,
      count: Infinity,
      fault: { kind: 'status', status: 200, headers: { 'content-length': '1' } },
    });
    const r = await build();
    expect(r.code, r.stderr).toBe(0);
    expect(head.applied).toBeGreaterThanOrEqual(blobs.size);
    expect(r.stderr).toMatch(/HEAD answered 200 with Content-Length 1 \(the blob has \d+ bytes\); not taking the blob as present/);
    expect(r.stderr).toMatch(/0 already present/);
    await pushedOk('answers/length');
  });

  it('a 200 with the right length but another Docker-Content-Digest: the blob is uploaded', async () => {
    proxy.reset();
    writeFileSync(join(ctx, 'oci-build.yml'), yaml('answers/digest'));
    for (const [digest, size] of blobs) {
      proxy.add({
        method: 'HEAD',
        path: new RegExp(`/blobs/${digest}$`),
        count: Infinity,
        fault: { kind: 'status', status: 200, headers: { 'content-length': String(size), 'docker-content-digest': WRONG_DIGEST } },
      });
    }
    const r = await build();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`Docker-Content-Digest ${WRONG_DIGEST}`);
    expect(r.stderr).toMatch(/0 already present/);
    await pushedOk('answers/digest');
  });
});
