import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, chmodSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushMultiArchBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';
import { validateOci } from './helpers/oci-schema.js';

/** Issue 6: a two-platform variant with per-arch sources becomes an OCI index. */

let reg: TestRegistry;
let ctx: string;
let baseRef: string;

beforeAll(async () => {
  reg = await startRegistry();
  baseRef = await pushMultiArchBase(reg.host);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-mp-'));
  for (const arch of ['amd64', 'arm64']) {
    mkdirSync(join(ctx, 'target', arch), { recursive: true });
    writeFileSync(join(ctx, 'target', arch, 'coop'), `#!/bin/sh\necho "coop built for ${arch}, base $(cat /etc/base-arch)"\n`);
    chmodSync(join(ctx, 'target', arch, 'coop'), 0o755);
  }
  writeFileSync(
    join(ctx, 'oci-build.yml'),
    `version: 1
args: { REG: ${reg.host} }
variants:
  coop:
    image: \${REG}/mp/coop
    base: ${baseRef}
    platforms: [linux/amd64, linux/arm64]
    steps:
      - copy: target/\${arch}/coop
        to: /usr/local/bin/coop
    entrypoint: [/usr/local/bin/coop]
    annotations:
      org.opencontainers.image.description: two platforms
  tools:
    from: coop
    image: \${REG}/mp/tools
    steps:
      - file: /etc/tools
        content: tools
  plain:
    image: \${REG}/mp/plain
    base: ${baseRef}
    steps:
      - file: /etc/plain
        content: plain
`,
  );
});

afterAll(async () => {
  await run('podman', ['rmi', '-f', `${reg.host}/mp/coop:v1`], { allowFail: true });
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

async function raw(ref: string): Promise<{ text: string; digest: string }> {
  const r = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return { text: r.stdout, digest: `sha256:${createHash('sha256').update(r.stdout).digest('hex')}` };
}

/** Copies one platform out of the index and reads a file from its layers. */
async function fileForArch(ref: string, arch: string, path: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-build-arch-'));
  try {
    await run('skopeo', ['copy', '--src-tls-verify=false', '--override-arch', arch, `docker://${ref}`, `dir:${dir}`]);
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const config = JSON.parse(readFileSync(join(dir, manifest.config.digest.slice(7)), 'utf8'));
    expect(config.architecture).toBe(arch);
    let found = '';
    for (const l of manifest.layers) {
      const r = await run('tar', ['-xzOf', join(dir, l.digest.slice(7)), path.replace(/^\//, '')], { allowFail: true });
      if (r.code === 0) found = r.stdout; // the topmost layer holding it wins
    }
    return found;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type DigestMapOf = Record<string, { digest: string; mediaType: string; platforms: Record<string, { digest: string; size: number }> }>;

let singleJob: Promise<DigestMapOf> | undefined;

/**
 * The single-job build that pushes coop, tools and plain as v1: run once, by whichever test
 * needs it first, so that every test can run on its own (vitest -t) or in any order.
 */
function singleJobBuild(): Promise<DigestMapOf> {
  singleJob ??= (async () => {
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--push',
      '--tag',
      'v1',
      '--digest-map',
      join(ctx, 'map.json'),
      '--cache-dir',
      join(ctx, 'cache'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(readFileSync(join(ctx, 'map.json'), 'utf8')) as DigestMapOf;
  })();
  return singleJob;
}

describe('multi-platform variants', () => {
  it('builds one manifest per platform and pushes an OCI index', async () => {
    const map = await singleJobBuild();
    expect(map.coop!.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(Object.keys(map.coop!.platforms)).toEqual(['linux/amd64', 'linux/arm64']);
    expect(Object.keys(map.tools!.platforms)).toEqual(['linux/amd64', 'linux/arm64']);
    const index = await raw(`${reg.host}/mp/coop:v1`);
    expect(index.digest).toBe(map.coop!.digest);
    const doc = JSON.parse(index.text);
    expect(validateOci('index', doc)).toEqual([]);
    expect(
      doc.manifests.map((m: { platform: { architecture: string; os: string } }) => `${m.platform.os}/${m.platform.architecture}`),
    ).toEqual(['linux/amd64', 'linux/arm64']);
    expect(doc.manifests[0].digest).toBe(map.coop!.platforms['linux/amd64']!.digest);
    expect(doc.annotations['org.opencontainers.image.description']).toBe('two platforms');
    // Each platform's manifest names the base entry it was built on.
    for (const m of doc.manifests) {
      const manifest = JSON.parse((await raw(`${reg.host}/mp/coop@${m.digest}`)).text);
      expect(manifest.annotations['org.opencontainers.image.base.name']).toBe(baseRef);
    }
  });

  it('each platform carries its own per-arch file', async () => {
    await singleJobBuild();
    expect(await fileForArch(`${reg.host}/mp/coop:v1`, 'amd64', '/usr/local/bin/coop')).toContain('built for amd64');
    expect(await fileForArch(`${reg.host}/mp/coop:v1`, 'arm64', '/usr/local/bin/coop')).toContain('built for arm64');
    expect(await fileForArch(`${reg.host}/mp/coop:v1`, 'arm64', '/etc/base-arch')).toBe('arm64\n');
    expect(await fileForArch(`${reg.host}/mp/tools:v1`, 'arm64', '/usr/local/bin/coop')).toContain('built for arm64');
  });

  it('podman runs the host platform', async () => {
    await singleJobBuild();
    const out = await run('podman', ['run', '--rm', '--network', 'none', '--tls-verify=false', `${reg.host}/mp/coop:v1`]);
    expect(out.stdout).toContain('coop built for amd64, base amd64');
  });

  it('--platform narrows a declared list; the OCI layout holds the index', async () => {
    const map = await singleJobBuild();
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--platform',
      'linux/arm64',
      '--variant',
      'coop',
      '--output',
      `oci:${join(ctx, 'layout')}`,
      '--cache-dir',
      join(ctx, 'cache'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out.coop.platforms)).toEqual(['linux/arm64']);
    // Same manifest as in the two-platform build: per-platform builds are independent.
    expect(out.coop.platforms['linux/arm64'].digest).toBe(map.coop!.platforms['linux/arm64']!.digest);
    const index = JSON.parse(readFileSync(join(ctx, 'layout', 'index.json'), 'utf8'));
    expect(index.manifests[0].mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(readdirSync(join(ctx, 'layout', 'blobs', 'sha256'))).toContain(out.coop.digest.slice(7));
  });

  it('a missing per-arch source is reported for that platform before anything is pushed', async () => {
    rmSync(join(ctx, 'target', 'arm64', 'coop'));
    try {
      const r = await cli([
        'build',
        '--config',
        join(ctx, 'oci-build.yml'),
        '--push',
        '--tag',
        'broken',
        '--cache-dir',
        join(ctx, 'cache'),
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/oci-build\.yml:\d+:\d+: variants\.coop\.steps\[0\]\.copy: for linux\/arm64: .*target\/arm64\/coop/);
      const tags = (await (await fetch(`${reg.url}/v2/mp/coop/tags/list`)).json()) as { tags: string[] };
      expect(tags.tags).not.toContain('broken');
    } finally {
      writeFileSync(join(ctx, 'target', 'arm64', 'coop'), '#!/bin/sh\necho "coop built for arm64, base $(cat /etc/base-arch)"\n');
      chmodSync(join(ctx, 'target', 'arm64', 'coop'), 0o755);
    }
  });
});

describe('distributed builds', () => {
  let reg2: TestRegistry;
  const partial = (n: string) => join(ctx, `partial-${n}.json`);
  const env = () => ({ ...process.env, REG: reg2.host });

  beforeAll(async () => {
    reg2 = await startRegistry();
  });
  afterAll(async () => {
    await reg2?.stop();
  });

  let jobsRun: Promise<void> | undefined;
  /** The three distributed build jobs (each writes its partial map), run once. */
  const distributedJobs = (): Promise<void> => {
    jobsRun ??= (async () => {
      const jobs = [
        ['--platform', 'linux/amd64', '--variant', 'coop,tools', '--distribute', partial('amd64')],
        ['--platform', 'linux/arm64', '--variant', 'coop,tools', '--distribute', partial('arm64')],
        ['--variant', 'plain', '--distribute', partial('plain')],
      ];
      for (const args of jobs) {
        const r = await cli(
          ['build', '--config', join(ctx, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', join(ctx, `cache-${args[1]}`), ...args],
          { env: env() },
        );
        expect(r.code, r.stderr).toBe(0);
      }
    })();
    return jobsRun;
  };

  it('two platform jobs and a component job, then merge, give the single-job index digests and digest map', async () => {
    const map = await singleJobBuild();
    await distributedJobs();
    // The platform jobs pushed manifests by digest only: no tag yet for the index variants.
    const before = (await (await fetch(`${reg2.url}/v2/mp/coop/tags/list`)).json()) as { tags: string[] | null };
    expect((before.tags ?? []).filter((t) => !/^sha256-[a-f0-9]{64}$/.test(t) && t !== 'buildcache')).toEqual([]); // (sha256-<hex>: attestations' referrers fallback; buildcache: the layer cache's record)
    const r = await cli(
      [
        'merge',
        '--config',
        join(ctx, 'oci-build.yml'),
        '--partial',
        partial('amd64'),
        '--partial',
        partial('arm64'),
        '--partial',
        partial('plain'),
        '--tag',
        'v1',
        '--digest-map',
        join(ctx, 'merged.json'),
        '--cache-dir',
        join(ctx, 'cache-merge'),
      ],
      { env: env() },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/0 blobs uploaded \(0 B\)/);
    const merged = readFileSync(join(ctx, 'merged.json'), 'utf8');
    // Same inputs, same result: the single-job map with the other registry's host. The attestations'
    // digests differ (their statements name the registry), their subjects do not.
    const noAttestations = (m: object) => JSON.parse(JSON.stringify(m, (k, v: unknown) => (k === 'attestations' ? undefined : v)));
    expect(noAttestations(JSON.parse(merged.replaceAll(reg2.host, reg.host)))).toEqual(noAttestations(map));
    const mergedMap = JSON.parse(merged) as Record<string, { digest: string; attestations: Record<string, Record<string, string>> }>;
    for (const v of ['coop', 'tools', 'plain'])
      expect(Object.keys(mergedMap[v]!.attestations).sort()).toEqual(Object.keys((map as any)[v].attestations).sort());
    expect((await raw(`${reg2.host}/mp/coop:v1`)).digest).toBe(map.coop!.digest);
    expect((await raw(`${reg2.host}/mp/tools:v1`)).digest).toBe(map.tools!.digest);
    expect((await raw(`${reg2.host}/mp/plain:v1`)).digest).toBe((map as Record<string, { digest: string }>).plain!.digest);
  });

  const merge = (tag: string, extra: string[] = []) =>
    cli(
      [
        'merge',
        '--config',
        join(ctx, 'oci-build.yml'),
        ...['amd64', 'arm64', 'plain'].flatMap((n) => ['--partial', partial(n)]),
        '--tag',
        tag,
        '--digest-map',
        join(ctx, `merged-${tag}.json`),
        '--cache-dir',
        join(ctx, 'cache-merge'),
        ...extra,
      ],
      { env: { ...env(), SOURCE_DATE_EPOCH: '1700000000' } },
    );
  const fallback = async (repo: string, subject: string) =>
    JSON.parse((await raw(`${reg2.host}/${repo}:sha256-${subject.slice(7)}`)).text) as {
      manifests: { digest: string; artifactType: string }[];
    };

  it("the merge attests each index; the platform manifests keep the build jobs' attestations; a re-run adds nothing", async () => {
    await distributedJobs();
    const r = await merge('v3');
    expect(r.code, r.stderr).toBe(0);
    const coop = JSON.parse(readFileSync(join(ctx, 'merged-v3.json'), 'utf8')).coop as {
      digest: string;
      platforms: Record<string, { digest: string }>;
      attestations: Record<string, { provenance?: string; sbom?: string }>;
    };
    // The partial maps carried the platform manifests' attestations into the merged map, as the jobs attached them.
    for (const arch of ['amd64', 'arm64']) {
      const pm = JSON.parse(readFileSync(partial(arch), 'utf8')).variants.coop;
      const subject = coop.platforms[`linux/${arch}`]!.digest;
      expect(pm.attestations[subject]).toEqual(coop.attestations[subject]);
      expect(Object.keys(coop.attestations[subject]!).sort()).toEqual(['provenance', 'sbom']);
      expect((await fallback('mp/coop', subject)).manifests.map((m) => m.digest).sort()).toEqual(
        Object.values(coop.attestations[subject]!).sort(),
      );
    }
    // The index's own provenance, made by the merge job: a referrer whose subject is the index.
    const own = coop.attestations[coop.digest]!;
    expect(Object.keys(own)).toEqual(['provenance']);
    const idx = await fallback('mp/coop', coop.digest);
    expect(validateOci('index', idx)).toEqual([]);
    expect(idx.manifests).toEqual([expect.objectContaining({ digest: own.provenance, artifactType: 'application/vnd.in-toto+json' })]);
    const art = JSON.parse((await raw(`${reg2.host}/mp/coop@${own.provenance}`)).text);
    expect(art.subject.digest).toBe(coop.digest);
    const statement = (await (await fetch(`${reg2.url}/v2/mp/coop/blobs/${art.layers[0].digest}`)).json()) as any;
    expect(statement.subject).toEqual([{ name: `${reg2.host}/mp/coop`, digest: { sha256: coop.digest.slice(7) } }]);
    expect(statement.predicate.buildDefinition.resolvedDependencies.map((d: any) => d.uri)).toContain(`oci://${baseRef}`);
    // The image index still lists only the real platforms.
    const index = JSON.parse((await raw(`${reg2.host}/mp/coop:v3`)).text);
    expect(index.manifests.map((m: any) => m.platform.architecture).sort()).toEqual(['amd64', 'arm64']);

    // A re-run of the merge: the same attestation digests, no entry added.
    const before = (await raw(`${reg2.host}/mp/coop:sha256-${coop.digest.slice(7)}`)).text;
    expect((await merge('v3')).code).toBe(0);
    expect(JSON.parse(readFileSync(join(ctx, 'merged-v3.json'), 'utf8')).coop.attestations).toEqual(coop.attestations);
    expect((await raw(`${reg2.host}/mp/coop:sha256-${coop.digest.slice(7)}`)).text).toBe(before);
    // Another job attaching a different statement to the same index keeps the first one's entry.
    expect((await merge('v4', ['--provenance', 'mode=max'])).code).toBe(0);
    const max = JSON.parse(readFileSync(join(ctx, 'merged-v4.json'), 'utf8')).coop.attestations[coop.digest].provenance;
    expect(max).not.toBe(own.provenance);
    expect((await fallback('mp/coop', coop.digest)).manifests.map((m) => m.digest)).toEqual([own.provenance, max]);
  });

  it('a missing partial map fails the merge with a list of what is missing', async () => {
    await distributedJobs();
    const r = await cli(
      [
        'merge',
        '--config',
        join(ctx, 'oci-build.yml'),
        '--partial',
        partial('amd64'),
        '--tag',
        'v2',
        '--cache-dir',
        join(ctx, 'cache-merge'),
      ],
      { env: env() },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('variant coop: platform linux/arm64 is missing');
    expect(r.stderr).toContain('variant tools: platform linux/arm64 is missing');
    expect(r.stderr).toContain('variant plain: missing');
    const tags = (await (await fetch(`${reg2.url}/v2/mp/coop/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).not.toContain('v2');
  });
});

describe('run: steps for another platform', () => {
  it('without an emulator, fail with a message naming the platform and the fix, pushing nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-foreign-'));
    try {
      writeFileSync(
        join(dir, 'oci-build.yml'),
        `version: 1
variants:
  tool:
    image: ${reg.host}/mp/foreign
    base: ${baseRef}
    platforms: [linux/amd64, linux/arm64]
    steps:
      - run: echo hello > /hello
`,
      );
      const r = await cli(['build', '--config', join(dir, 'oci-build.yml'), '--push', '--tag', 'v1', '--cache-dir', join(dir, 'cache')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /oci-build\.yml:\d+: variant tool: run: steps for linux\/arm64 cannot execute on this linux\/amd64 machine: no binfmt_misc emulator/,
      );
      expect(r.stderr).toMatch(/Fix: build linux\/arm64 on a matching runner .*distribute: true.*mode: merge/);
      const tags = await fetch(`${reg.url}/v2/mp/foreign/tags/list`);
      expect(tags.status === 404 || ((await tags.json()) as { tags: string[] | null }).tags === null).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with an enabled binfmt_misc emulator, the platform can run', async () => {
    const { canExecute } = await import('../src/run/binfmt.js');
    const fake = mkdtempSync(join(tmpdir(), 'binfmt-'));
    try {
      expect(canExecute({ os: 'linux', architecture: 'arm64' }, fake)).toEqual({ ok: false, how: 'no emulator registered' });
      writeFileSync(join(fake, 'qemu-aarch64'), 'disabled\ninterpreter /usr/bin/qemu-aarch64-static\n');
      expect(canExecute({ os: 'linux', architecture: 'arm64' }, fake).ok).toBe(false);
      writeFileSync(join(fake, 'qemu-aarch64'), 'enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\n');
      expect(canExecute({ os: 'linux', architecture: 'arm64' }, fake)).toEqual({ ok: true, how: 'binfmt_misc qemu-aarch64' });
      expect(canExecute({ os: 'linux', architecture: 'amd64' }, fake)).toEqual({ ok: true, how: 'native' });
    } finally {
      rmSync(fake, { recursive: true, force: true });
    }
  });
});
