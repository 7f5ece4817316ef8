/**
 * Tag rules and flavor compatible with docker/metadata-action (v5/v6): the same `tags` and `flavor`
 * lines give the same tag names, in the same order, applied once per variant.
 *
 * Differences, all on inputs metadata-action would turn into an unusable tag or silently ignore:
 * - a tag is also cut to 128 characters and loses leading `.`/`-` (a registry rejects both);
 * - unknown types, attributes and `{{expressions}}` are errors naming the line, not '' or ignored;
 * - `type=pep440` is not supported (use `type=semver` or `type=match`);
 * - the final list has no duplicates (e.g. `type=raw,value=latest` plus an automatic `latest`);
 * - a rule whose value is empty adds no tag even with a prefix/suffix (`{{branch}}` on a tag push
 *   with a `-claude` suffix gives nothing, not `-claude`);
 * - expressions in a flavor prefix/suffix are also rendered for the `latest` tag;
 * - expression output is not HTML-escaped (Handlebars would turn `=` in a branch into `&#x3D;`);
 * - `{{commit_date}}` uses the commit date the push payload carries, else the current date.
 */
import { branchOf, tagOf, type GitContext } from './context.js';
import {
  TemplateError,
  checkTemplate,
  checkTimeZone,
  formatDate,
  parseTemplate,
  renderTemplate,
  type ExprFn,
  type ExprSpec,
  type TemplateExpr,
  type TemplatePart,
} from './template.js';

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

export interface Flavor {
  latest: 'auto' | 'true' | 'false';
  prefix: string;
  /** Also put the prefix on `latest`. */
  prefixLatest: boolean;
  suffix: string;
  suffixLatest: boolean;
}

export const DEFAULT_FLAVOR: Readonly<Flavor> = Object.freeze({ latest: 'auto', prefix: '', prefixLatest: false, suffix: '', suffixLatest: false });

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

export class TagRuleError extends Error {
  constructor(readonly line: string, reason: string, readonly input: 'tags' | 'flavor' = 'tags') {
    super(`${input}: line "${line}": ${reason}`);
    this.name = 'TagRuleError';
  }
}

// --- Expressions allowed where ---------------------------------------------------------------

const DATE_SPEC: ExprSpec = { args: 1, hash: ['tz'] };
const GLOBAL_EXPRS: Record<string, ExprSpec> = {
  branch: { args: 0 },
  tag: { args: 0 },
  sha: { args: 0 },
  base_ref: { args: 0 },
  is_default_branch: { args: 0 },
  date: DATE_SPEC,
  commit_date: DATE_SPEC,
};
const SEMVER_EXPRS: Record<string, ExprSpec> = { raw: { args: 0 }, version: { args: 0 }, major: { args: 0 }, minor: { args: 0 }, patch: { args: 0 } };
const SCHEDULE_EXPRS: Record<string, ExprSpec> = { date: DATE_SPEC, commit_date: DATE_SPEC };

function checked(line: string, input: 'tags' | 'flavor', attr: string, value: string, allowed: Record<string, ExprSpec>): TemplatePart[] {
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
function meaningful(lines: readonly string[]): string[] {
  return lines.flatMap((l) => l.split(/\r?\n/)).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

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
      if (eq < 0) throw new TagRuleError(line, `"${f}" is not key=value (use latest=auto|true|false, prefix=..., suffix=..., onlatest=true|false)`, 'flavor');
      const key = f.slice(0, eq).trim().toLowerCase();
      const value = f.slice(eq + 1).trim();
      switch (key) {
        case 'latest':
          if (value !== 'auto' && value !== 'true' && value !== 'false') throw new TagRuleError(line, `latest=${value} must be auto, true or false`, 'flavor');
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
          if (!last) throw new TagRuleError(line, 'onlatest= applies to the prefix= or suffix= before it on the same line (e.g. suffix=-slim,onlatest=true)', 'flavor');
          out[last === 'prefix' ? 'prefixLatest' : 'suffixLatest'] = value === 'true';
          break;
        default:
          throw new TagRuleError(line, `unknown flavor "${key}" (use latest=auto|true|false, prefix=<text>[,onlatest=true], suffix=<text>[,onlatest=true])`, 'flavor');
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

// --- Semver -----------------------------------------------------------------------------------

const NUM = '0|[1-9]\\d*';
const PRE_ID = `(?:${NUM}|\\d*[a-zA-Z-][a-zA-Z0-9-]*)`;
const SEMVER_RE = new RegExp(`^v?(${NUM})\\.(${NUM})\\.(${NUM})(?:-(${PRE_ID}(?:\\.${PRE_ID})*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$`);

export interface SemVer {
  /** As written (`v1.2.3`). */
  raw: string;
  major: number;
  minor: number;
  patch: number;
  prerelease: string[];
  build: string[];
  /** major.minor.patch[-prerelease], without build metadata and the `v`. */
  version: string;
}

/** Strict semver 2.0.0 with an optional leading `v` (what node-semver's `valid` accepts). */
export function parseSemver(s: string): SemVer | undefined {
  const raw = s.trim();
  if (raw.length > 256) return undefined;
  const m = SEMVER_RE.exec(raw);
  if (!m) return undefined;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined;
  const prerelease = m[4] ? m[4].split('.') : [];
  const build = m[5] ? m[5].split('.') : [];
  return { raw, major, minor, patch, prerelease, build, version: `${major}.${minor}.${patch}${prerelease.length ? `-${prerelease.join('.')}` : ''}` };
}

// --- Computing tags ---------------------------------------------------------------------------

/** metadata-action's tag sanitizing, plus what a registry also requires (no leading . or -, 128 max). */
export function sanitizeTag(tag: string): string {
  return tag.replace(/[^a-zA-Z0-9._-]+/g, '-').replace(/^[.-]+/, '').slice(0, 128);
}

export interface ComputeOptions {
  /** Length of `{{sha}}` and `type=sha` (DOCKER_METADATA_SHORT_SHA_LENGTH; default 7). */
  shortShaLength?: number;
  /** Told about rules skipped for a reason worth knowing (a tag that is not semver, a pattern that does not match). */
  warn?: (message: string) => void;
}

export interface ComputedVersion {
  /** The first tag: metadata-action's `version` output and the OCI version label. */
  main?: string;
  /** The other tags, in order, without `latest`. */
  partial: string[];
  latest: boolean;
  /** main, partial..., then latest (with its flavor prefix/suffix) when set; no duplicates. */
  tags: string[];
}

function toRegExp(pattern: string): RegExp {
  const m = /^\/(.+)\/(.*)$/.exec(pattern);
  return m ? new RegExp(m[1]!, m[2]) : new RegExp(pattern);
}

function isRawStatement(pattern: string): boolean {
  try {
    const parts = parseTemplate(pattern);
    return parts.length === 1 && typeof parts[0] !== 'string' && parts[0]!.name === 'raw';
  } catch {
    return false;
  }
}

/** Like {@link computeTags}, with the version and latest decision as metadata-action reports them. */
export function computeVersion(rules: readonly TagRule[], flavor: Flavor, ctx: GitContext, now: Date = new Date(), opts: ComputeOptions = {}): ComputedVersion {
  const shaLen = opts.shortShaLength ?? 7;
  if (!Number.isInteger(shaLen) || shaLen < 1) throw new Error(`short SHA length must be a positive whole number, got ${shaLen}`);
  const shortSha = (sha: string) => (shaLen >= sha.length ? sha : sha.slice(0, shaLen));
  const branch = branchOf(ctx.ref);
  const gitTag = tagOf(ctx.ref);
  const isPull = ctx.ref.startsWith('refs/pull/');
  const date = (d: Date) => (e: TemplateExpr) => formatDate(d, e.args[0] ?? '', e.hash.tz ?? 'UTC');
  const commitDate = ctx.commitDate && !Number.isNaN(Date.parse(ctx.commitDate)) ? new Date(ctx.commitDate) : now;
  const dateFns: Record<string, ExprFn> = { date: date(now), commit_date: date(commitDate) };
  const globalFns: Record<string, ExprFn> = {
    ...dateFns,
    branch: () => branch ?? '',
    tag: () => gitTag ?? '',
    sha: () => shortSha(ctx.sha),
    base_ref: () => (gitTag !== undefined || isPull ? (ctx.baseRef ?? '') : ''),
    is_default_branch: () => {
      // As metadata-action: the ref minus refs/heads/ against the default branch; these events
      // always run on the default branch's last commit.
      const b = ctx.ref.replace(/^refs\/heads\//, '');
      if (!b) return 'false';
      if (ctx.defaultBranch !== undefined && ctx.defaultBranch === b) return 'true';
      return /create|discussion|issues|schedule/.test(ctx.eventName) ? 'true' : 'false';
    },
  };
  const render = (s: string, fns: Record<string, ExprFn> = globalFns) => renderTemplate(parseTemplate(s), fns);
  const fromFlavor = flavor.latest === 'auto' ? undefined : flavor.latest === 'true';

  let main: string | undefined;
  const partial: string[] = [];
  let latest: boolean | undefined;

  const withAffixes = (val: string, rule: TagRule) => {
    let v = val;
    if (rule.prefix !== undefined) v = render(rule.prefix) + v;
    else if (flavor.prefix) v = render(flavor.prefix) + v;
    if (rule.suffix !== undefined) v += render(rule.suffix);
    else if (flavor.suffix) v += render(flavor.suffix);
    return v;
  };
  const add = (val: string, rule: TagRule, latestAuto: boolean) => {
    if (val.length === 0) return;
    const tag = sanitizeTag(withAffixes(val, rule));
    if (!tag) return;
    if (main === undefined) main = tag;
    else if (tag !== main && !partial.includes(tag)) partial.push(tag);
    latest ??= fromFlavor ?? latestAuto;
  };

  // Stable: equal priorities keep the order written (global lines before a variant's own).
  const sorted = [...rules].sort((a, b) => b.priority - a.priority);
  for (const rule of sorted) {
    const enabled = render(rule.enable);
    if (enabled !== 'true' && enabled !== 'false') throw new TagRuleError(rule.source, `enable= gave "${enabled}", which is not true or false`);
    if (enabled === 'false') continue;
    switch (rule.type) {
      case 'schedule':
        if (/schedule/.test(ctx.eventName)) add(render(rule.pattern ?? 'nightly', dateFns), rule, false);
        break;
      case 'semver': {
        const value = rule.value ?? '';
        if (gitTag === undefined && !value) break;
        const vraw = value ? render(value) : gitTag!.replaceAll('/', '-');
        const sv = parseSemver(vraw);
        if (!sv) {
          opts.warn?.(`${vraw} is not a valid semver (https://semver.org/), so "${rule.source}" adds no tag`);
          break;
        }
        const vars: Record<string, ExprFn> = {
          raw: () => sv.raw,
          version: () => sv.version,
          major: () => String(sv.major),
          minor: () => String(sv.minor),
          patch: () => String(sv.patch),
        };
        // A prerelease only ever gets its full version (or {{raw}}): no 1 / 1.2 moving tags, no latest.
        if (sv.prerelease.length) add(isRawStatement(rule.pattern!) ? sv.raw : sv.version, rule, false);
        else add(render(rule.pattern!, vars), rule, true);
        break;
      }
      case 'match': {
        const value = rule.value ?? '';
        if (gitTag === undefined && !value) break;
        const vraw = value ? render(value) : gitTag!;
        // String#match, as metadata-action: with a /g flag the "groups" are the successive matches.
        const m = vraw.match(toRegExp(rule.pattern!));
        if (!m) {
          opts.warn?.(`${rule.pattern} does not match ${vraw}, so "${rule.source}" adds no tag`);
          break;
        }
        const g = m[rule.group ?? 0];
        if (g === undefined) {
          opts.warn?.(`group ${rule.group} does not exist for pattern ${rule.pattern}, so "${rule.source}" adds no tag`);
          break;
        }
        add(g, rule, true);
        break;
      }
      case 'ref':
        if (rule.event === 'branch' && branch !== undefined) add(branch, rule, false);
        else if (rule.event === 'tag' && gitTag !== undefined) add(gitTag, rule, true);
        else if (rule.event === 'pr' && isPull) add(ctx.ref.replace(/^refs\/pull\//, '').replace(/\/merge$/, ''), rule, false);
        break;
      case 'edge': {
        if (branch === undefined) break;
        const want = rule.branch || ctx.defaultBranch;
        if (want !== undefined && want === branch) add('edge', rule, false);
        break;
      }
      case 'raw':
        add(render(rule.value ?? ''), rule, false);
        break;
      case 'sha':
        if (ctx.sha) add(rule.format === 'long' ? ctx.sha : shortSha(ctx.sha), rule, false);
        break;
    }
  }

  const tags: string[] = [];
  if (main !== undefined) {
    tags.push(main, ...partial);
    if (latest) {
      const l = sanitizeTag(`${flavor.prefixLatest ? render(flavor.prefix) : ''}latest${flavor.suffixLatest ? render(flavor.suffix) : ''}`);
      if (l && !tags.includes(l)) tags.push(l);
    }
  }
  return { main, partial, latest: latest ?? false, tags };
}

/**
 * Tag names (no repository) for one variant, in final order: the highest-priority tag first (the
 * version), then the others, then `latest` when the flavor and the first rule that produced a tag
 * say so. `now` drives `{{date}}`.
 */
export function computeTags(rules: readonly TagRule[], flavor: Flavor, ctx: GitContext, now?: Date, opts?: ComputeOptions): string[] {
  return computeVersion(rules, flavor, ctx, now, opts).tags;
}
