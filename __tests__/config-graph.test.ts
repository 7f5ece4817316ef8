import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBuildFileText } from '../src/config/load.js';
import { dependencies, graphProblems, selectVariants } from '../src/config/graph.js';
import type { BuildFile, CopyStep, VariantSpec } from '../src/config/model.js';
import { parseOutput } from '../src/output/sinks.js';

/**
 * The model-level variant graph (src/config/graph.ts) that any front end's model goes through:
 * a model made by hand here, as a front end other than the YAML loader would make it.
 */

async function model(): Promise<BuildFile> {
  const ctx = mkdtempSync(join(tmpdir(), 'oci-build-graph-'));
  return await parseBuildFileText(
    `version: 1
variants:
  a:
    base: scratch
  b:
    from: a
  c:
    base: scratch
`,
    join(ctx, 'oci-build.yml'),
    ctx,
    { env: {} },
  );
}

function withVariants(bf: BuildFile, edit: (byName: Record<string, VariantSpec>) => void): BuildFile {
  const byName = Object.fromEntries(bf.variants.map((v) => [v.name, { ...v, steps: [...v.steps] }]));
  edit(byName);
  return { ...bf, variants: Object.values(byName) };
}

const copyFrom = (from: string, pos: VariantSpec['pos']): CopyStep => ({
  kind: 'copy',
  sources: [{ pattern: '/x', matches: [], isGlob: false }],
  to: '/x',
  from,
  pos,
});

describe('the variant graph of a model', () => {
  it('has no problems for a valid model, and orders dependencies first', async () => {
    const bf = await model();
    expect(graphProblems(bf)).toEqual([]);
    expect(selectVariants(bf, ['b']).map((v) => v.name)).toEqual(['a', 'b']);
  });

  it('reports a from cycle once, at the variant that comes first, naming the cycle', async () => {
    const bf = withVariants(await model(), (v) => {
      v.a = { ...v.a!, from: 'c', base: undefined };
      v.c = { ...v.c!, from: 'b', base: undefined };
    });
    const problems = graphProblems(bf);
    expect(problems.map((p) => [p.field, p.message])).toEqual([
      ['variants.a.from', 'from: variants start from each other in a cycle: a -> c -> b -> a'],
    ]);
    expect(problems[0]!.line).toBe(bf.variants[0]!.pos.line);
  });

  it('reports an unknown from and a copy from that closes a cycle, at the step', async () => {
    const bf = withVariants(await model(), (v) => {
      v.c = { ...v.c!, from: 'nope', base: undefined };
      v.a = { ...v.a!, steps: [copyFrom('b', { ...v.a!.pos, line: 99 })] };
    });
    expect(dependencies(bf.variants.find((x) => x.name === 'a')!)).toEqual(['b']);
    const problems = graphProblems(bf);
    expect(problems.map((p) => [p.field, p.message, p.line])).toEqual([
      ['variants.c.from', 'from: unknown variant "nope"', bf.variants[2]!.pos.line],
      ['variants.a.steps[0].from', 'copy from: variants depend on each other in a cycle: a -> b -> a', 99],
    ]);
  });
});

describe('outputs', () => {
  it('parses each registered kind and names them all when the kind is unknown', () => {
    expect(parseOutput('oci:out/layout')).toEqual({ kind: 'oci', path: 'out/layout' });
    expect(parseOutput('oci-archive:images.tar')).toEqual({ kind: 'oci-archive', path: 'images.tar' });
    expect(parseOutput(' docker-archive:/tmp/a.tar ')).toEqual({ kind: 'docker-archive', path: '/tmp/a.tar' });
    expect(() => parseOutput('tarball:x')).toThrow(/oci:DIR .*docker-archive:FILE .*oci-archive:FILE/);
  });
});
