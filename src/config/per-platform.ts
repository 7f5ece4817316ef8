/**
 * A variant's definition for one platform: its own fields, or its `perPlatform` entry for that
 * platform (a Dockerfile converted per platform). Everything that reads what a variant builds
 * (steps, from, base, settings) for a given platform goes through `specFor`; what needs every
 * platform's definition at once (the dependency graph, root checks) uses `platformSpecs`.
 */
import { PLATFORM_FIELDS, type PlatformSpec, type VariantSpec } from './model.js';

/** The variant as built for `platform` (os/arch[/variant], normalized). */
export function specFor(v: VariantSpec, platform: string): VariantSpec {
  const own = v.perPlatform?.[platform];
  if (!own) return v;
  const out: VariantSpec = { ...v };
  for (const f of PLATFORM_FIELDS) delete out[f];
  return { ...out, ...own };
}

/** The variant's own definition and each per-platform one. */
export function platformSpecs(v: VariantSpec): VariantSpec[] {
  return [v, ...Object.keys(v.perPlatform ?? {}).map((p) => specFor(v, p))];
}

/** The build-defining fields of a variant (for a `perPlatform` entry). */
export function platformPart(v: VariantSpec): PlatformSpec {
  const out: Partial<Record<keyof PlatformSpec, unknown>> = {};
  for (const f of PLATFORM_FIELDS) if (v[f] !== undefined) out[f] = v[f];
  return out as PlatformSpec;
}

/** The variant with `change` applied to its own definition and to each per-platform one. */
export function mapPlatformSpecs(v: VariantSpec, change: (spec: PlatformSpec) => Partial<PlatformSpec>): VariantSpec {
  const out: VariantSpec = { ...v, ...change(platformPart(v)) };
  if (v.perPlatform) out.perPlatform = Object.fromEntries(Object.entries(v.perPlatform).map(([p, s]) => [p, { ...s, ...change(s) }]));
  return out;
}
