import { realpath } from 'node:fs/promises';
import { parsePlatform } from '../oci/platform.js';
import type { BuildFile, ConfigProblem, CopySource, Step, VariantSpec } from './model.js';
import { resolveCopySource } from './sources.js';

/** Names filled in per platform in copy sources: target/${arch}/app, dist/${os}-${arch}/app. */
export const PLATFORM_PLACEHOLDERS = ['platform', 'os', 'arch', 'arch_variant'] as const;

const PLACEHOLDER_RE = /\$\{(platform|os|arch|arch_variant)\}/;

export function hasPlatformPlaceholder(s: string): boolean {
  return PLACEHOLDER_RE.test(s);
}

/**
 * Fills the platform placeholders for one platform. `${platform}` is os/arch[/variant] with
 * slashes kept (a path), `${arch_variant}` is empty when the platform has no variant.
 * (`${variant}` is the build-file variant's name, so the platform's variant has its own name.)
 */
export function fillPlatform(pattern: string, platform: string): string {
  const p = parsePlatform(platform);
  const values: Record<string, string> = { platform, os: p.os, arch: p.architecture, arch_variant: p.variant ?? '' };
  return pattern.replace(/\$\{(platform|os|arch|arch_variant)\}/g, (_m, n: string) => values[n] ?? '');
}

/**
 * Resolves every per-platform copy source for the platforms each variant builds. Part of the
 * plan phase: file system checks only, no network; problems point at the step. Returns copies
 * of the variants whose copy steps have `platformSources`; the given ones are not changed.
 */
export async function resolvePlatformSources(
  bf: BuildFile,
  variants: readonly VariantSpec[],
  platformsOf: (v: VariantSpec) => string[],
): Promise<{ problems: ConfigProblem[]; variants: VariantSpec[] }> {
  const problems: ConfigProblem[] = [];
  const realContext = await realpath(bf.context);
  const resolvedVariants: VariantSpec[] = [];
  for (const v of variants) {
    const steps: Step[] = [];
    for (const [i, step] of v.steps.entries()) {
      if (step.kind !== 'copy' || !step.sources.some((s) => s.perPlatform)) {
        steps.push(step);
        continue;
      }
      const platformSources: Record<string, CopySource[]> = {};
      for (const platform of platformsOf(v)) {
        const resolved: CopySource[] = [];
        for (const src of step.sources) {
          if (!src.perPlatform) {
            resolved.push(src);
            continue;
          }
          const pattern = fillPlatform(src.pattern, platform);
          const r = await resolveCopySource(bf.context, pattern, realContext);
          for (const pr of r.problems) {
            problems.push({
              file: bf.file,
              line: step.pos.line,
              column: step.pos.column,
              field: `variants.${v.name}.steps[${i}].copy`,
              message: `for ${platform}: ${pr.message}`,
              hint: pr.hint,
            });
          }
          if (r.source) resolved.push(r.source);
        }
        platformSources[platform] = resolved;
      }
      steps.push({ ...step, platformSources });
    }
    resolvedVariants.push({ ...v, steps });
  }
  return { problems, variants: resolvedVariants };
}
