import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBuildFileText } from '../src/config/load.js';
import { ConfigError, type ConfigProblem } from '../src/config/model.js';
import { makeContext, yaml, type TestContext } from './helpers/config-context.js';

let tc: TestContext;
beforeAll(() => {
  tc = makeContext();
});
afterAll(() => tc.cleanup());

async function problemsOf(text: string, env: Record<string, string> = {}): Promise<ConfigProblem[]> {
  try {
    await parseBuildFileText(text, 'oci-build.yml', tc.ctx, { env });
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const p of e.problems) {
        // Every problem is located and explained.
        expect(p.file).toBe('oci-build.yml');
        expect(p.line).toBeGreaterThan(0);
        expect(p.column).toBeGreaterThan(0);
        expect(p.hint).toBeTruthy();
      }
      return e.problems;
    }
    throw e;
  }
  throw new Error('the file was accepted');
}

/** A valid variant header; the cases add lines below it. */
const HEAD = ['version: 1', 'variants:', '  app:', '    base: ubuntu:24.04'];

interface Case {
  name: string;
  text: string;
  line: number;
  field: string | undefined;
  message: string | RegExp;
  hint?: string | RegExp;
  /** How many problems in total (default 1). */
  count?: number;
  env?: Record<string, string>;
}

const cases: Case[] = [
  {
    name: 'malformed YAML (unclosed flow sequence)',
    text: yaml('version: 1', 'variants:', '  app:', '    cmd: [a, b', '    base: x'),
    line: 5,
    field: 'variants.app.base',
    message: /^YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a \]/,
  },
  {
    name: 'malformed YAML (bad indentation)',
    text: yaml('version: 1', 'variants:', '  app:', '    base: x', '   image: y'),
    line: 5,
    field: 'variants.app.base',
    message: 'YAML syntax error: All mapping items must start at the same column',
  },
  {
    name: 'malformed YAML (tab indentation)',
    text: yaml('version: 1', 'variants:', '\tapp: {}'),
    line: 3,
    field: 'variants',
    message: 'YAML syntax error: Tabs are not allowed as indentation',
    hint: 'indent with spaces',
  },
  {
    name: 'several YAML documents',
    text: yaml('version: 1', 'variants:', '  app: { base: scratch }', '---', 'version: 1'),
    line: 4,
    field: undefined,
    message: 'the build file contains several YAML documents',
  },
  {
    name: 'duplicate key',
    text: yaml(...HEAD, '    image: ghcr.io/a/b', '    base: ubuntu:22.04'),
    line: 6,
    field: 'variants.app.base',
    message: 'duplicate key "base": keys of a YAML map must be unique',
  },
  {
    name: 'duplicate variant',
    text: yaml(...HEAD, '  app:', '    base: scratch'),
    line: 5,
    field: 'variants.app',
    message: 'duplicate key "app": keys of a YAML map must be unique',
  },
  {
    name: 'unknown top-level key with suggestion',
    text: yaml(...HEAD, 'defualts: {}'),
    line: 5,
    field: 'defualts',
    message: 'unknown key "defualts"',
    hint: 'did you mean "defaults"?',
  },
  {
    name: 'unknown variant key with suggestion',
    text: yaml(...HEAD, '    entrypont: [/bin/app]'),
    line: 5,
    field: 'variants.app.entrypont',
    message: 'unknown key "entrypont"',
    hint: 'did you mean "entrypoint"?',
  },
  {
    name: 'unknown variant key without a close match',
    text: yaml(...HEAD, '    healthcheck: x'),
    line: 5,
    field: 'variants.app.healthcheck',
    message: 'unknown key "healthcheck"',
    hint: /^remove it; known keys here: image, base, labels/,
  },
  {
    name: 'unknown step key with suggestion',
    text: yaml(...HEAD, '    steps:', '      - copy: assets', '        to: /a', '        mod: "0755"'),
    line: 8,
    field: 'variants.app.steps[0].mod',
    message: 'unknown key "mod"',
    hint: 'did you mean "mode"?',
  },
  {
    name: 'unknown defaults key (Compose spelling)',
    text: yaml('version: 1', 'defaults:', '  stop_signal: SIGINT', 'variants:', '  app: { base: scratch }'),
    line: 3,
    field: 'defaults.stop_signal',
    message: 'unknown key "stop_signal"',
    hint: 'did you mean "stop-signal"?',
  },
  {
    name: 'wrong type: expose is not a list',
    text: yaml(...HEAD, '    expose: 8080'),
    line: 5,
    field: 'variants.app.expose',
    message: 'expected a list of ports, got the number 8080',
    hint: 'for example: expose: [8080, "53/udp"]',
  },
  {
    name: 'wrong type: env value is a map',
    text: yaml(...HEAD, '    env:', '      A: { b: c }'),
    line: 6,
    field: 'variants.app.env.A',
    message: 'expected a string, got a map',
  },
  {
    name: 'wrong type: step is a string',
    text: yaml(...HEAD, '    steps:', '      - copy assets to /a'),
    line: 6,
    field: 'variants.app.steps[0]',
    message: 'expected a step: a map with `copy` and `to`, `file` and `content`, or `run`, got the string "copy assets to /a"',
  },
  {
    name: 'bad version',
    text: yaml('version: 2', 'variants:', '  app: { base: scratch }'),
    line: 1,
    field: 'version',
    message: 'expected the number 1, got the number 2',
  },
  {
    name: 'missing version',
    text: yaml('variants:', '  app: { base: scratch }'),
    line: 1,
    field: 'version',
    message: '"version" is missing',
    hint: 'add "version: 1" at the top of the file',
  },
  {
    name: 'mode with non-octal digits',
    text: yaml(...HEAD, '    steps:', '      - copy: assets', '        to: /a', '        mode: "0999"'),
    line: 8,
    field: 'variants.app.steps[0].mode',
    message: 'mode "0999" is not an octal number',
  },
  {
    name: 'mode that is not a number',
    text: yaml(...HEAD, '    steps:', '      - file: /a', '        content: x', '        mode: abc'),
    line: 8,
    field: 'variants.app.steps[0].mode',
    message: 'mode "abc" is not an octal number',
  },
  {
    name: 'mode 99999 as a YAML int',
    text: yaml(...HEAD, '    steps:', '      - file: /a', '        content: x', '        mode: 99999'),
    line: 8,
    field: 'variants.app.steps[0].mode',
    message: 'mode 99999 is not an octal number',
  },
  {
    name: 'mode over 07777',
    text: yaml(...HEAD, '    steps:', '      - file: /a', '        content: x', '        mode: "17777"'),
    line: 8,
    field: 'variants.app.steps[0].mode',
    message: 'mode "17777" is larger than 07777',
  },
  {
    name: 'bad owner syntax',
    text: yaml(...HEAD, '    steps:', '      - file: /a', '        content: x', '        owner: "app:"'),
    line: 8,
    field: 'variants.app.steps[0].owner',
    message: 'owner "app:" is invalid',
  },
  {
    name: 'owner id too large',
    text: yaml(...HEAD, '    steps:', '      - file: /a', '        content: x', '        owner: "0:4294967295"'),
    line: 8,
    field: 'variants.app.steps[0].owner',
    message: 'owner "0:4294967295": id 4294967295 is larger than 2147483647',
  },
  {
    name: 'missing copy source',
    text: yaml(...HEAD, '    steps:', '      - copy: target/debug/coop', '        to: /a'),
    line: 6,
    field: 'variants.app.steps[0].copy',
    message: 'copy source "target/debug/coop" does not exist',
  },
  {
    name: 'glob matching nothing',
    text: yaml(...HEAD, '    steps:', '      - copy: assets/*.png', '        to: /a/'),
    line: 6,
    field: 'variants.app.steps[0].copy',
    message: /^copy source "assets\/\*\.png" matches nothing in /,
  },
  {
    name: '.. escaping the context',
    text: yaml(...HEAD, '    steps:', '      - copy: [assets, assets/../../outside/secret]', '        to: /a/'),
    line: 6,
    field: 'variants.app.steps[0].copy[1]',
    message: /^copy source "assets\/\.\.\/\.\.\/outside\/secret" leads outside the build context/,
  },
  {
    name: 'absolute source',
    text: yaml(...HEAD, '    steps:', '      - copy: /etc/passwd', '        to: /a'),
    line: 6,
    field: 'variants.app.steps[0].copy',
    message: 'copy source "/etc/passwd" is an absolute path',
  },
  {
    name: 'symlink escaping the context',
    text: yaml(...HEAD, '    steps:', '      - copy: link-out', '        to: /a'),
    line: 6,
    field: 'variants.app.steps[0].copy',
    message: /^copy source "link-out" is a symlink to .*\/outside\/secret, outside the build context$/,
  },
  {
    name: 'parent directory symlink escaping the context',
    text: yaml(...HEAD, '    steps:', '      - copy: dirlink-out/secret', '        to: /a'),
    line: 6,
    field: 'variants.app.steps[0].copy',
    message: /^copy source "dirlink-out\/secret" is reached through a symlink that leads outside the build context/,
  },
  {
    name: 'relative `to`',
    text: yaml(...HEAD, '    steps:', '      - copy: assets', '        to: usr/share/app'),
    line: 7,
    field: 'variants.app.steps[0].to',
    message: 'to "usr/share/app" is not an absolute path',
    hint: 'start it with /, e.g. "/usr/share/app"',
  },
  {
    name: '`to` with ..',
    text: yaml(...HEAD, '    steps:', '      - copy: assets', '        to: /usr/../etc'),
    line: 7,
    field: 'variants.app.steps[0].to',
    message: 'to "/usr/../etc" contains ".."',
  },
  {
    name: 'several sources without trailing slash',
    text: yaml(...HEAD, '    steps:', '      - copy: [assets/a.txt, assets/b.txt]', '        to: /srv'),
    line: 7,
    field: 'variants.app.steps[0].to',
    message: '"to" must be a directory ending with / when copying several sources',
    hint: 'add a trailing slash: to: /srv/',
  },
  {
    name: 'glob without trailing slash',
    text: yaml(...HEAD, '    steps:', '      - copy: assets/*.txt', '        to: /srv'),
    line: 7,
    field: 'variants.app.steps[0].to',
    message: '"to" must be a directory ending with / when copying a glob',
  },
  {
    name: 'missing `to`',
    text: yaml(...HEAD, '    steps:', '      - copy: assets'),
    line: 6,
    field: 'variants.app.steps[0].to',
    message: '"to" is missing',
  },
  {
    name: 'step with neither copy, file nor run',
    text: yaml(...HEAD, '    steps:', '      - shell-out: make'),
    line: 6,
    field: 'variants.app.steps[0]',
    message: 'a step needs "copy" (with "to"), "file" (with "content") or "run"',
    count: 2, // and: unknown key "shell-out"
  },
  {
    name: 'step with both copy and file',
    text: yaml(...HEAD, '    steps:', '      - copy: assets', '        file: /a', '        content: x'),
    line: 6,
    field: 'variants.app.steps[0]',
    message: 'a step has both "copy" and "file"',
  },
  {
    name: 'file step path ending with /',
    text: yaml(...HEAD, '    steps:', '      - file: /etc/app/', '        content: x'),
    line: 6,
    field: 'variants.app.steps[0].file',
    message: 'file "/etc/app/" ends with /, but it names a file',
  },
  {
    name: 'unknown from',
    text: yaml(...HEAD, '  claude:', '    from: appp'),
    line: 6,
    field: 'variants.claude.from',
    message: 'from: unknown variant "appp"',
    hint: 'did you mean "app"? variants in this file: app, claude',
  },
  {
    name: 'from cycle of 2',
    text: yaml(...HEAD, '  a:', '    from: b', '  b:', '    from: a'),
    line: 6,
    field: 'variants.a.from',
    message: 'from: variants start from each other in a cycle: a -> b -> a',
  },
  {
    name: 'from cycle of 3 (reported once, from the first in the file)',
    text: yaml(...HEAD, '  c:', '    from: a', '  a:', '    from: b', '  b:', '    from: c'),
    line: 6,
    field: 'variants.c.from',
    message: 'from: variants start from each other in a cycle: c -> a -> b -> c',
  },
  {
    name: 'from itself',
    text: yaml(...HEAD, '  self:', '    from: self'),
    line: 6,
    field: 'variants.self.from',
    message: 'from: variants start from each other in a cycle: self -> self',
  },
  {
    name: 'both base and from',
    text: yaml(...HEAD, '  b:', '    base: scratch', '    from: app'),
    line: 7,
    field: 'variants.b.from',
    message: 'variant "b" sets both base and from',
  },
  {
    name: 'neither base nor from',
    text: yaml(...HEAD, '  b:', '    image: ghcr.io/acme/b'),
    line: 5,
    field: 'variants.b',
    message: 'variant "b" has neither base nor from',
  },
  {
    name: 'image with uppercase letters',
    text: yaml(...HEAD, '    image: ghcr.io/Acme/App'),
    line: 5,
    field: 'variants.app.image',
    message: 'invalid image reference "ghcr.io/Acme/App": path component "Acme" is invalid (repository names must be lowercase)',
    hint: 'write it in lowercase, e.g. "ghcr.io/acme/app"',
  },
  {
    name: 'image with a tag',
    text: yaml(...HEAD, '    image: ghcr.io/acme/app:latest'),
    line: 5,
    field: 'variants.app.image',
    message: /^invalid image reference "ghcr.io\/acme\/app:latest": give a repository without a tag or digest here/,
    hint: /^remove the tag or digest: image: ghcr.io\/acme\/app /,
  },
  {
    name: 'bad base reference',
    text: yaml('version: 1', 'variants:', '  app:', '    base: ubuntu@sha256:abc'),
    line: 4,
    field: 'variants.app.base',
    message: /^invalid image reference "ubuntu@sha256:abc": "sha256:abc" is not a sha256 digest/,
  },
  {
    name: 'bad defaults.base is reported at defaults',
    text: yaml('version: 1', 'defaults:', '  base: "UBUNTU"', 'variants:', '  a: {}', '  b: {}'),
    line: 3,
    field: 'defaults.base',
    message: /^invalid image reference "UBUNTU"/,
  },
  {
    name: 'bad expose protocol',
    text: yaml(...HEAD, '    expose: [8080, "80/http"]'),
    line: 5,
    field: 'variants.app.expose[1]',
    message: 'port "80/http" has unknown protocol "http"',
  },
  {
    name: 'expose out of range',
    text: yaml(...HEAD, '    expose:', '      - 70000'),
    line: 6,
    field: 'variants.app.expose[0]',
    message: 'port 70000 is out of range',
  },
  {
    name: 'bad stop-signal',
    text: yaml(...HEAD, '    stop-signal: sigterm'),
    line: 5,
    field: 'variants.app.stop-signal',
    message: 'stop-signal "sigterm" is invalid',
    hint: 'write SIGTERM',
  },
  {
    name: 'relative workdir',
    text: yaml(...HEAD, '    workdir: app'),
    line: 5,
    field: 'variants.app.workdir',
    message: 'workdir "app" is not an absolute path',
  },
  {
    name: 'bad env name',
    text: yaml(...HEAD, '    env:', '      1ST: x'),
    line: 6,
    field: 'variants.app.env.1ST',
    message: 'environment variable name "1ST" is invalid',
  },
  {
    name: 'unknown ${VAR}',
    text: yaml('version: 1', 'args: { APP: coop }', 'variants:', '  app:', '    base: scratch', '    image: ghcr.io/${ORG}/${APP}'),
    line: 6,
    field: 'variants.app.image',
    message: 'unknown variable "${ORG}"',
    hint: 'declare it under `args:` (known: APP, arch, arch_variant, os, platform, variant), or write $${ORG} for a literal ${ORG}',
  },
  {
    name: '${VAR} only set in the environment',
    text: yaml(...HEAD, '    labels: { home: "${HOME}" }'),
    env: { HOME: '/root' },
    line: 5,
    field: 'variants.app.labels.home',
    message: 'unknown variable "${HOME}"',
    hint: /^HOME is set in the environment, but only names declared under `args:` are substituted/,
  },
  {
    name: 'arg named variant',
    text: yaml('version: 1', 'args:', '  variant: x', 'variants:', '  app: { base: scratch }'),
    line: 3,
    field: 'args.variant',
    message: '"variant" is a built-in name (the variant being built) and cannot be declared as an arg',
  },
  {
    name: 'bad variant name',
    text: yaml(...HEAD, '  My_App:', '    base: scratch'),
    line: 5,
    field: 'variants.My_App',
    message: /^variant name "My_App" is invalid: it becomes a tag and a file name/,
    hint: /e\.g\. "my_app"$/,
  },
  {
    name: 'variants is empty',
    text: yaml('version: 1', 'variants: {}'),
    line: 2,
    field: 'variants',
    message: 'no variants are defined',
  },
  {
    name: 'variants is a list',
    text: yaml('version: 1', 'variants:', '  - app'),
    line: 3,
    field: 'variants',
    message: 'expected a map of variant names to settings, got a list',
  },
  {
    name: 'Compose key name mapped to ours',
    text: yaml(...HEAD, '    ports: [8080]'),
    line: 5,
    field: 'variants.app.ports',
    message: 'unknown key "ports"',
    hint: 'did you mean "expose"?',
  },
  {
    name: 'defaults is a list (no follow-up problems for variants)',
    text: yaml('version: 1', 'defaults:', '  - base: scratch', 'variants:', '  a: {}', '  b: {}'),
    line: 3,
    field: 'defaults',
    message: 'expected a map of default settings, got a list',
  },
  {
    name: 'hexadecimal mode',
    text: yaml(...HEAD, '    steps:', '      - file: /a', '        content: x', '        mode: 0x1ed'),
    line: 8,
    field: 'variants.app.steps[0].mode',
    message: 'mode 0x1ed is written in hexadecimal',
    hint: 'write it in octal: "0755"',
  },
  {
    name: 'missing variants',
    text: yaml('version: 1', 'args: { A: b }'),
    line: 1,
    field: 'variants',
    message: '"variants" is missing',
  },
  {
    name: 'empty file',
    text: '# nothing\n',
    line: 1,
    field: undefined,
    message: 'the build file is empty',
  },
];

describe('invalid build files', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const problems = await problemsOf(c.text, c.env);
      const p = problems.find((x) => (typeof c.message === 'string' ? x.message === c.message : c.message.test(x.message)));
      expect(p, `no problem matching ${String(c.message)} in:\n${JSON.stringify(problems, null, 2)}`).toBeDefined();
      expect(p!.line).toBe(c.line);
      expect(p!.field).toBe(c.field);
      if (c.hint !== undefined) {
        if (typeof c.hint === 'string') expect(p!.hint).toBe(c.hint);
        else expect(p!.hint).toMatch(c.hint);
      }
      expect(problems, JSON.stringify(problems, null, 2)).toHaveLength(c.count ?? 1);
    });
  }
});

describe('several problems in one file', () => {
  const text = yaml(
    'version: 1', //                              1
    'args: { APP: coop }', //                     2
    'defaults:', //                               3
    '  image: ghcr.io/acme/${APP}:v1', //         4  image with a tag (reported once for both variants)
    'variants:', //                               5
    '  claude:', //                               6
    '    from: emptyy', //                        7  unknown from
    '    cmd: [a]', //                            8
    '    cmd: [b]', //                            9  duplicate key
    '  empty:', //                                10
    '    base: ubuntu:24.04', //                  11
    '    entrypont: [/bin/coop]', //              12 unknown key
    '    steps:', //                              13
    '      - copy: [nope, "*.zip"]', //           14 missing source, glob matching nothing
    '        to: bin', //                         15 relative to
    '        mode: "0999"', //                    16 bad mode
    '      - file: /etc/x', //                    17
    '        content: ${NOPE}', //                18 unknown variable
    '    expose: ["80/http"]', //                 19 bad expose
  );

  it('reports all of them at once, sorted by line', async () => {
    const problems = await problemsOf(text);
    expect(problems.map((p) => [p.line, p.field])).toEqual([
      [4, 'defaults.image'],
      [7, 'variants.claude.from'],
      [9, 'variants.claude.cmd'],
      [12, 'variants.empty.entrypont'],
      [14, 'variants.empty.steps[0].copy[0]'],
      [14, 'variants.empty.steps[0].copy[1]'],
      [15, 'variants.empty.steps[0].to'],
      [16, 'variants.empty.steps[0].mode'],
      [18, 'variants.empty.steps[1].content'],
      [19, 'variants.empty.expose[0]'],
    ]);
    const err = await parseBuildFileText(text, 'oci-build.yml', tc.ctx, { env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as ConfigError).message;
    expect(msg).toMatch(/^10 problems in the build file:\n/);
    expect(msg).toContain('  - oci-build.yml:12:5: variants.empty.entrypont: unknown key "entrypont" (fix: did you mean "entrypoint"?)');
    expect(msg).toContain('oci-build.yml:16:15: variants.empty.steps[0].mode: mode "0999" is not an octal number');
  });
});
