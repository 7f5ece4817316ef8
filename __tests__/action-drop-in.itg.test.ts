import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { runNode, ACTION, parseGithubOutput } from './helpers/cli.js';
import { imageView } from './helpers/image-tree.js';

/**
 * When the action is a drop-in for docker/build-push-action: the bundled entry point in a
 * workspace with no build file and a `Dockerfile` (no file/context inputs), with `context:`
 * alone (its Dockerfile) and with `file:` alone (the workspace as context), builds one image
 * with build-push-action's inputs, pushes it to the real registry and sets digest, imageid and
 * metadata as skopeo sees them; with a build file in the workspace and neither input, the build
 * file is built (its Dockerfile is not), and `context:` still selects the Dockerfile.
 */

let reg: TestRegistry;
let base: string;
const work = mkdtempSync(join(tmpdir(), 'oci-build-dropin-'));

const dockerfile = (which: string) => `ARG BASE\nFROM \${BASE}\nCOPY msg.txt /msg.txt\nLABEL which=${which}\n`;

function write(root: string, files: Record<string, string>): string {
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), c);
  }
  return root;
}

let plain: string;
let withBuildFile: string;

beforeAll(async () => {
  reg = await startRegistry();
  base = (await pushBusyboxBase(reg.host, 'dropin/busybox')).single;
  plain = write(join(work, 'plain'), {
    Dockerfile: dockerfile('root'),
    'msg.txt': 'the workspace\n',
    'sub/Dockerfile': dockerfile('sub'),
    'sub/msg.txt': 'the sub context\n',
    'other/Containerfile': dockerfile('other'),
  });
  withBuildFile = write(join(work, 'buildfile'), {
    Dockerfile: dockerfile('dockerfile'),
    'msg.txt': 'the workspace\n',
    'oci-build.yml': `version: 1
variants:
  app:
    base: ${base}
    image: ${reg.host}/dropin/from-build-file
    tags: ["type=raw,value=v1"]
    steps:
      - { file: /made-by, content: "the build file\\n" }
`,
  });
});
afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function action(ws: string, inputs: Record<string, string>, tag: string) {
  const out = join(work, `output-${tag}`);
  writeFileSync(out, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    RUNNER_TEMP: join(work, `runner-temp-${tag}`),
    GITHUB_OUTPUT: out,
    GITHUB_WORKSPACE: ws,
    GITHUB_REPOSITORY: 'Acme/Dropin',
    GITHUB_SHA: 'abc1234def5678901234567890abcdef12345678',
    GITHUB_EVENT_NAME: 'push',
    GITHUB_REF: 'refs/heads/main',
    SOURCE_DATE_EPOCH: '1700000000',
    INPUT_SUMMARY: 'false',
    INPUT_CACHE: 'false',
    'INPUT_ARTIFACT-NAME': '',
    INPUT_PROVENANCE: 'false',
    INPUT_SBOM: 'false',
    'INPUT_DIGEST-MAP': join(work, `map-${tag}.json`),
    ...Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v])),
  };
  const r = await runNode(ACTION, [], { env, cwd: ws });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return parseGithubOutput(readFileSync(out, 'utf8'));
}

/** What the tests read of skopeo inspect (plain, or --raw for the manifest). */
interface Inspected {
  Digest: string;
  Labels?: Record<string, string>;
  config: { digest: string };
}

async function skopeo(args: string[]): Promise<Inspected> {
  return JSON.parse((await run('skopeo', [...args, '--tls-verify=false'])).stdout);
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** The drop-in outputs against the registry; returns the image's label `which` and its /msg.txt hash. */
async function checkPushed(outputs: Record<string, string>, refs: string[]): Promise<{ which: string; msg?: string }> {
  const inspect = await skopeo(['inspect', `docker://${refs[0]}`]);
  const raw = await skopeo(['inspect', '--raw', `docker://${refs[0]}`]);
  expect(outputs.digest).toBe(inspect.Digest);
  expect(outputs.imageid).toBe(raw.config.digest);
  expect(outputs.pushed).toBe('true');
  const meta = JSON.parse(outputs.metadata!) as Record<string, string>;
  expect(meta['containerimage.digest']).toBe(inspect.Digest);
  expect(meta['containerimage.config.digest']).toBe(raw.config.digest);
  expect(meta['image.name']!.split(',').sort()).toEqual([...refs].sort());
  for (const ref of refs.slice(1)) expect((await skopeo(['inspect', `docker://${ref}`])).Digest).toBe(inspect.Digest);
  const view = await imageView(refs[0]!);
  return { which: inspect.Labels?.which ?? '', msg: view.tree['/msg.txt']?.sha256 };
}

describe('the action as a drop-in for docker/build-push-action', () => {
  it('no build file, a Dockerfile, no file/context: builds ./Dockerfile with the workspace as context', async () => {
    const refs = [`${reg.host}/dropin/root:1.0`, `${reg.host}/dropin/root:latest`];
    const outputs = await action(plain, { tags: refs.join(','), push: 'true', 'build-args': `BASE=${base}` }, 'root');
    expect(await checkPushed(outputs, refs)).toEqual({ which: 'root', msg: sha('the workspace\n') });
  });

  it('context: alone builds that directory with its Dockerfile', async () => {
    const refs = [`${reg.host}/dropin/sub:1.0`];
    const outputs = await action(plain, { context: 'sub', tags: refs[0]!, push: 'true', 'build-args': `BASE=${base}` }, 'sub');
    expect(await checkPushed(outputs, refs)).toEqual({ which: 'sub', msg: sha('the sub context\n') });
  });

  it('file: alone builds that file (relative to the workspace) with the workspace as context', async () => {
    const refs = [`${reg.host}/dropin/other:1.0`];
    const outputs = await action(
      plain,
      { file: 'other/Containerfile', tags: refs[0]!, push: 'true', 'build-args': `BASE=${base}` },
      'other',
    );
    expect(await checkPushed(outputs, refs)).toEqual({ which: 'other', msg: sha('the workspace\n') });
  });

  it('a build file and a Dockerfile, no file/context: the build file is built, the Dockerfile is not', async () => {
    const outputs = await action(withBuildFile, { push: 'true', 'build-args': `BASE=${base}` }, 'buildfile');
    const digests = JSON.parse(outputs.digests!) as Record<string, string>;
    expect(Object.keys(digests)).toEqual(['app']);
    const inspect = await skopeo(['inspect', `docker://${reg.host}/dropin/from-build-file:v1`]);
    expect(digests.app).toBe(inspect.Digest);
    expect(inspect.Labels?.which).toBeUndefined();
    const view = await imageView(`${reg.host}/dropin/from-build-file:v1`);
    expect(view.tree['/made-by']?.sha256).toBe(sha('the build file\n'));
    expect(view.tree['/msg.txt']).toBeUndefined();
    // build-push-action's outputs are for a drop-in build only.
    expect(outputs.digest).toBe('');
    expect(outputs.imageid).toBe('');
    expect(JSON.parse(readFileSync(join(work, 'map-buildfile.json'), 'utf8')).app.digest).toBe(inspect.Digest);
  });

  it('a build file and a Dockerfile, context: given: the Dockerfile is built', async () => {
    const refs = [`${reg.host}/dropin/chosen:1.0`];
    const outputs = await action(withBuildFile, { context: '.', tags: refs[0]!, push: 'true', 'build-args': `BASE=${base}` }, 'chosen');
    expect(await checkPushed(outputs, refs)).toEqual({ which: 'dockerfile', msg: sha('the workspace\n') });
  });
});
