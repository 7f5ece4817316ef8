/** What `tags` and `flavor` lines share: the error, field splitting and expression checks. */
import { TemplateError, checkTemplate, parseTemplate, type ExprSpec, type TemplatePart } from './template.js';
import { checkTimeZone } from './date-format.js';

export class TagRuleError extends Error {
  constructor(
    readonly line: string,
    reason: string,
    readonly input: 'tags' | 'flavor' = 'tags',
  ) {
    super(`${input}: line "${line}": ${reason}`);
    this.name = 'TagRuleError';
  }
}

// --- Expressions allowed where ---------------------------------------------------------------

export const DATE_SPEC: ExprSpec = { args: 1, hash: ['tz'] };
export const GLOBAL_EXPRS: Record<string, ExprSpec> = {
  branch: { args: 0 },
  tag: { args: 0 },
  sha: { args: 0 },
  base_ref: { args: 0 },
  is_default_branch: { args: 0 },
  is_not_default_branch: { args: 0 },
  date: DATE_SPEC,
  commit_date: DATE_SPEC,
};
export const SEMVER_EXPRS: Record<string, ExprSpec> = {
  raw: { args: 0 },
  version: { args: 0 },
  major: { args: 0 },
  minor: { args: 0 },
  patch: { args: 0 },
};
export const SCHEDULE_EXPRS: Record<string, ExprSpec> = { date: DATE_SPEC, commit_date: DATE_SPEC };

export function checked(
  line: string,
  input: 'tags' | 'flavor',
  attr: string,
  value: string,
  allowed: Record<string, ExprSpec>,
): TemplatePart[] {
  try {
    const parts = parseTemplate(value);
    checkTemplate(parts, allowed);
    for (const p of parts) if (typeof p !== 'string' && p.hash.tz !== undefined) checkTimeZone(p.hash.tz);
    return parts;
  } catch (e) {
    if (e instanceof TemplateError) {
      const hint = allowed === SEMVER_EXPRS ? ' (in a semver pattern; put {{branch}}-style expressions in prefix= or suffix=)' : '';
      throw new TagRuleError(line, `${attr}=: ${e.message}${hint}`, input);
    }
    throw e;
  }
}

// --- Parsing ----------------------------------------------------------------------------------

/**
 * Splits one line into comma-separated fields like metadata-action's CSV parsing: a field may be
 * double-quoted (`"value=a,b"`, `""` for a quote). Commas inside `{{ }}` do not split.
 */
export function splitFields(line: string): string[] {
  const fields: string[] = [];
  let cur = '';
  let quoted = false;
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"') {
        if (line[i + 1] === '"') {
          cur += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        cur += c;
      }
    } else if (c === '"' && cur.trim() === '') {
      quoted = true;
      cur = '';
    } else if (c === '{' && line[i + 1] === '{') {
      depth++;
      cur += '{{';
      i++;
    } else if (c === '}' && line[i + 1] === '}' && depth > 0) {
      depth--;
      cur += '}}';
      i++;
    } else if (c === ',' && depth === 0) {
      fields.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (quoted) throw new Error('a double-quoted field is not closed');
  fields.push(cur);
  return fields.map((f) => f.trim()).filter((f) => f !== '');
}

/** Lines that carry rules: blank lines and full-line `#` comments are skipped (as metadata-action v6 does). */
export function meaningful(lines: readonly string[]): string[] {
  return lines
    .flatMap((l) => l.split(/\r?\n/))
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}
