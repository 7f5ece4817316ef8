import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushDebianBase } from './helpers/debian-base.js';
import { run } from './helpers/exec.js';
import { cli, ROOT } from './helpers/cli.js';

/**
 * examples/coop built for real (issue 5): a debootstrapped Debian 12 base in the local registry,
 * apt-get install from Debian's mirror in a run: step, agent CLIs installed by run: steps, a
 * stage compiling coopmux with the toolchain of `empty`, then every image run with podman.
 */

let reg: TestRegistry;
let work: string;
let map: Record<string, { digest: string; ref: string; tags: string[] }>;
let log = '';
const podmanRefs: string[] = [];

async function podman(ref: string, args: string[], extra: string[] = []): Promise<string> {
  podmanRefs.push(ref);
  const r = await run('podman', ['run', '--rm', '--network', 'none', '--tls-verify=false', ...extra, ref, ...args], { timeoutMs: 600_000 });
  return r.stdout;
}

async function config(ref: string): Promise<{ config: Record<string, unknown>; rootfs: { diff_ids: string[] } }> {
  return JSON.parse((await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${ref}`])).stdout);
}

beforeAll(async () => {
  reg = await startRegistry();
  await pushDebianBase(reg.host);
  work = mkdtempSync(join(tmpdir(), 'oci-build-coop-'));
}, 1_200_000);

afterAll(async () => {
  for (const r of new Set(podmanRefs)) await run('podman', ['rmi', '-f', r], { allowFail: true });
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('examples/coop', () => {
  it('builds the image set (apt in a run: step) and pushes it; the build stage is not pushed', async () => {
    const t0 = Date.now();
    const r = await cli(
      [
        'build',
        '--config',
        resolve(ROOT, 'examples/coop/oci-build.yml'),
        '--push',
        '--tag',
        'latest',
        '--digest-map',
        join(work, 'digests.json'),
        '--cache-dir',
        join(work, 'cache'),
      ],
      {
        env: {
          ...process.env,
          BASE: `${reg.host}/base/debian:bookworm`,
          REGISTRY: reg.host,
          OWNER: 'coop-test',
          SOURCE_DATE_EPOCH: '1700000000',
        },
      },
    );
    log = r.stderr;
    expect(r.code, r.stderr.slice(-6000)).toBe(0);
    map = JSON.parse(readFileSync(join(work, 'digests.json'), 'utf8'));
    expect(Object.keys(map).sort()).toEqual(['claude', 'claudeless', 'coopmux', 'empty', 'gemini']);
    const tags = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/coop-test/coop-build`], { allowFail: true });
    expect(tags.code).not.toBe(0); // the repository does not exist
    // The Debian base is extracted once; the variants from empty copy its rootfs.
    expect(log.match(/rootfs: extracted base layer 1 of 1/g)).toHaveLength(1);
    console.log(`coop example built and pushed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 1_500_000);

  it('empty runs git, jq and the coop entrypoint', async () => {
    const ref = `${reg.host}/coop-test/coop-empty:latest`;
    // (Each podman run copies the whole image with the vfs driver: few runs, several checks each.)
    expect(await podman(ref, [])).toContain('coop 0.1.0 serving agent=none');
    const tools = await podman(
      ref,
      [
        '-c',
        'git --version; jq --version; python3 --version; rg --version | head -1; fdfind --version; tree --version; curl --version | head -1; ssh -V 2>&1; gcc --version | head -1; make --version | head -1; id; pwd',
      ],
      ['--entrypoint', '/bin/sh'],
    );
    expect(tools).toMatch(/^git version 2\./m);
    expect(tools).toMatch(/^jq-1\./m);
    for (const t of [
      'Python 3.11',
      'ripgrep',
      'fdfind',
      'tree v',
      'curl 7',
      'OpenSSH',
      'gcc',
      'GNU Make',
      'uid=1000(coop) gid=1000(coop)',
      '/home/coop',
    ])
      expect(tools).toContain(t);
  }, 600_000);

  it('what run: steps removed is absent, and a file made by run: as coop belongs to coop', async () => {
    const out = await podman(
      `${reg.host}/coop-test/coop-claude:latest`,
      [
        '-c',
        [
          'test ! -e /tmp/claude-cli && echo installer-gone',
          'ls -A /var/lib/apt/lists | wc -l',
          'test ! -e /var/log/dpkg.log && test ! -e /var/cache/ldconfig/aux-cache && echo logs-gone',
          'stat -c "%n %U:%G %a" /home/coop /home/coop/.coop /home/coop/.coop/config.toml',
          'cat /home/coop/.coop/config.toml',
          'test ! -s /etc/resolv.conf && echo resolv-empty',
          'coop serve',
        ].join('; '),
      ],
      ['--entrypoint', '/bin/sh'],
    );
    const lines = out.trim().split('\n');
    expect(lines).toContain('installer-gone');
    expect(lines).toContain('0');
    expect(lines).toContain('logs-gone');
    expect(lines).toContain('/home/coop coop:coop 755');
    expect(lines).toContain('/home/coop/.coop coop:coop 755');
    expect(lines).toContain('/home/coop/.coop/config.toml coop:coop 644');
    expect(lines).toContain('agent = "none"');
    expect(lines).toContain('resolv-empty'); // the host's resolv.conf was mounted over, never copied in
    expect(out).toContain('coop 0.1.0 serving agent=claude scenarios=none');
    expect(lines).toContain('claude-cli 1.0.0 (stand-in)');
  }, 600_000);

  it("claude, gemini and claudeless are built on empty's layers, with their own settings", async () => {
    const empty = await config(map.empty!.ref);
    for (const v of ['claude', 'gemini', 'claudeless']) {
      const c = await config(map[v]!.ref);
      expect(c.rootfs.diff_ids.slice(0, empty.rootfs.diff_ids.length)).toEqual(empty.rootfs.diff_ids);
    }
    const gemini = await config(map.gemini!.ref);
    expect(gemini.config.Env).toContain('COOP_AGENT=gemini');
    expect(gemini.config.User).toBe('coop');
  }, 600_000);

  it('claudeless has the scenarios; coopmux has the compiled binary, kubectl and its launch script', async () => {
    // claudeless: its own layer, read straight from the registry (a podman run would copy the whole image).
    const manifest = JSON.parse(
      (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${map.claudeless!.ref}`])).stdout,
    ) as { layers: { digest: string }[] };
    const res = await fetch(`${reg.url}/v2/coop-test/coop-claudeless/blobs/${manifest.layers.at(-1)!.digest}`);
    const blob = join(work, 'claudeless-layer.tar.gz');
    writeFileSync(blob, Buffer.from(await res.arrayBuffer()));
    const listing = (await run('tar', ['--numeric-owner', '-tzvf', blob])).stdout;
    expect(listing).toMatch(/-rw-r--r-- 1000\/1000 .* opt\/coop\/scenarios\/login\.yml/);
    expect(listing).toMatch(/-rw-r--r-- 1000\/1000 .* opt\/coop\/scenarios\/search\.yml/);
    expect((await config(map.claudeless!.ref)).config.Env).toContain('COOP_SCENARIOS=/opt/coop/scenarios');
    const mux = await podman(`${reg.host}/coop-test/coop-coopmux:latest`, ['a', 'b']);
    expect(mux).toContain('Client Version: v1.30.0-standin');
    expect(mux).toContain('coopmux 0.1.0 muxing 2 session(s)');
  }, 600_000);
});
