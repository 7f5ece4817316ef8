import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { pushDebianBase, TEST_CACHE } from './helpers/debian-base.js';
import { run } from './helpers/exec.js';
import { cli, ROOT } from './helpers/cli.js';

/**
 * examples/demon built for real (issue 13): a Cargo workspace of three servers, each a
 * multi-stage Dockerfile FROM the build file's rust-builder variant (Debian's cargo installed
 * with apt-get on a debootstrapped Debian base), built as one component matrix into
 * docker-image-digests.json, pushed to a real docker-registry, each image run with podman.
 * The registry is reached through a recording proxy, to count the bytes a rebuild uploads.
 */

const COMPONENTS = { 'operate-ui': 8080, runtime: 8081, engine: 8082 } as const;
const SHA = 'abc1234def5678abc1234def5678abc1234def56';

let reg: TestRegistry;
let proxy: FaultProxy;
let apt: { url: string; stop(): Promise<void> };
let work: string;
let first: Awaited<ReturnType<typeof build>>;
const podmanRefs: string[] = [];

type DigestMap = Record<string, { digest: string; ref: string; tags: string[]; image: string }>;

async function build(): Promise<{
  map: DigestMap;
  layers: { variant: string; createdBy: string; origin: string }[];
  rootfs: { layersExtracted: number; clones: number };
}> {
  const r = await cli(
    [
      'build',
      '--config',
      resolve(ROOT, 'examples/demon/oci-build.yml'),
      '--push',
      '--digest-map',
      join(work, 'docker-image-digests.json'),
      '--cache-dir',
      join(work, 'cache'),
      '--verbose',
    ],
    {
      env: {
        ...process.env,
        DEBIAN_BASE: `${reg.host}/base/debian:bookworm`,
        REGISTRY: proxy.host,
        OWNER: 'demon-test',
        APT_PROXY: apt.url,
        SOURCE_DATE_EPOCH: '1700000000',
        // A tag push, as the GitHub context of a release workflow gives it.
        GITHUB_EVENT_NAME: 'push',
        GITHUB_REF: 'refs/tags/v1.4.2',
        GITHUB_SHA: SHA,
        GITHUB_REPOSITORY: 'acme/demon',
        GITHUB_SERVER_URL: 'https://github.com',
      },
    },
  );
  expect(r.code, r.stderr.slice(-6000)).toBe(0);
  const map = JSON.parse(readFileSync(join(work, 'docker-image-digests.json'), 'utf8')) as DigestMap;
  const out = JSON.parse(r.stdout);
  return { map, layers: out.layers, rootfs: out.rootfs };
}

/** The digest as the registry serves it (skopeo, straight to the registry). */
async function inspect(ref: string): Promise<{ Digest: string }> {
  return JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])).stdout);
}

/** What pulling the image downloads: its config and compressed layers, from the manifest. */
async function pulledBytes(ref: string): Promise<number> {
  const m = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout) as {
    config: { size: number };
    layers: { size: number }[];
  };
  return m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
}

beforeAll(async () => {
  reg = await startRegistry();
  proxy = await startFaultProxy(reg.host);
  await pushDebianBase(reg.host);
  work = mkdtempSync(join(tmpdir(), 'oci-build-demon-'));
  // apt's downloads kept on this machine across runs (the mirror is slow to time and to wait for).
  const { startAptProxy } = (await import(resolve(ROOT, 'bench/lib/apt-proxy.mjs'))) as {
    startAptProxy(dir: string): Promise<{ url: string; stop(): Promise<void> }>;
  };
  apt = await startAptProxy(join(TEST_CACHE, 'apt-cache'));
  first = await build();
}, 2_400_000);

afterAll(async () => {
  for (const r of new Set(podmanRefs)) await run('podman', ['rmi', '-f', r], { allowFail: true });
  await apt?.stop();
  await proxy?.close();
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('examples/demon', () => {
  it('builds the three Dockerfiles into one digest map with sha/semver/latest tags, as the registry has them', async () => {
    const { map } = first;
    expect(Object.keys(map).sort()).toEqual(Object.keys(COMPONENTS).sort());
    for (const name of Object.keys(COMPONENTS)) {
      const repo = `${proxy.host}/demon-test/demon-${name}`;
      // The build file's rules, plus metadata-action's default type=ref,event=tag (v1.4.2): no global tags are given.
      expect(map[name]!.tags.sort()).toEqual([`${repo}:1.4`, `${repo}:1.4.2`, `${repo}:latest`, `${repo}:sha-abc1234`, `${repo}:v1.4.2`]);
      for (const tag of ['1.4.2', 'latest', 'sha-abc1234'])
        expect((await inspect(`${reg.host}/demon-test/demon-${name}:${tag}`)).Digest).toBe(map[name]!.digest);
    }
    // The shared builder is a stage: built once, never pushed.
    const builder = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/demon-test/demon-rust-builder`], {
      allowFail: true,
    });
    expect(builder.code).not.toBe(0);
    // The apt-get install layer is written once; the components' builder stages inherit it ('from').
    const runs = first.layers.filter((l) => /apt-get install/.test(l.createdBy) && l.origin === 'built');
    expect(runs.map((l) => l.variant)).toEqual(['rust-builder']);
  });

  it('each image is under 100 MB, runs as a non-root user and answers on its port', async () => {
    for (const [name, port] of Object.entries(COMPONENTS)) {
      const ref = `${reg.host}/demon-test/demon-${name}:1.4.2`;
      const size = await pulledBytes(ref);
      expect(size, `${name}: ${size} bytes`).toBeLessThan(100 * 1024 * 1024);
      const config = JSON.parse((await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${ref}`])).stdout).config;
      expect(config).toMatchObject({ User: 'demon', Cmd: [`/usr/local/bin/${name}`], ExposedPorts: { [`${port}/tcp`]: {} } });
      podmanRefs.push(ref);
      // podman runs with --network none here: the server and a client (bash's /dev/tcp) in one container.
      const client = [
        `/usr/local/bin/${name} & for i in $(seq 50); do`,
        `  if exec 3<>/dev/tcp/127.0.0.1/${port}; then printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3; exit 0; fi 2>/dev/null`,
        '  sleep 0.1; done; exit 1',
      ].join('\n');
      const r = await run('podman', ['run', '--rm', '--network', 'none', '--tls-verify=false', ref, 'bash', '-c', `id -un; ${client}`], {
        timeoutMs: 300_000,
      });
      expect(r.stdout).toMatch(new RegExp(`^demon\\n[\\s\\S]*HTTP/1.0 200 OK[\\s\\S]*\\r\\n\\r\\n${name} 0.1.0 ok\\n$`));
    }
  }, 600_000);

  it('an unchanged rebuild runs nothing, uploads no blob byte and gives the same digests', async () => {
    proxy.reset();
    const again = await build();
    const uploads = proxy.requests.filter((q) => /\/blobs\/uploads\//.test(q.path));
    expect(uploads.reduce((n, q) => n + q.requestBytes, 0)).toBe(0);
    // Every layer comes from the cache (WORKDIR's too), and no file system is extracted: the
    // COPY --from=builder hits are found by their alias, without the builder stage's files.
    expect(again.layers.filter((l) => ['built', 'speculated'].includes(l.origin))).toEqual([]);
    expect(again.rootfs).toEqual({ layersExtracted: 0, clones: 0 });
    expect(again.layers.filter((l) => /^(RUN|COPY) /.test(l.createdBy) && l.origin === 'cached').length).toBeGreaterThan(0);
    for (const name of Object.keys(COMPONENTS)) expect(again.map[name]!.digest).toBe(first.map[name]!.digest);
  }, 1_200_000);
});
