import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadModel } from '../src/config/frontend.js';
import { selectVariants } from '../src/config/graph.js';
import { ConfigError, type BuildFile, type ConfigProblem } from '../src/config/model.js';
import { expandDockerfileVariants } from '../src/dockerfile/variants.js';

/** The build file's `dockerfile:` variants: loading, checks, and conversion into the model (scratch bases: no registry). */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function project(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'df-variants-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const expand = (bf: BuildFile, platforms: string[] = ['linux/amd64']) =>
  expandDockerfileVariants(bf, { platforms, credentials: {}, dockerConfig: false });

async function problemsOf(p: Promise<unknown>): Promise<ConfigProblem[]> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ConfigError);
  return (e as ConfigError).problems;
}

const APP = 'FROM scratch AS build\nCOPY main.rs /src/main.rs\nFROM scratch\nCOPY --from=build /src /app\nCMD ["/app/main"]\n';

describe('dockerfile: variants in the build file', () => {
  it('loads the Dockerfile, its context (default: its directory), target, args and named contexts', async () => {
    const dir = project({
      'oci-build.yml': [
        'version: 1',
        'args: { TAG: v1 }',
        'defaults: { env: { A: b }, image: 127.0.0.1:5000/x }',
        'variants:',
        '  base: { base: scratch, stage: true, env: { BASE: here } }',
        '  app:',
        '    dockerfile: svc/app/Dockerfile',
        '    target: runtime',
        '    args: { VERSION: "${TAG}", N: 3 }',
        '    contexts: { Rust: "variant:base", debian: "docker-image://docker.io/library/debian:12" }',
      ].join('\n'),
      'svc/app/Dockerfile': APP,
    });
    const bf = await loadModel(join(dir, 'oci-build.yml'), { env: {} });
    const app = bf.variants.find((v) => v.name === 'app')!;
    expect(app.dockerfile).toMatchObject({
      file: join(dir, 'svc/app/Dockerfile'),
      context: join(dir, 'svc/app'),
      target: 'runtime',
      args: { VERSION: 'v1', N: '3' },
      contexts: { rust: { variant: 'base' }, debian: { image: 'docker.io/library/debian:12' } },
    });
    // defaults.env is for YAML variants; the image is shared.
    expect(app.env).toEqual({});
    expect(app.image).toBe('127.0.0.1:5000/x');
    expect(app.base).toBeUndefined();
    // The named context is a dependency: built first.
    expect(selectVariants(bf, ['app']).map((v) => v.name)).toEqual(['base', 'app']);
  });

  it('reports a missing Dockerfile, settings the Dockerfile owns, bad and unknown contexts, a cycle, with line and field', async () => {
    const dir = project({
      'oci-build.yml': [
        'version: 1',
        'variants:',
        '  a:',
        '    dockerfile: nope/Dockerfile',
        '  b:',
        '    dockerfile: Dockerfile',
        '    env: { X: y }',
        '    contexts: { base: "variant:bse", img: "debian:12" }',
        '  c:',
        '    dockerfile: Dockerfile',
        '    contexts: { d: "variant:d" }',
        '  d:',
        '    dockerfile: Dockerfile',
        '    contexts: { c: "variant:c" }',
        '  e:',
        '    base: scratch',
        '    target: x',
        '  f:',
        '    dockerfile: Dockerfile',
        '    context: missing',
      ].join('\n'),
      Dockerfile: APP,
    });
    const problems = await problemsOf(loadModel(join(dir, 'oci-build.yml'), { env: {} }));
    const short = problems.map((p) => `${p.line} ${p.field}: ${p.message}`);
    expect(short).toEqual([
      expect.stringMatching(/^4 variants\.a\.dockerfile: cannot read the Dockerfile nope\/Dockerfile: ENOENT/),
      '7 variants.b.env: env cannot be set on a Dockerfile variant',
      '8 variants.b.contexts.base: contexts: unknown variant "bse"',
      '8 variants.b.contexts.img: context img: "debian:12" is neither variant:NAME nor docker-image://REF',
      '11 variants.c.contexts.d: contexts: variants depend on each other in a cycle: c -> d -> c',
      '14 variants.d.contexts.c: contexts: variants depend on each other in a cycle: d -> c -> d',
      '17 variants.e.target: target is only for a Dockerfile variant',
      '20 variants.f.context: the build context missing is not a directory',
    ]);
  });

  it('converts stages into <variant>.<stage> build stages, the target under the variant name with the build file settings', async () => {
    const dir = project({
      'oci-build.yml': [
        'version: 1',
        'variants:',
        '  app:',
        '    dockerfile: Dockerfile',
        '    image: 127.0.0.1:5000/app',
        '    tags: ["type=raw,value=edge"]',
        '    labels: { from-build-file: "yes" }',
      ].join('\n'),
      Dockerfile: `${APP}LABEL from-dockerfile=yes\n`,
      'main.rs': 'fn main() {}\n',
    });
    const loaded = await loadModel(join(dir, 'oci-build.yml'), { env: {} });
    const snapshot = JSON.stringify(loaded);
    const bf = await expand(loaded);
    expect(JSON.stringify(loaded)).toBe(snapshot); // the loaded model is not changed
    const names = bf.variants.map((v) => v.name);
    expect(names.sort()).toEqual(['app', 'app.build']);
    const app = bf.variants.find((v) => v.name === 'app')!;
    const build = bf.variants.find((v) => v.name === 'app.build')!;
    expect(build.stage).toBe(true);
    expect(app.stage).toBe(false);
    expect(app.image).toBe('127.0.0.1:5000/app');
    expect(app.tags).toEqual(['type=raw,value=edge']);
    expect(app.labels).toEqual({ 'from-dockerfile': 'yes', 'from-build-file': 'yes' });
    expect(app.cmd).toEqual(['/app/main']);
    expect(app.steps).toMatchObject([{ kind: 'copy', from: 'app.build', to: '/app' }]);
    expect(build.steps).toMatchObject([{ kind: 'copy', to: '/src/main.rs', sources: [{ matches: [join(dir, 'main.rs')] }] }]);
    expect(app.pos).toMatchObject({ line: 3 }); // the build file's position, for the plan's messages
  });

  it('lets a Dockerfile start FROM another variant (a YAML one or a Dockerfile one) through contexts, and a from: variant build on it', async () => {
    const dir = project({
      'oci-build.yml': [
        'version: 1',
        'variants:',
        '  base: { base: scratch, stage: true, env: { TOOLCHAIN: /opt/rust }, workdir: /work, user: "1000" }',
        '  builder:',
        '    dockerfile: builder/Dockerfile',
        '    stage: true',
        '    contexts: { base: "variant:base" }',
        '  app:',
        '    dockerfile: app/Dockerfile',
        '    contexts: { rust-builder: "variant:builder" }',
        '  debug: { from: app, env: { DEBUG: "1" } }',
      ].join('\n'),
      'builder/Dockerfile': 'FROM base\nENV CARGO_HOME=$TOOLCHAIN/cargo\nRUN echo "$CARGO_HOME"\n',
      'app/Dockerfile':
        'FROM rust-builder AS build\nRUN echo "$CARGO_HOME in $PWD"\nFROM scratch\nCOPY --from=build /etc /etc\nCOPY --from=rust-builder /usr /usr\n',
    });
    const bf = await expand(await loadModel(join(dir, 'oci-build.yml'), { env: {} }));
    const by = (n: string) => bf.variants.find((v) => v.name === n)!;
    expect(by('builder')).toMatchObject({ from: 'base', stage: true, env: { CARGO_HOME: '/opt/rust/cargo' } });
    expect(by('builder').steps[0]).toMatchObject({ kind: 'run', user: '1000', workdir: '/work' });
    expect(by('app.build')).toMatchObject({ from: 'builder', stage: true });
    expect(by('app.build').steps[0]).toMatchObject({ kind: 'run', workdir: '/work' });
    expect(by('app').steps).toMatchObject([
      { kind: 'copy', from: 'app.build' },
      { kind: 'copy', from: 'builder' },
    ]);
    // Dependencies first: the shared base and builder once, before every user of them.
    expect(selectVariants(bf, ['debug']).map((v) => v.name)).toEqual(['base', 'builder', 'app.build', 'app', 'debug']);
  });

  it('converts a Dockerfile after the Dockerfile variants it needs through a YAML variant, whatever the file order', async () => {
    // app (first in the file) needs tools (YAML, from: builder), which needs the builder Dockerfile:
    // converted together, app must still see the builder's ENV and WORKDIR through tools.
    const dir = project({
      'oci-build.yml': [
        'version: 1',
        'variants:',
        '  app:',
        '    dockerfile: app/Dockerfile',
        '    contexts: { tools: "variant:tools" }',
        '  other:',
        '    dockerfile: other/Dockerfile',
        '  tools: { from: builder, stage: true, env: { EXTRA: "1" } }',
        '  builder:',
        '    dockerfile: builder/Dockerfile',
        '    stage: true',
      ].join('\n'),
      'builder/Dockerfile': 'FROM scratch\nENV TOOLCHAIN=/opt/rust\nWORKDIR /work\n',
      'app/Dockerfile': 'FROM tools\nRUN echo "$TOOLCHAIN $EXTRA"\nCOPY x $TOOLCHAIN/x\n',
      'app/x': 'x',
      'other/Dockerfile': 'FROM scratch\nCOPY x /x\n',
      'other/x': 'x',
    });
    const bf = await expand(await loadModel(join(dir, 'oci-build.yml'), { env: {} }));
    const app = bf.variants.find((v) => v.name === 'app')!;
    expect(app).toMatchObject({ from: 'tools' });
    expect(app.steps[0]).toMatchObject({ kind: 'run', workdir: '/work' });
    expect(app.steps[1]).toMatchObject({ kind: 'copy', to: '/opt/rust/x' });
    expect(bf.variants.map((v) => v.name)).toEqual(['app', 'other', 'tools', 'builder']);
  });

  it('reports an unknown target at the build file line of target: (a variant of several platforms is no problem)', async () => {
    const dir = project({
      'oci-build.yml': [
        'version: 1',
        'variants:',
        '  app:',
        '    dockerfile: Dockerfile',
        '    target: nope',
        '  multi:',
        '    dockerfile: Dockerfile',
        '    platforms: [linux/amd64, linux/arm64]',
      ].join('\n'),
      Dockerfile: APP,
      'main.rs': '',
    });
    const problems = await problemsOf(expand(await loadModel(join(dir, 'oci-build.yml'), { env: {} })));
    expect(problems).toEqual([
      expect.objectContaining({
        file: join(dir, 'oci-build.yml'),
        line: 5,
        field: 'variants.app.target',
        message: expect.stringMatching(/target stage "nope" is not in the Dockerfile/),
        hint: 'stages: build, (unnamed 1)',
      }),
    ]);
  });
});
