import type { BuildFile, ConfigProblem, VariantSpec } from '../config/model.js';
import { parseReference } from '../oci/reference.js';

/**
 * `--base VARIANT=REF` (or `--base REF` when one variant has a base): a variant's base for this
 * run, without editing the build file. It reaches the cache keys through the base's digest.
 */
export function baseOverrides(bf: BuildFile, given: readonly string[], problems: ConfigProblem[]): Map<string, string> {
  const out = new Map<string, string>();
  const withBase = bf.variants.filter((v) => v.from === undefined);
  for (const g of given) {
    const eq = g.indexOf('=');
    // A reference never has '=': with one, the left side names the variant.
    let name = eq >= 0 ? g.slice(0, eq).trim() : undefined;
    const ref = (eq >= 0 ? g.slice(eq + 1) : g).trim();
    if (name === undefined) {
      if (withBase.length !== 1) {
        problems.push({
          file: 'inputs',
          field: 'base',
          message: `base "${g}" names no variant, and ${withBase.length} variants have a base (${withBase.map((v) => v.name).join(', ') || 'none'})`,
          hint: 'write VARIANT=REF, e.g. --base base=docker.io/library/debian:12',
        });
        continue;
      }
      name = withBase[0]!.name;
    }
    const v = bf.variants.find((x) => x.name === name);
    if (!v) {
      problems.push({
        file: 'inputs',
        field: 'base',
        message: `base "${g}": unknown variant "${name}"`,
        hint: `variants with a base: ${withBase.map((x) => x.name).join(', ') || 'none'}`,
      });
      continue;
    }
    if (v.from !== undefined) {
      problems.push({
        file: 'inputs',
        field: 'base',
        message: `base "${g}": variant ${name} starts from: ${v.from}, not from a base image`,
        hint: `override the base of the variant it starts from (${rootOf(bf, v)})`,
      });
      continue;
    }
    if (ref !== 'scratch') {
      try {
        parseReference(ref);
      } catch (e) {
        problems.push({
          file: 'inputs',
          field: 'base',
          message: `base "${g}": ${(e as Error).message}`,
          hint: 'give an image reference, e.g. docker.io/library/debian:12 or registry/repo@sha256:…',
        });
        continue;
      }
    }
    out.set(name, ref);
  }
  return out;
}

function rootOf(bf: BuildFile, v: VariantSpec): string {
  let cur = v;
  for (let i = 0; cur.from !== undefined && i < bf.variants.length; i++) cur = bf.variants.find((x) => x.name === cur.from) ?? cur;
  return cur.name;
}

/**
 * `--rebuild-from VARIANT[:STEP]`: the step (1-based, as the build file reads; the whole variant
 * without one) from which the layer cache is ignored, for that variant and every variant built
 * `from` it. Returned as variant -> first step index to rebuild (0-based).
 */
export function rebuildFromOf(variants: readonly VariantSpec[], given: string | undefined, problems: ConfigProblem[]): Map<string, number> {
  const out = new Map<string, number>();
  if (given === undefined || given === '') return out;
  const m = /^([^:]+)(?::(\d+))?$/.exec(given.trim());
  const v = m ? variants.find((x) => x.name === m[1]) : undefined;
  if (!m || !v) {
    problems.push({
      file: 'inputs',
      field: 'rebuild-from',
      message: m
        ? `rebuild-from "${given}": variant ${m[1]} is not part of this build`
        : `rebuild-from "${given}" is not VARIANT or VARIANT:STEP`,
      hint: `e.g. --rebuild-from ${variants[0]?.name ?? 'app'}:2; variants: ${variants.map((x) => x.name).join(', ')}`,
    });
    return out;
  }
  const step = m[2] === undefined ? 1 : Number(m[2]);
  if (step < 1 || step > Math.max(v.steps.length, 1)) {
    problems.push({
      file: 'inputs',
      field: 'rebuild-from',
      message: `rebuild-from "${given}": variant ${v.name} has ${v.steps.length} step(s), numbered from 1`,
      hint: `give a step from 1 to ${v.steps.length}, or the variant alone to rebuild all of it`,
    });
    return out;
  }
  out.set(v.name, step - 1);
  // Every variant built from it starts from rebuilt layers: none of theirs is taken from the cache.
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of variants)
      if (c.from !== undefined && out.has(c.from) && !out.has(c.name)) {
        out.set(c.name, 0);
        grew = true;
      }
  }
  return out;
}
