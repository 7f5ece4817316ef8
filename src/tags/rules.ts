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
  /** semver: a regular expression whose group 1 is taken from the tag (or value=) as the version. */
  match?: string;
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
export const DEFAULT_TAG_LINES: readonly string[] = Object.freeze([
  'type=schedule',
  'type=ref,event=branch',
  'type=ref,event=tag',
  'type=ref,event=pr',
]);

const TYPES: readonly TagRuleType[] = ['schedule', 'semver', 'match', 'edge', 'ref', 'raw', 'sha'];
const COMMON_ATTRS = ['type', 'enable', 'priority', 'prefix', 'suffix'];
const TYPE_ATTRS: Record<TagRuleType, string[]> = {
  schedule: ['pattern'],
  semver: ['pattern', 'value', 'match'],
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

type Attrs = Map<string, string>;

/** The line's `key=value` fields (a bare field is `value=`), each key once. */
function attrsOf(line: string): Attrs {
  let fields: string[];
  try {
    fields = splitFields(line);
  } catch (e) {
    throw new TagRuleError(line, `${(e as Error).message} (close it with ")`);
  }
  const attrs: Attrs = new Map();
  for (const f of fields) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? 'value' : f.slice(0, eq).trim().toLowerCase();
    const value = eq < 0 ? f : f.slice(eq + 1).trim();
    if (attrs.has(key)) throw new TagRuleError(line, `${key}= is given twice (keep one)`);
    attrs.set(key, value);
  }
  return attrs;
}

function typeOf(line: string, attrs: Attrs): TagRuleType {
  const typeName = attrs.get('type') ?? 'raw';
  if (typeName === 'pep440')
    throw new TagRuleError(line, 'type=pep440 is not supported (use type=semver for vX.Y.Z tags, or type=match with a regular expression)');
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
  return type;
}

/** enable=, priority=, prefix=, suffix=: what every type takes. */
function commonRule(line: string, type: TagRuleType, attrs: Attrs): TagRule {
  const rule: TagRule = { type, source: line, enable: attrs.get('enable') ?? 'true', priority: DEFAULT_PRIORITIES[type] };
  const pr = attrs.get('priority');
  if (pr !== undefined) {
    if (!/^-?\d+$/.test(pr))
      throw new TagRuleError(line, `priority=${pr} is not a whole number (e.g. priority=${DEFAULT_PRIORITIES[type]}; higher comes first)`);
    rule.priority = Number(pr);
  }
  checked(line, 'tags', 'enable', rule.enable, GLOBAL_EXPRS);
  if (!rule.enable.includes('{{') && rule.enable !== 'true' && rule.enable !== 'false') {
    throw new TagRuleError(
      line,
      `enable=${rule.enable} must be true or false (or an expression such as {{is_default_branch}} or {{is_not_default_branch}})`,
    );
  }
  for (const k of ['prefix', 'suffix'] as const) {
    const v = attrs.get(k);
    if (v !== undefined) {
      checked(line, 'tags', k, v, GLOBAL_EXPRS);
      rule[k] = v;
    }
  }
  return rule;
}

function regExpOf(line: string, attr: string, pattern: string): RegExp {
  try {
    return toRegExp(pattern);
  } catch (e) {
    throw new TagRuleError(line, `${attr}=${pattern} is not a valid regular expression: ${(e as Error).message}`);
  }
}

/** value= of semver and match: a version to use instead of the Git tag. */
function versionValue(line: string, rule: TagRule, attrs: Attrs): void {
  rule.value = attrs.get('value') ?? '';
  checked(line, 'tags', 'value', rule.value, GLOBAL_EXPRS);
}

function parseSemverRule(line: string, rule: TagRule, attrs: Attrs): void {
  const pattern = attrs.get('pattern');
  if (!pattern) throw new TagRuleError(line, `type=semver needs pattern= (e.g. ${EXAMPLES.semver} or pattern={{major}}.{{minor}})`);
  checked(line, 'tags', 'pattern', pattern, SEMVER_EXPRS);
  rule.pattern = pattern;
  versionValue(line, rule, attrs);
  const match = attrs.get('match');
  if (match) {
    // A plain regular expression (String#match of a string, as metadata-action), whose group 1 is
    // the version: without a group it would have nothing to use.
    try {
      new RegExp(match);
    } catch (e) {
      throw new TagRuleError(line, `match=${match} is not a valid regular expression: ${(e as Error).message}`);
    }
    const groups = new RegExp(`${match}|`).exec('')!.length - 1;
    if (groups < 1)
      throw new TagRuleError(line, `match=${match} has no capture group: the version is group 1 (e.g. "match=v(\\d+\\.\\d+\\.\\d+)$")`);
    rule.match = match;
  }
}

function parseMatchRule(line: string, rule: TagRule, attrs: Attrs): void {
  const pattern = attrs.get('pattern');
  if (!pattern) throw new TagRuleError(line, `type=match needs pattern= (e.g. ${EXAMPLES.match})`);
  regExpOf(line, 'pattern', pattern);
  rule.pattern = pattern;
  const g = attrs.get('group') ?? '0';
  if (!/^\d+$/.test(g)) throw new TagRuleError(line, `group=${g} must be a capture group number (0 = the whole match)`);
  rule.group = Number(g);
  versionValue(line, rule, attrs);
}

function parseRefRule(line: string, rule: TagRule, attrs: Attrs): void {
  const event = attrs.get('event');
  if (event === undefined) throw new TagRuleError(line, 'type=ref needs event=branch, event=tag or event=pr');
  if (event !== 'branch' && event !== 'tag' && event !== 'pr') throw new TagRuleError(line, `event=${event} is not one of branch, tag, pr`);
  rule.event = event;
  if (event === 'pr' && rule.prefix === undefined) rule.prefix = 'pr-';
}

const TYPE_PARSERS: Record<TagRuleType, (line: string, rule: TagRule, attrs: Attrs) => void> = {
  schedule: (line, rule, attrs) => {
    rule.pattern = attrs.get('pattern') ?? 'nightly';
    checked(line, 'tags', 'pattern', rule.pattern, SCHEDULE_EXPRS);
  },
  semver: parseSemverRule,
  match: parseMatchRule,
  edge: (_line, rule, attrs) => {
    rule.branch = attrs.get('branch') ?? '';
  },
  ref: parseRefRule,
  raw: (line, rule, attrs) => {
    const value = attrs.get('value');
    if (value === undefined)
      throw new TagRuleError(line, 'type=raw needs value= (e.g. type=raw,value=latest, or just the tag on its own line)');
    checked(line, 'tags', 'value', value, GLOBAL_EXPRS);
    rule.value = value;
  },
  sha: (line, rule, attrs) => {
    const format = attrs.get('format') ?? 'short';
    if (format !== 'short' && format !== 'long') throw new TagRuleError(line, `format=${format} must be short or long`);
    rule.format = format;
    if (rule.prefix === undefined) rule.prefix = 'sha-';
  },
};

function parseRule(line: string): TagRule {
  const attrs = attrsOf(line);
  const type = typeOf(line, attrs);
  const rule = commonRule(line, type, attrs);
  TYPE_PARSERS[type](line, rule, attrs);
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

/** A match pattern: `/re/flags` or a plain regular expression, as metadata-action reads it. */
export function toRegExp(pattern: string): RegExp {
  const m = /^\/(.+)\/(.*)$/.exec(pattern);
  return m ? new RegExp(m[1]!, m[2]) : new RegExp(pattern);
}
