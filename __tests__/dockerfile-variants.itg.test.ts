import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { cli } from './helpers/cli.js';

/**
 * Dockerfile variants of a build file against the real registry: a YAML stage as the shared base
 * (through contexts: variant:), a Dockerfile variant on it, a YAML variant `from:` the
 * Dockerfile one; digest map, tags, skopeo and podman; the layer cache, plan --explain,
 * --rebuild-from, --target; provenance naming the Dockerfile.
 */

let reg: TestRegistry;
let ctx: string;
let base: string;
const podmanRefs: string[] = [];

const BUILD_FILE = `version: 1
args: { BASE: none, REGISTRY: none }
defaults: { image: "\${REGISTRY}/dfv/\${variant}" }
variants:
  toolbox:
    base: \${BASE}
    stage: true
    env: { TOOL_HOME: /opt/tool }
    steps:
      - { file: /opt/tool/VERSION, content: "7" }
  app:
    dockerfile: app/Dockerfile
    args: { GREETING: hello }
    contexts: { toolbox: "variant:toolbox" }
    tags: ["type=raw,value=v1"]
    labels: { from-build-file: "yes" }
  app-debug: { from: app, env: { DEBUG: "1" } }
`;

const DOCKERFILE = `FROM toolbox AS build
ARG GREETING
COPY msg.txt /work/msg.txt
RUN echo "$GREETING from $TOOL_HOME $(cat /opt/tool/VERSION)" > /work/out.txt && cat /work/msg.txt >> /work/out.txt
FROM toolbox
LABEL from-dockerfile=yes
COPY --from=build /work/out.txt /srv/out.txt
CMD ["cat", "/srv/out.txt"]
`;

type Layer = { variant: string; createdBy: string; origin: string };
const env = () => ({ ...process.env, BASE: base, REGISTRY: reg.host, SOURCE_DATE_EPOCH: '1700000000' });
const common = () => ['--config', join(ctx, 'oci-build.yml'), '--cache-dir', join(ctx, '.cache')];

async function build(
  extra: string[] = [],
): Promise<{ map: Record<string, { digest: string; tags: string[] }>; layers: Layer[]; rootfs: { layersExtracted: number } }> {
  const r = await cli(['build', ...common(), '--push', '--verbose', '--digest-map', join(ctx, 'map.json'), ...extra], { env: env() });
  expect(r.code, r.stderr.slice(-4000)).toBe(0);
  const out = JSON.parse(r.stdout);
  return { map: JSON.parse(readFileSync(join(ctx, 'map.json'), 'utf8')), layers: out.layers, rootfs: out.rootfs };
}

/** `variant: INSTRUCTION first-word` of each layer this build wrote. */
const builtOf = (layers: Layer[]) =>
  layers
    .filter((l) => l.origin === 'built')
    .map((l) => `${l.variant}: ${l.createdBy.split(' ').slice(0, 2).join(' ')}`)
    .sort();

async function skopeoJson(args: string[]): Promise<any> {
  return JSON.parse((await run('skopeo', [...args, '--tls-verify=false'])).stdout);
}

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host)).single;
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-dfv-'));
  mkdirSync(join(ctx, 'app'));
  writeFileSync(join(ctx, 'oci-build.yml'), BUILD_FILE);
  writeFileSync(join(ctx, 'app/Dockerfile'), DOCKERFILE);
  writeFileSync(join(ctx, 'app/msg.txt'), 'first message\n');
});

afterAll(async () => {
  for (const r of new Set(podmanRefs)) await run('podman', ['rmi', '-f', r], { allowFail: true });
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('dockerfile: variants, built and pushed', () => {
  let first: Awaited<ReturnType<typeof build>>;

  it('builds the matrix: stages stay unpushed, the Dockerfile variant and the variant from it are in the digest map, tagged', async () => {
    first = await build();
    expect(Object.keys(first.map).sort()).toEqual(['app', 'app-debug']);
    expect(first.map.app!.tags).toContain(`${reg.host}/dfv/app:v1`);
    expect((await skopeoJson(['inspect', `docker://${reg.host}/dfv/app:v1`])).Digest).toBe(first.map.app!.digest);
    for (const stage of ['toolbox', 'app.build'])
      expect(
        (await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${reg.host}/dfv/${stage}`], { allowFail: true })).code,
      ).not.toBe(0);
    const app = (await skopeoJson(['inspect', '--config', `docker://${reg.host}/dfv/app@${first.map.app!.digest}`])).config;
    expect(app.Cmd).toEqual(['cat', '/srv/out.txt']);
    expect(app.Env).toContain('TOOL_HOME=/opt/tool');
    expect(app.Labels).toMatchObject({ 'from-dockerfile': 'yes', 'from-build-file': 'yes' });
    const debug = (await skopeoJson(['inspect', '--config', `docker://${reg.host}/dfv/app-debug@${first.map['app-debug']!.digest}`]))
      .config;
    expect(debug.Env).toEqual(expect.arrayContaining(['TOOL_HOME=/opt/tool', 'DEBUG=1']));
    const ref = `${reg.host}/dfv/app@${first.map.app!.digest}`;
    podmanRefs.push(ref);
    const out = await run('podman', ['run', '--rm', '--network', 'none', '--tls-verify=false', ref]);
    expect(out.stdout).toBe('hello from /opt/tool 7\nfirst message\n');
  }, 300_000);

  it('rebuilds nothing when nothing changed; plan --explain and the build agree on what a changed file rebuilds', async () => {
    const again = await build();
    expect(builtOf(again.layers)).toEqual([]);
    expect(again.map.app!.digest).toBe(first.map.app!.digest);
    // The COPY --from=build hit is found without extracting the build stage's file system.
    expect(again.rootfs.layersExtracted).toBe(0);
    appendFileSync(join(ctx, 'app/msg.txt'), 'second line\n');
    const x = await cli(['plan', '--explain', '--json', ...common()], { env: env() });
    expect(x.code, x.stderr).toBe(0);
    const rebuiltByExplain = (JSON.parse(x.stdout).variants as { variant: string; layers: { step: number; decision: string }[] }[])
      .flatMap((v) => v.layers.filter((l) => l.decision !== 'cached').map((l) => `${v.variant}:${l.step}`))
      .sort();
    expect(rebuiltByExplain).toEqual(['app.build:1', 'app.build:2', 'app:1']);
    const changed = await build();
    expect(builtOf(changed.layers)).toEqual(['app.build: COPY msg.txt', 'app.build: RUN |1', 'app: COPY --from=build']);
  }, 300_000);

  it('--rebuild-from a Dockerfile stage step ignores the cache from there on; --target stops at a variant', async () => {
    const r = await build(['--rebuild-from', 'app.build:2']);
    // The RUN runs again; it writes the same file, so app's COPY --from (keyed by what it copies) is a cache hit.
    expect(builtOf(r.layers)).toEqual(['app.build: RUN |1']);
    expect(r.layers.find((l) => l.variant === 'app' && l.createdBy.startsWith('COPY --from=build'))?.origin).toBe('cached');
    const t = await build(['--target', 'app']);
    expect(Object.keys(t.map)).toEqual(['app']);
    expect(t.layers.some((l) => l.variant === 'app-debug')).toBe(false);
  }, 300_000);

  it('provenance names the Dockerfile and its digest', async () => {
    const digest = first.map.app!.digest;
    const index = await skopeoJson(['inspect', '--raw', `docker://${reg.host}/dfv/app:sha256-${digest.slice(7)}`]);
    const docs: any[] = [];
    for (const m of index.manifests) {
      const art = await skopeoJson(['inspect', '--raw', `docker://${reg.host}/dfv/app@${m.digest}`]);
      docs.push(await (await fetch(`${reg.url}/v2/dfv/app/blobs/${art.layers[0].digest}`)).json());
    }
    const prov = docs.find((d) => d.predicateType?.startsWith('https://slsa.dev/provenance/'));
    const variants = prov.predicate.buildDefinition.externalParameters.variants;
    const sha = (await run('sha256sum', [join(ctx, 'app/Dockerfile')])).stdout.split(' ')[0];
    expect(variants[0]).toMatchObject({ name: 'app', dockerfile: { path: 'app/Dockerfile', digest: { sha256: sha } } });
  }, 120_000);
});
