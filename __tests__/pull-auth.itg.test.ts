/**
 * `oci-build pull` credentials, as for build: a registry with htpasswd auth refuses an anonymous
 * pull (the error names the host's credentials to check) and serves one with OCI_BUILD_* or a
 * Docker config's `auths`; an unreachable registry says to check the network.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../src/registry/client.js';
import { credentialsFrom } from '../src/registry/credentials.js';
import { cli } from './helpers/cli.js';
import { run } from './helpers/exec.js';
import { captureLogger, imageOf, pushDirect, randomLayer } from './helpers/publish-fixture.js';
import { freePort, startRegistry, type TestRegistry } from './helpers/registry.js';

let work: string;
let reg: TestRegistry;
let ref: string;
const USER = 'puller';
const PASSWORD = 'pull-secret-7c1f';

function pull(args: string[], env: NodeJS.ProcessEnv) {
  const base: NodeJS.ProcessEnv = { ...process.env, OCI_BUILD_PROGRESS: 'plain', DOCKER_CONFIG: join(work, 'no-docker-config') };
  for (const k of ['OCI_BUILD_REGISTRY', 'OCI_BUILD_USERNAME', 'OCI_BUILD_PASSWORD']) delete base[k];
  return cli(['pull', ...args, '--cache-dir', mkdtempSync(join(work, 'cache-'))], { env: { ...base, ...env } });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'oci-build-pull-auth-'));
  const htpasswd = join(work, 'htpasswd');
  writeFileSync(htpasswd, execFileSync('htpasswd', ['-Bbn', USER, PASSWORD], { encoding: 'utf8' }));
  reg = await startRegistry({ authYaml: `  htpasswd:\n    realm: pull-test\n    path: ${htpasswd}` });
  const client = new RegistryClient({
    logger: captureLogger(),
    credentials: credentialsFrom({ explicit: { [reg.host]: { username: USER, password: PASSWORD } }, dockerConfigPath: null }),
  });
  const layers = [randomLayer(64 * 1024)];
  await pushDirect(client, { registry: reg.host, repository: 'private/app' }, imageOf(layers, 'auth'), layers, ['v1']);
  await client.close();
  ref = `${reg.host}/private/app:v1`;
});

afterAll(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('pull credentials', () => {
  it('without credentials: fails naming the image and the host whose credentials to check', async () => {
    const r = await pull([ref, '--output', `oci:${join(work, 'anon')}`], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(ref);
    expect(r.stderr).toMatch(new RegExp(`check: the credentials for ${reg.host.replace(/\./g, '\\.')}`));
  });

  it('with OCI_BUILD_REGISTRY/USERNAME/PASSWORD', async () => {
    const out = join(work, 'env');
    const r = await pull([ref, '--output', `oci:${out}`], {
      OCI_BUILD_REGISTRY: reg.host,
      OCI_BUILD_USERNAME: USER,
      OCI_BUILD_PASSWORD: PASSWORD,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).not.toContain(PASSWORD);
    await run('skopeo', ['inspect', `oci:${out}:v1`]);
  });

  it('with a Docker config', async () => {
    const dir = join(work, 'docker');
    execFileSync('mkdir', ['-p', dir]);
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }),
    );
    const r = await pull([ref, '--output', `oci:${join(work, 'dockercfg')}`], { DOCKER_CONFIG: dir });
    expect(r.code, r.stderr).toBe(0);
  });

  it('an unreachable registry: says to check the network', async () => {
    const host = `127.0.0.1:${await freePort()}`;
    const r = await pull([`${host}/x/y:v1`, '--output', `oci:${join(work, 'down')}`], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${host}/x/y:v1`);
    expect(r.stderr).toMatch(/check: the network/);
  }, 240_000);
});
