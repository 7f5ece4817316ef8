/** `tags` lines: metadata-action's tag rule grammar, parsed and checked line by line. */
import { GLOBAL_EXPRS, SCHEDULE_EXPRS, SEMVER_EXPRS, TagRuleError, checked, meaningful, splitFields } from './lines.js';

export type TagRuleType = 'schedule' | 'semver' | 'match' | 'edge' | 'ref' | 'raw' | 'sha';
export type RefEvent = 'branch' | 'tag' | 'pr';

/** One parsed `tags` line. Optional fields are only those the type uses. */
export interface TagRule {
  type: TagRuleType;
  /** The line as written, for messages. */
  source: string;
  /** 'true', 'false' or an expression giving one of them (`{{is_default_branch}}`). */
  enable: string;
  priority: number;
  /** When set (even to ''), replaces the flavor prefix for this rule. */
  prefix?: string;
  suffix?: string;
  /** raw: the tag; semver/match: a version to use instead of the Git tag ('' = the Git tag). */
  value?: string;
  /** schedule: template (default `nightly`); semver: template; match: regular expression. */
  pattern?: string;
  /** ref: which ref kind it tags. */
  event?: RefEvent;
  /** sha: short (default) or long. */
  format?: 'short' | 'long';
  /** edge: the branch that gets `edge` ('' = the repository's default branch). */
  branch?: string;
  /** match: capture group (default 0, the whole match). */
  group?: number;
}

/** metadata-action's default priorities (README, "priority attribute"). */
export const DEFAULT_PRIORITIES: Readonly<Record<TagRuleType, number>> = Object.freeze({
  schedule: 1000,
  semver: 900,
  match: 800,
  edge: 700,
  ref: 600,
  raw: 200,
  sha: 100,
});

/** The rules metadata-action uses when its `tags` input is empty. */
export const DEFAULT_TAG_LINES: readonly string[] = Object.freeze(['type=schedule', 'type=ref,event=branch', 'type=ref,event=tag', 'type=ref,event=pr']);

const TYPES: readonly TagRuleType[] = ['schedule', 'semver', 'match', 'edge', 'ref', 'raw', 'sha'];
const COMMON_ATTRS = ['type', 'enable', 'priority', 'prefix', 'suffix'];
const TYPE_ATTRS: Record<TagRuleType, string[]> = {
  schedule: ['pattern'],
  semver: ['pattern', 'value'],
  match: ['pattern', 'group', 'value'],
  edge: ['branch'],
  ref: ['event'],
  raw: ['value'],
  sha: ['format'],
};
const EXAMPLES: Record<TagRuleType, string> = {
  schedule: "type=schedule,pattern={{date 'YYYYMMDD'}}",
  semver: 'type=semver,pattern={{version}}',
  match: 'type=match,pattern=v(\\d+\\.\\d+),group=1',
  edge: 'type=edge,branch=main',
  ref: 'type=ref,event=branch',
  raw: 'type=raw,value=latest',
  sha: 'type=sha,format=long',
};

function parseRule(line: string): TagRule {
  let fields: string[];
  try {
    fields = splitFields(line);
  } catch (e) {
    throw new TagRuleError(line, `${(e as Error).message} (close it with ")`);
  }
  const attrs = new Map<string, string>();
  for (const f of fields) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? 'value' : f.slice(0, eq).trim().toLowerCase();
    const value = eq < 0 ? f : f.slice(eq + 1).trim();
    if (attrs.has(key)) throw new TagRuleError(line, `${key}= is given twice (keep one)`);
    attrs.set(key, value);
  }
  const typeName = attrs.get('type') ?? 'raw';
  if (typeName === 'pep440') throw new TagRuleError(line, 'type=pep440 is not supported (use type=semver for vX.Y.Z tags, or type=match with a regular expression)');
  if (!(TYPES as readonly string[]).includes(typeName)) {
    throw new TagRuleError(line, `unknown type "${typeName}" (use one of ${TYPES.join(', ')}; a line without type= is type=raw)`);
  }
  const type = typeName as TagRuleType;
  for (const key of attrs.keys()) {
    if (!COMMON_ATTRS.includes(key) && !TYPE_ATTRS[type].includes(key)) {
      const allowed = [...COMMON_ATTRS.slice(1), ...TYPE_ATTRS[type]].map((a) => `${a}=`).join(', ');
      throw new TagRuleError(line, `unknown attribute ${key}= for type=${type} (allowed: ${allowed}; e.g. ${EXAMPLES[type]})`);
    }
  }
  const rule: TagRule = { type, source: line, enable: attrs.get('enable') ?? 'true', priority: DEFAULT_PRIORITIES[type] };

  const pr = attrs.get('priority');
  if (pr !== undefined) {
    if (!/^-?\d+$/.test(pr)) throw new TagRuleError(line, `priority=${pr} is not a whole number (e.g. priority=${DEFAULT_PRIORITIES[type]}; higher comes first)`);
    rule.priority = Number(pr);
  }
  checked(line, 'tags', 'enable', rule.enable, GLOBAL_EXPRS);
  if (!rule.enable.includes('{{') && rule.enable !== 'true' && rule.enable !== 'false') {
    throw new TagRuleError(line, `enable=${rule.enable} must be true or false (or an expression such as {{is_default_branch}})`);
  }
  for (const k of ['prefix', 'suffix'] as const) {
    const v = attrs.get(k);
    if (v !== undefined) {
      checked(line, 'tags', k, v, GLOBAL_EXPRS);
      rule[k] = v;
    }
  }

  switch (type) {
    case 'schedule':
      rule.pattern = attrs.get('pattern') ?? 'nightly';
      checked(line, 'tags', 'pattern', rule.pattern, SCHEDULE_EXPRS);
      break;
    case 'semver': {
      const pattern = attrs.get('pattern');
      if (!pattern) throw new TagRuleError(line, `type=semver needs pattern= (e.g. ${EXAMPLES.semver} or pattern={{major}}.{{minor}})`);
      checked(line, 'tags', 'pattern', pattern, SEMVER_EXPRS);
      rule.pattern = pattern;
      rule.value = attrs.get('value') ?? '';
      checked(line, 'tags', 'value', rule.value, GLOBAL_EXPRS);
      break;
    }
    case 'match': {
      const pattern = attrs.get('pattern');
      if (!pattern) throw new TagRuleError(line, `type=match needs pattern= (e.g. ${EXAMPLES.match})`);
      try {
        toRegExp(pattern);
      } catch (e) {
        throw new TagRuleError(line, `pattern=${pattern} is not a valid regular expression: ${(e as Error).message}`);
      }
      rule.pattern = pattern;
      const g = attrs.get('group') ?? '0';
      if (!/^\d+$/.test(g)) throw new TagRuleError(line, `group=${g} must be a capture group number (0 = the whole match)`);
      rule.group = Number(g);
      rule.value = attrs.get('value') ?? '';
      checked(line, 'tags', 'value', rule.value, GLOBAL_EXPRS);
      break;
    }
    case 'edge':
      rule.branch = attrs.get('branch') ?? '';
      break;
    case 'ref': {
      const event = attrs.get('event');
      if (event === undefined) throw new TagRuleError(line, 'type=ref needs event=branch, event=tag or event=pr');
      if (event !== 'branch' && event !== 'tag' && event !== 'pr') throw new TagRuleError(line, `event=${event} is not one of branch, tag, pr`);
      rule.event = event;
      if (event === 'pr' && rule.prefix === undefined) rule.prefix = 'pr-';
      break;
    }
    case 'raw': {
      const value = attrs.get('value');
      if (value === undefined) throw new TagRuleError(line, 'type=raw needs value= (e.g. type=raw,value=latest, or just the tag on its own line)');
      checked(line, 'tags', 'value', value, GLOBAL_EXPRS);
      rule.value = value;
      break;
    }
    case 'sha': {
      const format = attrs.get('format') ?? 'short';
      if (format !== 'short' && format !== 'long') throw new TagRuleError(line, `format=${format} must be short or long`);
      rule.format = format;
      if (rule.prefix === undefined) rule.prefix = 'sha-';
      break;
    }
  }
  return rule;
}

/**
 * Parses `tags` lines (blank lines and `#` comments skipped), in the order given. Throws
 * TagRuleError naming the bad line. An empty list gives no rules: use {@link resolveTagRules} for
 * metadata-action's defaults.
 */
export function parseTagRules(lines: readonly string[]): TagRule[] {
  return meaningful(lines).map(parseRule);
}

/**
 * The rules for one variant: the global lines (metadata-action's defaults when there are none)
 * followed by the variant's own lines. computeTags orders them by priority.
 */
export function resolveTagRules(globalLines: readonly string[], variantLines: readonly string[] = []): TagRule[] {
  const global = parseTagRules(globalLines);
  return [...(global.length ? global : parseTagRules(DEFAULT_TAG_LINES)), ...parseTagRules(variantLines)];
}

/**
 * Parses `flavor` lines into only what they set. A `prefix=`/`suffix=` line also sets its

/** A match pattern: `/re/flags` or a plain regular expression, as metadata-action reads it. */
export function toRegExp(pattern: string): RegExp {
  const m = /^\/(.+)\/(.*)$/.exec(pattern);
  return m ? new RegExp(m[1]!, m[2]) : new RegExp(pattern);
}
