import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBuildFileText } from '../src/config/load.js';
import { selectVariants } from '../src/config/graph.js';
import { ConfigError, type ConfigProblem, type CopyStep, type RunStep } from '../src/config/model.js';
import { makeContext, yaml, type TestContext } from './helpers/config-context.js';

/** Issue 5's build-file fields: run: steps, stage: true, copy with from:, with line-accurate problems. */

let tc: TestContext;
beforeAll(() => {
  tc = makeContext();
});
afterAll(() => tc.cleanup());

async function problemsOf(text: string): Promise<ConfigProblem[]> {
  try {
    await parseBuildFileText(text, 'oci-build.yml', tc.ctx, { env: {} });
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const p of e.problems) {
        expect(p.line).toBeGreaterThan(0);
        expect(p.hint).toBeTruthy();
      }
      return e.problems;
    }
    throw e;
  }
  throw new Error('the file was accepted');
}

const HEAD = ['version: 1', 'variants:', '  app:', '    base: debian:12', '    steps:'];

describe('run: steps in the build file', () => {
  it('reads the shell form, the exec form and every option', async () => {
    const bf = await parseBuildFileText(
      yaml(
        ...HEAD,
        '      - run: apt-get update && apt-get install -y curl',
        '        env: { DEBIAN_FRONTEND: noninteractive, N: 1 }',
        '      - run: [/usr/bin/make, -C, /src, 2]',
        '        user: "app:staff"',
        '        workdir: /src/./build/',
        '        network: false',
        '      - run: echo $$HOME $${HOME}',
        '        shell: [/bin/bash, -euo, pipefail, -c]',
      ),
      'oci-build.yml',
      tc.ctx,
      { env: {} },
    );
    const steps = bf.variants[0]!.steps as RunStep[];
    expect(steps[0]).toMatchObject({
      kind: 'run',
      command: 'apt-get update && apt-get install -y curl',
      env: { DEBIAN_FRONTEND: 'noninteractive', N: '1' },
      network: true,
      pos: { line: 6 },
    });
    expect(steps[0]!.shell).toBeUndefined();
    expect(steps[1]).toMatchObject({
      kind: 'run',
      command: ['/usr/bin/make', '-C', '/src', '2'],
      user: 'app:staff',
      workdir: '/src/build',
      network: false,
      pos: { line: 8 },
    });
    expect(steps[2]).toMatchObject({ command: 'echo $$HOME ${HOME}', shell: ['/bin/bash', '-euo', 'pipefail', '-c'] });
  });

  const cases: { name: string; lines: string[]; line: number; field: string; message: string | RegExp; hint?: RegExp }[] = [
    { name: 'empty command', lines: ['      - run: "  "'], line: 6, field: 'variants.app.steps[0].run', message: 'run is empty' },
    {
      name: 'empty exec form',
      lines: ['      - run: []'],
      line: 6,
      field: 'variants.app.steps[0].run',
      message: 'expected a shell command, or a non-empty list (exec form), got an empty list',
    },
    {
      name: 'shell with the exec form',
      lines: ['      - run: [make]', '        shell: [/bin/bash, -c]'],
      line: 7,
      field: 'variants.app.steps[0].shell',
      message: 'shell only applies to the shell form (run: as one string)',
    },
    {
      name: 'bad env name',
      lines: ['      - run: make', '        env: { 1X: y }'],
      line: 7,
      field: 'variants.app.steps[0].env.1X',
      message: 'environment variable name "1X" is invalid',
    },
    {
      name: 'bad user',
      lines: ['      - run: make', '        user: "a b"'],
      line: 7,
      field: 'variants.app.steps[0].user',
      message: 'user "a b" is invalid',
    },
    {
      name: 'relative workdir',
      lines: ['      - run: make', '        workdir: src'],
      line: 7,
      field: 'variants.app.steps[0].workdir',
      message: 'workdir "src" is not an absolute path',
    },
    {
      name: 'network not a boolean',
      lines: ['      - run: make', '        network: "off"'],
      line: 7,
      field: 'variants.app.steps[0].network',
      message: 'expected true or false, got the string "off"',
    },
    {
      name: 'misspelled key',
      lines: ['      - run: make', '        netwrok: false'],
      line: 7,
      field: 'variants.app.steps[0].netwrok',
      message: 'unknown key "netwrok"',
      hint: /did you mean "network"/,
    },
    {
      name: 'copy and run in one step',
      lines: ['      - run: make', '        copy: a', '        to: /a'],
      line: 6,
      field: 'variants.app.steps[0]',
      message: 'a step has both "copy" and "run"',
    },
    {
      name: 'copy from with a relative path',
      lines: ['      - copy: opt/app', '        from: app', '        to: /x'],
      line: 6,
      field: 'variants.app.steps[0].copy',
      message: 'copy source "opt/app" is not an absolute path',
    },
  ];
  for (const c of cases) {
    it(`reports ${c.name} at its line`, async () => {
      const problems = await problemsOf(yaml(...HEAD, ...c.lines));
      const p = problems.find((x) => x.field === c.field);
      expect(p, JSON.stringify(problems)).toBeDefined();
      expect(p!.line).toBe(c.line);
      if (typeof c.message === 'string') expect(p!.message).toBe(c.message);
      else expect(p!.message).toMatch(c.message);
      if (c.hint) expect(p!.hint).toMatch(c.hint);
    });
  }
});

describe('stages and copy: from:', () => {
  const file = yaml(
    'version: 1',
    'defaults: { base: debian:12 }',
    'variants:',
    '  app:',
    '    steps:',
    '      - copy: [/out/app, "/out/lib/*.so"]',
    '        from: build',
    '        to: /usr/local/bin/',
    '  build:',
    '    stage: true',
    '    from: tools',
    '    steps:',
    '      - run: make',
    '  tools:',
    '    stage: true',
    '  other: {}',
  );

  it('reads stage: true and copy sources as image paths', async () => {
    const bf = await parseBuildFileText(file, 'oci-build.yml', tc.ctx, { env: {} });
    const [app, build, tools] = bf.variants;
    expect(build!.stage).toBe(true);
    expect(tools!.stage).toBe(true);
    expect(app!.stage).toBeUndefined();
    const copy = app!.steps[0] as CopyStep;
    expect(copy.from).toBe('build');
    expect(copy.sources).toEqual([
      { pattern: '/out/app', matches: [], isGlob: false },
      { pattern: '/out/lib/*.so', matches: [], isGlob: true },
    ]);
  });

  it('selects what a variant copies from, dependencies first', async () => {
    const bf = await parseBuildFileText(file, 'oci-build.yml', tc.ctx, { env: {} });
    expect(selectVariants(bf, ['app']).map((v) => v.name)).toEqual(['tools', 'build', 'app']);
    expect(selectVariants(bf, []).map((v) => v.name)).toEqual(['tools', 'build', 'app', 'other']);
    expect(selectVariants(bf, ['other']).map((v) => v.name)).toEqual(['other']);
  });

  it('reports an unknown variant to copy from, with a suggestion', async () => {
    const problems = await problemsOf(
      yaml(
        'version: 1',
        'variants:',
        '  tools: { base: debian:12 }',
        '  app:',
        '    base: debian:12',
        '    steps:',
        '      - copy: /x',
        '        from: tols',
        '        to: /x',
      ),
    );
    expect(problems).toEqual([
      expect.objectContaining({
        line: 8,
        field: 'variants.app.steps[0].from',
        message: 'copy from: unknown variant "tols"',
        hint: expect.stringMatching(/did you mean "tools"/),
      }),
    ]);
  });

  it('reports dependency cycles through copies (and a copy from itself)', async () => {
    const problems = await problemsOf(
      yaml(
        'version: 1',
        'defaults: { base: debian:12 }',
        'variants:',
        '  a:',
        '    steps:',
        '      - { copy: /x, from: b, to: /x }',
        '  b:',
        '    from: a',
        '  c:',
        '    steps:',
        '      - { copy: /x, from: c, to: /x }',
      ),
    );
    expect(problems.map((p) => [p.line, p.message])).toEqual([
      [6, 'copy from: variants depend on each other in a cycle: a -> b -> a'],
      [11, 'copy from: variants depend on each other in a cycle: c -> c'],
    ]);
  });

  it('rejects a stage that is not a boolean', async () => {
    const problems = await problemsOf(yaml('version: 1', 'variants:', '  a:', '    base: debian:12', '    stage: "yes"'));
    expect(problems).toEqual([
      expect.objectContaining({ line: 5, field: 'variants.a.stage', message: 'expected true or false, got the string "yes"' }),
    ]);
  });
});
