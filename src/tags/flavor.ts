/** `flavor` lines: latest=, and the prefix/suffix every tag gets (with onlatest=). */
import { GLOBAL_EXPRS, TagRuleError, checked, meaningful, splitFields } from './lines.js';

export interface Flavor {
  latest: 'auto' | 'true' | 'false';
  prefix: string;
  /** Also put the prefix on `latest`. */
  prefixLatest: boolean;
  suffix: string;
  suffixLatest: boolean;
}

export const DEFAULT_FLAVOR: Readonly<Flavor> = Object.freeze({
  latest: 'auto',
  prefix: '',
  prefixLatest: false,
  suffix: '',
  suffixLatest: false,
});

/**
 * Parses `flavor` lines into only what they set. A `prefix=`/`suffix=` line also sets its
 * `onlatest` (false unless the line says `onlatest=true`), as each line does in metadata-action.
 */
export function parseFlavorOverrides(lines: readonly string[]): Partial<Flavor> {
  const out: Partial<Flavor> = {};
  for (const line of meaningful(lines)) {
    let fields: string[];
    try {
      fields = splitFields(line);
    } catch (e) {
      throw new TagRuleError(line, `${(e as Error).message} (close it with ")`, 'flavor');
    }
    let last: 'prefix' | 'suffix' | undefined;
    for (const f of fields) {
      const eq = f.indexOf('=');
      if (eq < 0)
        throw new TagRuleError(
          line,
          `"${f}" is not key=value (use latest=auto|true|false, prefix=..., suffix=..., onlatest=true|false)`,
          'flavor',
        );
      const key = f.slice(0, eq).trim().toLowerCase();
      const value = f.slice(eq + 1).trim();
      switch (key) {
        case 'latest':
          if (value !== 'auto' && value !== 'true' && value !== 'false')
            throw new TagRuleError(line, `latest=${value} must be auto, true or false`, 'flavor');
          out.latest = value;
          break;
        case 'prefix':
        case 'suffix':
          checked(line, 'flavor', key, value, GLOBAL_EXPRS);
          out[key] = value;
          out[key === 'prefix' ? 'prefixLatest' : 'suffixLatest'] = false;
          last = key;
          break;
        case 'onlatest':
          if (value !== 'true' && value !== 'false') throw new TagRuleError(line, `onlatest=${value} must be true or false`, 'flavor');
          if (!last)
            throw new TagRuleError(
              line,
              'onlatest= applies to the prefix= or suffix= before it on the same line (e.g. suffix=-slim,onlatest=true)',
              'flavor',
            );
          out[last === 'prefix' ? 'prefixLatest' : 'suffixLatest'] = value === 'true';
          break;
        default:
          throw new TagRuleError(
            line,
            `unknown flavor "${key}" (use latest=auto|true|false, prefix=<text>[,onlatest=true], suffix=<text>[,onlatest=true])`,
            'flavor',
          );
      }
    }
  }
  return out;
}

/** Parses `flavor` lines over metadata-action's defaults (latest=auto, no prefix or suffix). */
export function parseFlavor(lines: readonly string[]): Flavor {
  return mergeFlavor(DEFAULT_FLAVOR, parseFlavorOverrides(lines));
}

/**
 * A variant's flavor over the global one: each field the variant sets replaces the global value
 * (a variant `suffix=-claude` replaces a global suffix rather than adding to it).
 */
export function mergeFlavor(global: Flavor, variant: Partial<Flavor>): Flavor {
  const out: Flavor = { ...global };
  for (const [k, v] of Object.entries(variant) as [keyof Flavor, Flavor[keyof Flavor] | undefined][]) {
    if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}
