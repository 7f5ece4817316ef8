/**
 * `oci-build pull` of a two-platform index (linux/amd64, linux/arm64/v8) from the real registry:
 * the requested platform's manifest, the whole index with `all`, and a platform the index lacks.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../src/oci/digest.js';
import { cli } from './helpers/cli.js';
import { run } from './helpers/exec.js';
import { pushMultiArchBase } from './helpers/base-image.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

let work: string;
let reg: TestRegistry;
let ref: string;
let index: { manifests: { digest: string; platform?: { architecture: string } }[] };
let indexDigest: string;

function pull(args: string[]) {
  return cli(['pull', ...args, '--cache-dir', mkdtempSync(join(work, 'cache-'))], { env: { ...process.env, OCI_BUILD_PROGRESS: 'plain' } });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'oci-build-pull-plat-'));
  reg = await startRegistry();
  ref = await pushMultiArchBase(reg.host, 'test/multi');
  const raw = (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout;
  index = JSON.parse(raw);
  indexDigest = sha256(Buffer.from(raw));
});

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('pull an index', () => {
  it('takes the requested platform', async () => {
    const out = join(work, 'arm64');
    const r = await pull([ref, '--platform', 'linux/arm64', '--output', `oci:${out}`]);
    expect(r.code, r.stderr).toBe(0);
    const arm = index.manifests.find((m) => m.platform?.architecture === 'arm64')!;
    const raw = (await run('skopeo', ['inspect', '--raw', `oci:${out}:latest`])).stdout;
    expect(sha256(Buffer.from(raw))).toBe(arm.digest);
    const entry = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')).manifests[0];
    expect(entry.platform.architecture).toBe('arm64');
  });

  it('keeps the whole index with --platform all', async () => {
    const out = join(work, 'all.tar');
    const r = await pull([ref, '--platform', 'all', '--output', `oci-archive:${out}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).latest.digest).toBe(indexDigest);
    for (const arch of ['amd64', 'arm64']) {
      const inspected = await run('skopeo', ['--override-arch', arch, 'inspect', `oci-archive:${out}:latest`]);
      expect(JSON.parse(inspected.stdout).Architecture).toBe(arch);
    }
  });

  it('names the platforms the index has when the requested one is missing', async () => {
    const out = join(work, 's390x');
    const r = await pull([ref, '--platform', 'linux/s390x', '--output', `oci:${out}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(ref);
    expect(r.stderr).toMatch(/linux\/amd64, linux\/arm64/);
    expect(r.stderr).toMatch(/--platform all/);
  });
});
