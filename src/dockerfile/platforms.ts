/**
 * One Dockerfile converted for several target platforms, joined into one set of variants, as
 * BuildKit solves one graph per platform and shares what is equal:
 * - a stage built for the target platform is one variant listing the platforms that need it;
 *   where its conversion differs on a platform (TARGETARCH in ENV, RUN, COPY, LABEL; another
 *   stage to start from) that platform's definition goes in `perPlatform`;
 * - a stage with FROM --platform (`$BUILDPLATFORM`, or a literal one) is built for that platform
 *   only (`fixedPlatform`): once when its conversion is the same for every target, else once
 *   per distinct conversion (a stage reading TARGETARCH), the extra ones named `<stage>@<os>-<arch>`
 *   after the first target platform that needs them.
 */
import { isDeepStrictEqual } from 'node:util';
import { dependencies } from '../config/graph.js';
import type { Step, VariantSpec } from '../config/model.js';
import { platformPart } from '../config/per-platform.js';
import { InstructionError } from './instructions.js';

export interface PlatformConversion {
  /** The target platform (os/arch[/variant]). */
  platform: string;
  /** The stages' variants the target needs, converted for this platform. */
  variants: VariantSpec[];
  target: string;
}

export function joinPlatforms(conversions: PlatformConversion[], report: (e: InstructionError) => void): VariantSpec[] {
  // A stage whose FROM --platform is the target platform in every conversion that has it
  // (`--platform=$TARGETPLATFORM`, or $BUILDPLATFORM when building the machine's platform only)
  // is an ordinary stage: the model stays as it would be without the flag.
  const fixedNames = new Set(
    conversions.flatMap((c) => c.variants.filter((v) => v.fixedPlatform && v.fixedPlatform !== c.platform)).map((v) => v.name),
  );
  const unfix = (v: VariantSpec): VariantSpec => {
    if (!v.fixedPlatform || fixedNames.has(v.name)) return v;
    const { fixedPlatform: _, ...rest } = v;
    return rest;
  };
  if (conversions.length === 1) return conversions[0]!.variants.map(unfix);
  /** Fixed-platform stages: the instances under each stage's variant name, the first one keeping it. */
  const fixed = new Map<string, VariantSpec[]>();
  const shared = new Map<string, { spec: VariantSpec; platforms: string[]; perPlatform: NonNullable<VariantSpec['perPlatform']> }>();
  for (const c of conversions) {
    const renamed = new Map<string, string>();
    for (const original of dependencyOrder(c.variants, c.target)) {
      const v = renameRefs(unfix(original), renamed);
      if (v.fixedPlatform) {
        if (v.name === c.target) {
          report(
            new InstructionError(
              v.pos,
              'FROM',
              `the target stage is built for ${v.fixedPlatform} whatever the target platform (FROM --platform), so it cannot make an image for each of ${conversions.map((x) => x.platform).join(', ')}`,
              'drop --platform from the last stage (it is meant for build stages), or build one platform',
            ),
          );
          return [];
        }
        const instances = fixed.get(v.name) ?? [];
        fixed.set(v.name, instances);
        const same = instances.find((i) => isDeepStrictEqual({ ...i, name: v.name }, v));
        if (same) renamed.set(v.name, same.name);
        else {
          const name = instances.length ? `${v.name}@${c.platform.replaceAll('/', '-')}` : v.name;
          instances.push({ ...v, name });
          renamed.set(v.name, name);
        }
        continue;
      }
      const entry = shared.get(v.name);
      if (!entry) shared.set(v.name, { spec: v, platforms: [c.platform], perPlatform: {} });
      else {
        entry.platforms.push(c.platform);
        const part = platformPart(v);
        if (!isDeepStrictEqual(platformPart(entry.spec), part)) entry.perPlatform[c.platform] = part;
      }
    }
  }
  const out: VariantSpec[] = [];
  for (const { spec, platforms, perPlatform } of shared.values())
    out.push({ ...spec, platforms, ...(Object.keys(perPlatform).length ? { perPlatform } : {}) });
  for (const instances of fixed.values()) out.push(...instances);
  return out;
}

/** The variants, each after the ones it needs (from the target down the dependencies). */
function dependencyOrder(variants: VariantSpec[], target: string): VariantSpec[] {
  const byName = new Map(variants.map((v) => [v.name, v]));
  const out: VariantSpec[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    const v = byName.get(name);
    if (!v || seen.has(name)) return;
    seen.add(name);
    for (const d of dependencies(v)) visit(d);
    out.push(v);
  };
  visit(target);
  for (const v of variants) visit(v.name);
  return out;
}

/** A variant with its references to other variants (from, copy --from, RUN --mount from) renamed. */
function renameRefs(v: VariantSpec, renamed: ReadonlyMap<string, string>): VariantSpec {
  if (!renamed.size) return v;
  const to = (n: string) => renamed.get(n) ?? n;
  const step = (s: Step): Step => {
    if (s.kind === 'copy' && s.from !== undefined) return { ...s, from: to(s.from) };
    if (s.kind === 'run' && s.mounts)
      return { ...s, mounts: s.mounts.map((m) => ('from' in m && m.from !== undefined ? { ...m, from: to(m.from) } : m)) };
    return s;
  };
  return { ...v, ...(v.from !== undefined ? { from: to(v.from) } : {}), steps: v.steps.map(step) };
}
