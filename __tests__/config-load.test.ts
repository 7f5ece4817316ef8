import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkImagePath, closest, parseExpose, parseMode, parseStopSignal } from '../src/config/fields.js';
import { loadBuildFile, parseBuildFileText } from '../src/config/load.js';
import { selectVariants } from '../src/config/graph.js';
import { ConfigError, type BuildFile, type CopyStep, type FileStep } from '../src/config/model.js';
import { resolveCopySource } from '../src/config/sources.js';
import { substitute } from '../src/config/substitute.js';
import { makeContext, yaml, type TestContext } from './helpers/config-context.js';

let tc: TestContext;
beforeAll(() => {
  tc = makeContext();
});
afterAll(() => tc.cleanup());

const GOOD = yaml(
  'version: 1', //                                   1
  'args:', //                                         2
  '  APP: coop', //                                   3
  '  ORG: acme', //                                   4
  '  PORT: 8080', //                                  5
  'x-common: &common', //                             6
  '  user: "1000:1000"', //                           7
  'defaults:', //                                     8
  '  base: docker.io/library/ubuntu:24.04', //        9
  '  image: ghcr.io/${ORG}/${APP}-${variant}', //     10
  '  labels:', //                                     11
  '    org.opencontainers.image.title: ${APP}', //    12
  '    team: core', //                                13
  '  annotations: { a: "1" }', //                     14
  '  env: { LANG: C.UTF-8, DEBUG: false }', //        15
  '  workdir: /srv/', //                              16
  '  expose: [8080]', //                              17
  '  stop-signal: SIGTERM', //                        18
  'variants:', //                                     19
  '  empty:', //                                      20
  '    <<: *common', //                               21
  '    steps:', //                                    22
  '      - copy: target/release/coop', //            23
  '        to: /usr/local/bin/coop', //               24
  '        mode: "0755"', //                          25
  '        owner: "1000:1000"', //                    26
  '      - copy: assets/*.txt', //                    27
  '        to: /usr/share/${APP}//assets/', //        28
  '        mode: 0644', //                            29
  '      - copy: [assets, target/release/coop]', //   30
  '        to: /opt/', //                             31
  '      - file: /etc/${APP}/config.toml', //         32
  '        content: |', //                            33
  '          name = "${APP}"', //                     34
  '          home = "$${HOME}"', //                   35
  '        mode: 0o600', //                           36
  '        owner: 0', //                              37
  '    entrypoint: [/usr/local/bin/coop]', //         38
  '    cmd: serve --port ${PORT}', //                 39
  '    env: { DEBUG: "true", PORT: 8080 }', //        40
  '    labels: { team: edge }', //                    41
  '    expose: [8080, "53/udp", "9090/TCP", 8080]', //42
  '    volumes: [/data, /cache/]', //                 43
  '  claude:', //                                     44
  '    from: empty', //                               45
  '    steps:', //                                    46
  '      - copy: link-inside', //                     47
  '        to: /x', //                                48
  '      - copy: "[ab].txt"', //                      49 (matches a.txt written at the context root below)
  '        to: /y/', //                               50
  '  scratchy:', //                                   51
  '    base: scratch', //                             52
  '    image: ghcr.io/acme/s', //                     53
  '    workdir: /', //                                54
  '    stop-signal: 9', //                            55
  '    entrypoint: ["/app", 1, true]', //             56
  '  late:', //                                       57
  '    from: claude', //                              58
  '  nulled:', //                                     59
);

describe('a valid build file', () => {
  let bf: BuildFile;
  beforeAll(async () => {
    // A file matching the glob at the root of the context.
    writeFileSync(join(tc.ctx, 'a.txt'), 'root a');
    bf = await parseBuildFileText(GOOD, 'oci-build.yml', tc.ctx, { env: { ORG: 'acme-ci', UNDECLARED: 'nope' } });
  });

  it('reads the top level, args and env override', () => {
    expect(bf.version).toBe(1);
    expect(bf.context).toBe(tc.ctx);
    expect(bf.file).toBe(join(process.cwd(), 'oci-build.yml'));
    // ORG is overridden by the environment; UNDECLARED is not an arg and stays invisible.
    expect(bf.args).toEqual({ APP: 'coop', ORG: 'acme-ci', PORT: '8080' });
    expect(bf.variants.map((v) => v.name)).toEqual(['empty', 'claude', 'scratchy', 'late', 'nulled']);
  });

  it('merges defaults, substitutes args and ${variant}', () => {
    const v = bf.variants[0]!;
    expect(v).toMatchObject({
      name: 'empty',
      image: 'ghcr.io/acme-ci/coop-empty',
      base: 'docker.io/library/ubuntu:24.04',
      user: '1000:1000',
      workdir: '/srv',
      entrypoint: ['/usr/local/bin/coop'],
      cmd: ['/bin/sh', '-c', 'serve --port 8080'],
      env: { LANG: 'C.UTF-8', DEBUG: 'true', PORT: '8080' },
      labels: { 'org.opencontainers.image.title': 'coop', team: 'edge' },
      annotations: { a: '1' },
      expose: ['8080/tcp', '53/udp', '9090/tcp'],
      volumes: ['/data', '/cache'],
      stopSignal: 'SIGTERM',
      pos: { file: 'oci-build.yml', line: 20, column: 3 },
    });
    expect(v.from).toBeUndefined();
    expect(bf.variants[4]).toMatchObject({
      name: 'nulled',
      image: 'ghcr.io/acme-ci/coop-nulled',
      base: 'docker.io/library/ubuntu:24.04',
      steps: [],
    });
  });

  it('resolves copy steps: files, globs, directories, several sources', () => {
    const steps = bf.variants[0]!.steps;
    expect(steps).toHaveLength(4);
    const [s0, s1, s2] = steps as CopyStep[];
    expect(s0).toEqual({
      kind: 'copy',
      sources: [{ pattern: 'target/release/coop', matches: [join(tc.ctx, 'target/release/coop')], isGlob: false }],
      to: '/usr/local/bin/coop',
      mode: 0o755,
      owner: '1000:1000',
      pos: { file: 'oci-build.yml', line: 23, column: 9 },
    });
    // Sorted matches, dot files not matched, `//` collapsed, trailing slash kept, YAML int 0644 read as octal.
    expect(s1).toMatchObject({
      sources: [{ pattern: 'assets/*.txt', matches: [join(tc.ctx, 'assets/a.txt'), join(tc.ctx, 'assets/b.txt')], isGlob: true }],
      to: '/usr/share/coop/assets/',
      mode: 0o644,
    });
    expect(s2).toMatchObject({
      sources: [
        { pattern: 'assets', matches: [join(tc.ctx, 'assets')], isGlob: false },
        { pattern: 'target/release/coop', matches: [join(tc.ctx, 'target/release/coop')], isGlob: false },
      ],
      to: '/opt/',
    });
    expect(s2!.mode).toBeUndefined();
    expect(s2!.owner).toBeUndefined();
  });

  it('reads file steps with $${ escapes and YAML octal modes', () => {
    const f = bf.variants[0]!.steps[3] as FileStep;
    expect(f).toEqual({
      kind: 'file',
      path: '/etc/coop/config.toml',
      content: 'name = "coop"\nhome = "${HOME}"\n',
      mode: 0o600,
      owner: '0',
      pos: { file: 'oci-build.yml', line: 32, column: 9 },
    });
  });

  it('keeps from chains, ignores defaults.base for them, and allows symlinks inside the context', () => {
    const claude = bf.variants[1]!;
    expect(claude.from).toBe('empty');
    expect(claude.base).toBeUndefined();
    expect(claude.image).toBe('ghcr.io/acme-ci/coop-claude');
    expect(claude.steps[0]).toMatchObject({ sources: [{ matches: [join(tc.ctx, 'link-inside')] }], to: '/x' });
    expect(claude.steps[1]).toMatchObject({
      sources: [{ pattern: '[ab].txt', matches: [join(tc.ctx, 'a.txt')], isGlob: true }],
      to: '/y/',
    });
    // Defaults still apply to the other fields.
    expect(claude.labels).toEqual({ 'org.opencontainers.image.title': 'coop', team: 'core' });
    expect(bf.variants[3]).toMatchObject({ name: 'late', from: 'claude', steps: [] });
  });

  it('reads scratch, numeric stop signals and converts scalar list items', () => {
    expect(bf.variants[2]).toMatchObject({
      name: 'scratchy',
      base: 'scratch',
      image: 'ghcr.io/acme/s',
      workdir: '/',
      stopSignal: '9',
      entrypoint: ['/app', '1', 'true'],
    });
  });

  it('selects variants with their from dependencies first', () => {
    const names = (n: string[]) => selectVariants(bf, n).map((v) => v.name);
    expect(names(['late'])).toEqual(['empty', 'claude', 'late']);
    expect(names(['scratchy', 'claude'])).toEqual(['empty', 'claude', 'scratchy']);
    expect(names(['late', 'late', 'empty'])).toEqual(['empty', 'claude', 'late']);
    expect(names([])).toEqual(['empty', 'claude', 'scratchy', 'late', 'nulled']);
  });

  it('rejects unknown variant names in selectVariants with the list of variants', () => {
    try {
      selectVariants(bf, ['claud', 'nope']);
      expect.fail('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const p = (e as ConfigError).problems;
      expect(p).toHaveLength(2);
      expect(p[0]!.message).toBe('unknown variant "claud"');
      expect(p[0]!.hint).toBe('did you mean "claude"? available variants: empty, claude, scratchy, late, nulled');
      expect(p[1]!.hint).toBe('available variants: empty, claude, scratchy, late, nulled');
    }
  });
});

describe('selectVariants order', () => {
  it('puts a from target defined later in the file first', async () => {
    const bf = await parseBuildFileText(
      yaml(
        'version: 1',
        'variants:',
        '  top: { from: mid }',
        '  other: { base: scratch }',
        '  mid: { from: root }',
        '  root: { base: scratch }',
      ),
      'f.yml',
      tc.ctx,
      { env: {} },
    );
    expect(bf.variants.map((v) => v.name)).toEqual(['top', 'other', 'mid', 'root']);
    expect(selectVariants(bf, []).map((v) => v.name)).toEqual(['root', 'mid', 'top', 'other']);
    expect(selectVariants(bf, ['top']).map((v) => v.name)).toEqual(['root', 'mid', 'top']);
  });
});

describe('loadBuildFile', () => {
  it('reads a file and uses its directory as the context', async () => {
    const file = join(tc.ctx, 'oci-build.yml');
    writeFileSync(
      file,
      yaml(
        'version: 1',
        'variants:',
        '  "2024":',
        '    base: scratch',
        '    steps: [{ copy: assets/sub, to: /s }]',
        '  app: { base: scratch }',
      ),
    );
    const bf = await loadBuildFile(file, { env: {} });
    expect(bf.file).toBe(file);
    expect(bf.context).toBe(tc.ctx);
    // File order is kept even for integer-like names.
    expect(bf.variants.map((v) => v.name)).toEqual(['2024', 'app']);
    expect(bf.variants[0]!.steps[0]).toMatchObject({ sources: [{ matches: [join(tc.ctx, 'assets/sub')] }] });
  });

  it('reports a missing file as a ConfigError', async () => {
    await expect(loadBuildFile(join(tc.ctx, 'nope.yml'))).rejects.toThrow(/cannot read the build file/);
  });

  it('uses process.env by default for declared args only', async () => {
    process.env.OCI_BUILD_TEST_ARG = 'from-env';
    try {
      const bf = await parseBuildFileText(
        yaml(
          'version: 1',
          'args: { OCI_BUILD_TEST_ARG: default }',
          'variants:',
          '  a: { base: scratch, labels: { x: "${OCI_BUILD_TEST_ARG}" } }',
        ),
        'f.yml',
        tc.ctx,
      );
      expect(bf.variants[0]!.labels).toEqual({ x: 'from-env' });
    } finally {
      delete process.env.OCI_BUILD_TEST_ARG;
    }
  });
});

describe('substitute', () => {
  const scope = {
    vars: new Map([
      ['A', 'x'],
      ['variant', 'v'],
    ]),
    env: { HOME: '/root' },
  };
  it.each([
    ['plain', 'plain'],
    ['${A}-${variant}', 'x-v'],
    ['$${A}', '${A}'],
    // Left to right: a lone $, then the $${ escape.
    ['$$${A}', '$${A}'],
    ['cost $5 and $$', 'cost $5 and $$'],
    ['${A}${A}', 'xx'],
  ])('%s -> %s', (input, out) => {
    expect(substitute(input, scope)).toEqual({ value: out, problems: [] });
  });
  it('reports unknown, invalid and unterminated references', () => {
    expect(substitute('${B}', scope).problems).toEqual([
      { message: 'unknown variable "${B}"', hint: 'declare it under `args:` (known: A, variant), or write $${B} for a literal ${B}' },
    ]);
    expect(substitute('${HOME}', scope).problems[0]!.hint).toMatch(
      /HOME is set in the environment, but only names declared under `args:` are substituted/,
    );
    expect(substitute('${1x}', scope).problems[0]!.message).toBe('"${1x}" is not a valid variable reference');
    expect(substitute('a ${A', scope).problems[0]!.message).toBe('"${" without a closing "}" in "a ${A"');
  });
});

describe('field checks', () => {
  it('parses modes', () => {
    expect(parseMode('0755')).toEqual({ ok: true, value: 0o755 });
    expect(parseMode('755')).toEqual({ ok: true, value: 0o755 });
    expect(parseMode('04755')).toEqual({ ok: true, value: 0o4755 });
    expect(parseMode(644)).toEqual({ ok: true, value: 0o644 });
    expect(parseMode(0o600, true)).toEqual({ ok: true, value: 0o600 });
    expect(parseMode('07777').ok).toBe(true);
    expect(parseMode('10000').ok).toBe(false);
    expect(parseMode('-1').ok).toBe(false);
  });
  it('normalizes ports and signals', () => {
    expect(parseExpose(80)).toEqual({ ok: true, value: '80/tcp' });
    expect(parseExpose('53/UDP')).toEqual({ ok: true, value: '53/udp' });
    expect(parseExpose('1-2/tcp').ok).toBe(false);
    expect(parseExpose(0).ok).toBe(false);
    expect(parseStopSignal('SIGRTMIN+3')).toEqual({ ok: true, value: 'SIGRTMIN+3' });
    expect(parseStopSignal('TERM')).toMatchObject({ ok: false, hint: 'write SIGTERM' });
  });
  it('normalizes image paths', () => {
    expect(checkImagePath('/a//b/./c/', 'to')).toEqual({ ok: true, value: '/a/b/c/' });
    expect(checkImagePath('/a/b/', 'workdir', 'strip')).toEqual({ ok: true, value: '/a/b' });
    expect(checkImagePath('/', 'workdir', 'strip')).toEqual({ ok: true, value: '/' });
    expect(checkImagePath('/a/../b', 'to').ok).toBe(false);
  });
  it('suggests close keys', () => {
    expect(closest('entrypont', ['entrypoint', 'cmd'])).toBe('entrypoint');
    expect(closest('stop_signal', ['stop-signal'])).toBe('stop-signal');
    expect(closest('zzz', ['entrypoint', 'cmd'])).toBeUndefined();
  });
});

describe('resolveCopySource', () => {
  it('expands ** globs, sorted, including directories', async () => {
    const r = await resolveCopySource(tc.ctx, 'assets/**/*.txt');
    expect(r.problems).toEqual([]);
    expect(r.source!.matches).toEqual([join(tc.ctx, 'assets/a.txt'), join(tc.ctx, 'assets/b.txt'), join(tc.ctx, 'assets/sub/d.txt')]);
  });
  it('accepts the whole context, inner .. and dangling symlinks that point inside', async () => {
    expect((await resolveCopySource(tc.ctx, '.')).source!.matches).toEqual([tc.ctx]);
    expect((await resolveCopySource(tc.ctx, 'assets/../target')).source!.matches).toEqual([join(tc.ctx, 'target')]);
    expect((await resolveCopySource(tc.ctx, 'dangling-in')).problems).toEqual([]);
  });
  it('rejects globs reaching outside through a symlinked directory', async () => {
    const r = await resolveCopySource(tc.ctx, 'dirlink-out/*');
    expect(r.source).toBeUndefined();
    expect(r.problems[0]!.message).toMatch(
      /"dirlink-out\/secret" \(matched by "dirlink-out\/\*"\) is reached through a symlink that leads outside/,
    );
  });
});
