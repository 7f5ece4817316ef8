/**
 * Progress as users see it: `oci-build pull` in a pseudo-terminal (util-linux `script`) redraws
 * its bars in place; the same pull in a pipe prints one line per blob and a few more. A build shows
 * its layer being compressed and its uploads the same two ways.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/registry/client.js';
import { CLI } from './helpers/cli.js';
import { run } from './helpers/exec.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { captureLogger, imageOf, pushDirect, randomLayer } from './helpers/publish-fixture.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

let work: string;
let reg: TestRegistry;
let proxy: FaultProxy;
const LAYERS = 6;
const ESC = String.fromCharCode(27);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'oci-build-progress-'));
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.host);
  const client = new RegistryClient({ logger: captureLogger() });
  const layers = Array.from({ length: LAYERS }, () => randomLayer(2 << 20));
  await pushDirect(client, { registry: reg.host, repository: 'test/progress' }, imageOf(layers, 'progress'), layers, ['v1']);
  await client.close();
});

afterAll(async () => {
  await proxy?.close();
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Every blob download stalls a moment half-way, so bars are on screen for a few redraws. */
function slowBlobs(): void {
  proxy.reset();
  proxy.add({ method: 'GET', path: /\/blobs\/sha256:/, count: Infinity, fault: { kind: 'delay-body', ms: 1500, afterBytes: 1 << 20 } });
}

function env(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm', ...extra };
  delete e.CI;
  delete e.OCI_BUILD_PROGRESS;
  return e;
}

describe('progress output', () => {
  it('redraws live bars in a terminal', async () => {
    slowBlobs();
    const out = join(work, 'tty-layout');
    const cmd = `${process.execPath} ${CLI} pull ${proxy.host}/test/progress:v1 --output oci:${out} --cache-dir ${join(work, 'c1')}`;
    const r = await run('script', ['-q', '-e', '-c', cmd, '/dev/null'], { env: env({}) });
    expect(r.code, r.stdout).toBe(0);
    expect(existsSync(join(out, 'index.json'))).toBe(true);
    // Bars are redrawn in place: cursor movements and carriage returns, and the byte counts.
    expect(r.stdout).toMatch(new RegExp(`${ESC}\\[\\d*[AGK]`));
    expect(r.stdout).toContain('\r');
    expect(r.stdout).toMatch(/MiB \/ 2\.00 MiB/);
  });

  it('prints a bounded number of plain lines in a pipe', async () => {
    slowBlobs();
    const out = join(work, 'pipe-layout');
    const r = await run(
      process.execPath,
      [CLI, 'pull', `${proxy.host}/test/progress:v1`, '--output', `oci:${out}`, '--cache-dir', join(work, 'c2')],
      { env: env({}) },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain(`${ESC}[`);
    const lines = r.stderr.split('\n').filter(Boolean);
    // One per layer (the config is read with the manifest), the summary, the output.
    expect(lines.length).toBe(LAYERS + 2);
  });

  it("shows a build's layers and uploads live in a terminal, and one line per upload in a pipe", async () => {
    const ctx = mkdtempSync(join(work, 'ctx-'));
    writeFileSync(join(ctx, 'data.bin'), randomBytes(24 << 20));
    const buildFile = (repo: string) => {
      const f = join(ctx, `${repo}.yml`);
      writeFileSync(
        f,
        `version: 1\nvariants:\n  data:\n    base: scratch\n    image: ${reg.host}/test/${repo}\n    steps:\n      - copy: data.bin\n        to: /data.bin\n`,
      );
      return f;
    };
    const args = (file: string, cache: string) => [
      'build',
      '--config',
      file,
      '--push',
      '--tag',
      'v1',
      '--no-cache',
      '--provenance',
      'false',
      '--sbom',
      'false',
      '--cache-dir',
      join(work, cache),
    ];
    const tty = await run(
      'script',
      ['-q', '-e', '-c', `${process.execPath} ${CLI} ${args(buildFile('tty'), 'b1').join(' ')} >/dev/null`, '/dev/null'],
      { env: env({}) },
    );
    expect(tty.code, tty.stdout).toBe(0);
    expect(tty.stdout).toMatch(/compressing a layer of 1 entries .*\d+% \|/);
    expect(tty.stdout).toContain('\r');
    const piped = await run(process.execPath, [CLI, ...args(buildFile('pipe'), 'b2')], { env: env({}) });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stderr).not.toContain(`${ESC}[`);
    const lines = piped.stderr.split('\n').filter(Boolean);
    // One line per uploaded blob (the layer and the config), and a dozen lines in all, none per chunk.
    expect(lines.filter((l) => l.startsWith('push test/pipe '))).toHaveLength(2);
    expect(lines.length).toBeLessThan(15);
  });
});
