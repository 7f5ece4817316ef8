import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRegistry, type TestRegistry } from './helpers/registry.js';
import { cli } from './helpers/cli.js';

/**
 * Issue 15: every registry the build pulls a base from or pushes to is asked once (GET /v2/)
 * before any work; one that cannot be reached stops the build naming the host and what to check,
 * with nothing built, cached, written or pushed. A 401 counts as reachable; a build that needs
 * no registry asks none.
 */

let ctx: string;
let reg: TestRegistry;
let unauthorized: Server;
let unauthorizedHost: string;
let closedHost: string;

const buildFile = (base: string, image: string) => `version: 1
variants:
  app:
    base: ${base}
    image: ${image}
    steps:
      - copy: data/
        to: /data/
`;

beforeAll(async () => {
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-reach-'));
  mkdirSync(join(ctx, 'data'));
  writeFileSync(join(ctx, 'data/a.txt'), 'a\n');
  reg = await startRegistry();
  closedHost = `127.0.0.1:${await freePort()}`;
  // A registry that wants credentials: 401 on /v2/ (and on everything else).
  unauthorized = createServer((_req, res) => {
    res.writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
  });
  await new Promise<void>((r) => unauthorized.listen(0, '127.0.0.1', () => r()));
  unauthorizedHost = `127.0.0.1:${(unauthorized.address() as { port: number }).port}`;
});

afterAll(async () => {
  unauthorized?.close();
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

/** Builds `file` with its own cache and an OCI layout output; returns the result and what was left behind. */
async function buildWith(name: string, base: string, image: string, push: boolean) {
  const file = join(ctx, `${name}.yml`);
  writeFileSync(file, buildFile(base, image));
  const cache = join(ctx, `${name}-cache`);
  const layout = join(ctx, `${name}-layout`);
  const r = await cli(['build', '--config', file, ...(push ? ['--push'] : []), '--cache-dir', cache, '--output', `oci:${layout}`]);
  const blobs = existsSync(join(cache, 'blobs')) ? readdirSync(join(cache, 'blobs'), { recursive: true }).length : 0;
  return { ...r, blobs, layout: existsSync(layout) };
}

describe('registry reachability before any work', () => {
  it('a closed port: names the host, says the connection was refused, builds nothing', async () => {
    const r = await buildWith('closed', 'scratch', `${closedHost}/reach/app`, true);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`registry ${closedHost} (needed for the push of variant app to ${closedHost}/reach/app) is not reachable`);
    expect(r.stderr).toContain(`the connection to http://${closedHost}/v2/ was refused: check that the registry runs and the port`);
    expect(r.stderr).toContain('nothing was built or pushed, and no tag was moved');
    expect(r.blobs).toBe(0);
    expect(r.layout).toBe(false);
  });

  it('a host that does not resolve: names it and says to check the name, DNS and network', async () => {
    const r = await buildWith('invalid', 'registry.invalid/library/busybox:1', `${reg.host}/reach/app`, true);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'registry registry.invalid (needed for the base registry.invalid/library/busybox:1 of variant app) is not reachable',
    );
    expect(r.stderr).toContain('the host name does not resolve: check its spelling, DNS and the network');
    expect(r.blobs).toBe(0);
    expect(r.layout).toBe(false);
  });

  it('a 401 counts as reachable: the build goes on to the registry client (which then asks for credentials)', async () => {
    const r = await buildWith('unauthorized', 'scratch', `${unauthorizedHost}/reach/app`, true);
    expect(r.stderr).not.toContain('is not reachable');
    // Past the check: the layer was built before the push met the 401.
    expect(r.blobs).toBeGreaterThan(0);
  });

  it('a build that needs no registry asks none (an unreachable image repository without --push is fine)', async () => {
    const r = await buildWith('local', 'scratch', `${closedHost}/reach/app`, false);
    expect(r.code, r.stderr).toBe(0);
    expect(r.layout).toBe(true);
  });
});
