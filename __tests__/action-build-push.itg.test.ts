import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { runNode, ACTION, parseGithubOutput } from './helpers/cli.js';

/**
 * The action as a drop-in for docker/build-push-action: the bundled entry point with
 * build-push-action's inputs (context, file, build-args, target, tags as full references,
 * labels, secrets, outputs, push) against the real registry; its outputs (digest, imageid,
 * metadata) checked against skopeo; daemon-only inputs warned about; push: false pushes nothing.
 */

let reg: TestRegistry;
let base: string;
const work = mkdtempSync(join(tmpdir(), 'oci-build-bpa-'));
const ws = join(work, 'ws');
const SECRET = `bpa-secret-${Math.random().toString(36).slice(2)}`;

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'bpa/busybox')).single;
  mkdirSync(join(ws, 'app'), { recursive: true });
  writeFileSync(
    join(ws, 'app', 'Containerfile'),
    `ARG BASE
FROM \${BASE} AS build
ARG NAME
RUN --mount=type=secret,id=token,required test -s /run/secrets/token && echo "hello $NAME" > /hello
FROM \${BASE} AS app
COPY --from=build /hello /hello
COPY msg.txt /msg.txt
CMD ["cat", "/hello", "/msg.txt"]
FROM \${BASE} AS unused
RUN exit 1
`,
  );
  writeFileSync(join(ws, 'app', 'msg.txt'), 'from the context\n');
});
afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function action(inputs: Record<string, string>, tag: string) {
  const out = join(work, `output-${tag}`);
  writeFileSync(out, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    RUNNER_TEMP: join(work, 'runner-temp'),
    GITHUB_OUTPUT: out,
    GITHUB_WORKSPACE: ws,
    GITHUB_REPOSITORY: 'Acme/Coop',
    GITHUB_SHA: 'abc1234def5678901234567890abcdef12345678',
    GITHUB_EVENT_NAME: 'push',
    GITHUB_REF: 'refs/heads/main',
    SOURCE_DATE_EPOCH: '1700000000',
    INPUT_SUMMARY: 'false',
    INPUT_CACHE: 'false',
    'INPUT_ARTIFACT-NAME': '',
    INPUT_PROVENANCE: 'false',
    INPUT_SBOM: 'false',
    MY_TOKEN: SECRET,
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
  };
  const r = await runNode(ACTION, [], { env, cwd: ws });
  return { ...r, outputs: parseGithubOutput(readFileSync(out, 'utf8')) };
}

const common = (repo: string) => ({
  context: 'app',
  file: 'app/Containerfile',
  'build-args': `BASE=${base}\nNAME=world`,
  target: 'app',
  tags: `${reg.host}/${repo}:1.0,${reg.host}/${repo}:latest`,
  labels: 'org.example.team=coop\norg.example.tier=backend',
  'secret-envs': 'token=MY_TOKEN',
});

describe('the action with docker/build-push-action inputs', () => {
  it('builds the Dockerfile target, pushes its tags and sets digest, imageid and metadata', async () => {
    const r = await action({ ...common('bpa/app'), push: 'true', load: 'true', 'cache-from': 'type=gha', builder: 'mybuilder' }, 'push');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const inspect = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/bpa/app:1.0`])).stdout) as {
      Digest: string;
      Labels: Record<string, string>;
    };
    expect(r.outputs.digest).toBe(inspect.Digest);
    expect(inspect.Labels).toMatchObject({ 'org.example.team': 'coop', 'org.example.tier': 'backend' });
    const config = JSON.parse(
      (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/bpa/app:latest`])).stdout,
    ) as {
      config: { digest: string };
    };
    expect(r.outputs.imageid).toBe(config.config.digest);
    const meta = JSON.parse(r.outputs.metadata!) as Record<string, unknown>;
    expect(meta['containerimage.digest']).toBe(inspect.Digest);
    expect(meta['containerimage.config.digest']).toBe(config.config.digest);
    expect((meta['image.name'] as string).split(',').sort()).toEqual([`${reg.host}/bpa/app:1.0`, `${reg.host}/bpa/app:latest`]);
    expect(r.outputs.pushed).toBe('true');
    // One warning per daemon-only input, saying what to do instead.
    expect(r.stdout).toMatch(/::warning::input builder is ignored: there is no builder instance here/);
    expect(r.stdout).toMatch(/::warning::input load is ignored: .*type=docker,dest=/);
    expect(r.stdout).toMatch(/::warning::input cache-from is ignored: .*Actions cache/);
    // The runner takes ::add-mask:: lines itself (never shown); every other line is searched.
    expect(r.stdout).toContain(`::add-mask::${SECRET}`);
    const shown = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => !l.startsWith('::add-mask::'));
    expect(shown.filter((l) => l.includes(SECRET))).toEqual([]);
    // What the image runs: the build arg went into the RUN that read the secret.
    const cfg = JSON.parse(
      (await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${reg.host}/bpa/app:1.0`])).stdout,
    ) as {
      config: { Cmd: string[] };
    };
    expect(cfg.config.Cmd).toEqual(['cat', '/hello', '/msg.txt']);
  });

  it('push: false pushes nothing; outputs type=docker,dest writes an archive with the same digest', async () => {
    const dest = join(work, 'image.tar');
    const r = await action({ ...common('bpa/nopush'), push: 'false', outputs: `type=docker,dest=${dest}` }, 'nopush');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.outputs.pushed).toBe('false');
    const tags = await fetch(`${reg.url}/v2/bpa/nopush/tags/list`);
    expect(tags.status).toBe(404);
    expect(existsSync(dest)).toBe(true);
    const archived = JSON.parse((await run('skopeo', ['inspect', '--raw', `docker-archive:${dest}`])).stdout) as {
      config: { digest: string };
    };
    expect(archived.config.digest).toBe(r.outputs.imageid);
  });

  it('a missing required secret fails before any work and pushes nothing', async () => {
    const { 'secret-envs': _drop, ...noSecret } = common('bpa/nosecret');
    const r = await action({ ...noSecret, push: 'true' }, 'nosecret');
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/Containerfile:4:1: RUN: --mount=type=secret,id=token,required: the required secret "token" was not given/);
    expect((await fetch(`${reg.url}/v2/bpa/nosecret/tags/list`)).status).toBe(404);
  });
});
