/**
 * The variants of a build as a graph: what each needs built first (`from`, `copy: from:`),
 * which variants a selection pulls in, in dependency order, and the cycles that make a build
 * impossible. Works on the model only, whatever front end produced it.
 */
import { closest } from './fields.js';
import { ConfigError, type BuildFile, type ConfigProblem, type Step, type VariantSpec } from './model.js';
import { platformSpecs } from './per-platform.js';

/** The variants a step reads files from: `copy: from:`, or a RUN --mount's `from`. */
export function stepSources(s: Step): string[] {
  if (s.kind === 'copy') return s.from !== undefined ? [s.from] : [];
  if (s.kind === 'run') return (s.mounts ?? []).flatMap((m) => ('from' in m && m.from !== undefined ? [m.from] : []));
  return [];
}

/** Variants a variant needs built first: its `from` parent, then the variants it copies or mounts from. */
export function dependencies(v: VariantSpec): string[] {
  const out: string[] = [];
  for (const spec of platformSpecs(v)) {
    if (spec.from !== undefined && !out.includes(spec.from)) out.push(spec.from);
    for (const s of spec.steps) for (const f of stepSources(s)) if (!out.includes(f)) out.push(f);
  }
  // A Dockerfile variant's named contexts are built first, used or not (as bake does).
  for (const c of Object.values(v.dockerfile?.contexts ?? {})) if ('variant' in c && !out.includes(c.variant)) out.push(c.variant);
  return out;
}

/**
 * The named variants plus everything they start from (`from`) or copy from, dependencies
 * first, otherwise in file order. No names means all variants.
 */
export function selectVariants(bf: BuildFile, names: readonly string[]): VariantSpec[] {
  const byName = new Map(bf.variants.map((v) => [v.name, v]));
  const known = bf.variants.map((v) => v.name);
  const unknown = [...new Set(names)].filter((n) => !byName.has(n));
  if (unknown.length) {
    throw new ConfigError(
      unknown.map((n) => {
        const s = closest(n, known);
        return {
          file: bf.file,
          message: `unknown variant "${n}"`,
          hint: `${s ? `did you mean "${s}"? ` : ''}available variants: ${known.join(', ') || '(none)'}`,
        };
      }),
    );
  }
  const wanted = new Set<string>();
  const want = (n: string): void => {
    const v = byName.get(n);
    if (!v || wanted.has(n)) return;
    wanted.add(n);
    for (const d of dependencies(v)) want(d);
  };
  for (const n of names.length ? names : known) want(n);
  const out: VariantSpec[] = [];
  const done = new Set<string>();
  const visit = (v: VariantSpec): void => {
    if (done.has(v.name)) return;
    done.add(v.name);
    for (const d of dependencies(v)) {
      const dep = byName.get(d);
      if (dep) visit(dep);
    }
    out.push(v);
  };
  for (const v of bf.variants) if (wanted.has(v.name)) visit(v);
  return out;
}

/**
 * Cycles of `from` (each variant starts from one other): each cycle once, starting at its member
 * that comes first in `names` and ending where it started (a -> b -> a).
 */
export function fromCycles(names: readonly string[], froms: ReadonlyMap<string, string>): string[][] {
  const all = new Set(names);
  const reported = new Set<string>();
  const cycles: string[][] = [];
  for (const start of names) {
    const chain: string[] = [];
    for (let cur: string | undefined = start; cur !== undefined && all.has(cur); cur = froms.get(cur)) {
      const i = chain.indexOf(cur);
      if (i >= 0) {
        const cycle = chain.slice(i);
        const key = [...cycle].sort().join('\0');
        if (!reported.has(key)) {
          reported.add(key);
          const first = cycle.reduce((a, b) => (names.indexOf(b) < names.indexOf(a) ? b : a));
          const j = cycle.indexOf(first);
          cycles.push([...cycle.slice(j), ...cycle.slice(0, j), first]);
        }
        break;
      }
      chain.push(cur);
    }
  }
  return cycles;
}

/** A dependency path from `start` to `goal` along `edges` (start first), if there is one. */
export function dependencyPath(edges: ReadonlyMap<string, readonly string[]>, start: string, goal: string): string[] | undefined {
  const seen = new Set<string>();
  const walk = (cur: string, trail: string[]): string[] | undefined => {
    if (cur === goal) return trail;
    if (seen.has(cur)) return undefined;
    seen.add(cur);
    for (const n of edges.get(cur) ?? []) {
      const r = walk(n, [...trail, n]);
      if (r) return r;
    }
    return undefined;
  };
  return walk(start, [start]);
}

/**
 * Unknown variants and cycles in a model, reported at the variant or step they are in: for
 * front ends that do not check them themselves (the YAML loader reports them at the exact key).
 */
export function graphProblems(bf: BuildFile): ConfigProblem[] {
  const names = bf.variants.map((v) => v.name);
  const byName = new Map(bf.variants.map((v) => [v.name, v]));
  const problems: ConfigProblem[] = [];
  const at = (v: VariantSpec, pos = v.pos) => ({ file: bf.file, line: pos.line, column: pos.column });
  const froms = new Map<string, string>();
  const edges = new Map<string, string[]>();
  for (const v of bf.variants) {
    if (v.from === undefined) continue;
    if (!byName.has(v.from)) problems.push({ ...at(v), field: `variants.${v.name}.from`, message: `from: unknown variant "${v.from}"` });
    else froms.set(v.name, v.from);
    edges.set(v.name, [v.from]);
  }
  for (const cycle of fromCycles(names, froms)) {
    problems.push({
      ...at(byName.get(cycle[0]!)!),
      field: `variants.${cycle[0]}.from`,
      message: `from: variants start from each other in a cycle: ${cycle.join(' -> ')}`,
      hint: 'one variant of the cycle must start from an image (base) instead',
    });
  }
  for (const v of bf.variants) {
    for (const s of v.steps) for (const f of stepSources(s)) edges.set(v.name, [...(edges.get(v.name) ?? []), f]);
  }
  for (const v of bf.variants) {
    v.steps.forEach((s, i) => {
      if (s.kind !== 'copy' || s.from === undefined) return;
      const field = `variants.${v.name}.steps[${i}].from`;
      if (!byName.has(s.from)) {
        problems.push({ ...at(v, s.pos), field, message: `copy from: unknown variant "${s.from}"` });
        return;
      }
      const back = dependencyPath(edges, s.from, v.name);
      if (back)
        problems.push({
          ...at(v, s.pos),
          field,
          message: `copy from: variants depend on each other in a cycle: ${[v.name, ...back].join(' -> ')}`,
          hint: 'a variant cannot copy from itself or from a variant that starts from or copies from it',
        });
    });
  }
  return problems;
}
