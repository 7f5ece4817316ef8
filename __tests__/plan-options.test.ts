import { describe, it, expect, afterEach } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeContext, yaml, type TestContext } from './helpers/config-context.js';
import { plan, type PipelineInputs } from '../src/plan/plan.js';
import { ConfigError } from '../src/config/model.js';
import { diffKeyParts } from '../src/cache/key-journal.js';

/** Issue 15: --target, --base and --rebuild-from as plan options, and the key diff behind --explain. */

let t: TestContext | undefined;
afterEach(() => {
  t?.cleanup();
  t = undefined;
});

function inputs(extra: Partial<PipelineInputs>): PipelineInputs {
  t = makeContext();
  const file = join(t.ctx, 'oci-build.yml');
  writeFileSync(
    file,
    yaml(
      'version: 1',
      'variants:',
      '  base:',
      '    stage: true',
      '    base: docker.io/library/debian:12',
      '    steps:',
      '      - copy: assets/a.txt',
      '        to: /a.txt',
      '      - file: /etc/x',
      '        content: x',
      '  tools:',
      '    stage: true',
      '    from: base',
      '    steps:',
      '      - file: /etc/y',
      '        content: y',
      '  final:',
      '    from: tools',
      '  other:',
      '    base: scratch',
    ),
  );
  return {
    config: file,
    variants: [],
    push: false,
    tags: [],
    outputs: [],
    credentials: {},
    dockerConfig: false,
    platforms: ['linux/amd64'],
    gzipLevel: 1,
    workDir: join(t.root, 'cache'),
    env: {},
    ...extra,
  };
}

async function problems(i: PipelineInputs): Promise<string[]> {
  try {
    await plan(i);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.field}: ${p.message}${p.hint ? ` (fix: ${p.hint})` : ''}`);
    throw e;
  }
  return [];
}

describe('plan options', () => {
  it('--target builds a stage and what it needs, and ships it', async () => {
    const p = await plan(inputs({ target: 'tools' }));
    expect(p.variants.map((v) => [v.name, v.stage === true])).toEqual([
      ['base', true],
      ['tools', false],
    ]);
  });

  it('--base overrides one variant, and is visible in the plan', async () => {
    const p = await plan(inputs({ base: [`base=registry.example/debian@sha256:${'a'.repeat(64)}`] }));
    expect(p.variants.find((v) => v.name === 'base')!.base).toBe(`registry.example/debian@sha256:${'a'.repeat(64)}`);
    expect([...p.baseOverridden]).toEqual([['base', 'docker.io/library/debian:12']]);
  });

  it('--base errors name the variant and the fix', async () => {
    expect(await problems(inputs({ base: ['debian:13'] }))).toEqual([
      'base: base "debian:13" names no variant, and 2 variants have a base (base, other) (fix: write VARIANT=REF, e.g. --base base=docker.io/library/debian:12)',
    ]);
    expect(await problems(inputs({ base: ['tools=debian:13'] }))).toEqual([
      'base: base "tools=debian:13": variant tools starts from: base, not from a base image (fix: override the base of the variant it starts from (base))',
    ]);
  });

  it('--rebuild-from covers the step on and the variants built from it', async () => {
    const p = await plan(inputs({ rebuildFrom: 'base:2' }));
    expect([...p.rebuildFrom]).toEqual([
      ['base', 1],
      ['tools', 0],
      ['final', 0],
    ]);
    expect(await problems(inputs({ rebuildFrom: 'base:3' }))).toEqual([
      'rebuild-from: rebuild-from "base:3": variant base has 2 step(s), numbered from 1 (fix: give a step from 1 to 2, or the variant alone to rebuild all of it)',
    ]);
    expect((await problems(inputs({ rebuildFrom: 'nope' })))[0]).toMatch(
      /^rebuild-from: rebuild-from "nope": variant nope is not part of this build/,
    );
  });
});

describe('diffKeyParts', () => {
  it('names entries by path, parent layers by position, and leaves the rest as fields', () => {
    const was = {
      step: { mode: 420, command: ['a'] },
      entries: [
        { path: '/x', content: 'sha256:1' },
        { path: '/gone', mode: 1 },
      ],
      parent: ['d1', 'd2'],
    };
    const now = {
      step: { mode: 493, command: ['a'] },
      entries: [
        { path: '/x', content: 'sha256:2' },
        { path: '/new', mode: 1 },
      ],
      parent: ['d1', 'd3'],
    };
    expect(diffKeyParts(was, now).map((c) => c.field)).toEqual([
      'entries[/gone]',
      'entries[/new]',
      'entries[/x].content',
      'parent[1]',
      'step.mode',
    ]);
    expect(diffKeyParts(now, now)).toEqual([]);
  });
});
