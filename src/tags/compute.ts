/**
 * Tags from rules, flavor and a run's context, as metadata-action computes its `version` output
 * and `tags`: rules by priority, the first tag is the version, `latest` decided by the first rule
 * that gave a tag (or the flavor). The deliberate differences are listed in index.ts.
 */
import { branchOf, tagOf, type TagContext } from './context.js';
import { TagRuleError } from './lines.js';
import { toRegExp, type TagRule } from './rules.js';
import type { Flavor } from './flavor.js';
import { parseSemver } from './semver.js';
import { parseTemplate, type ExprFn } from './template.js';
import { expressionsFor, type ExprOptions, type Expressions } from './expressions.js';

/** metadata-action's tag sanitizing, plus what a registry also requires (no leading . or -, 128 max). */
export function sanitizeTag(tag: string): string {
  return tag
    .replace(/[^a-zA-Z0-9._-]+/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 128);
}

export interface ComputeOptions extends ExprOptions {
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

function isRawStatement(pattern: string): boolean {
  try {
    const parts = parseTemplate(pattern);
    return parts.length === 1 && typeof parts[0] !== 'string' && parts[0]!.name === 'raw';
  } catch {
    return false;
  }
}

/** A rule's tag before prefix/suffix, and whether it makes `latest` under latest=auto. */
interface RuleTag {
  value: string;
  latestAuto: boolean;
}

/** The version a semver/match rule reads: value= when set, else the Git tag (undefined: neither). */
function versionInput(rule: TagRule, ctx: TagContext, x: Expressions): string | undefined {
  if (rule.value) return x.render(rule.value);
  return tagOf(ctx.ref);
}

function semverTag(rule: TagRule, ctx: TagContext, x: Expressions, warn?: (m: string) => void): RuleTag | undefined {
  let vraw = versionInput(rule, ctx, x);
  if (vraw === undefined) return undefined;
  if (rule.match) {
    // As metadata-action: group 1 of the first match; no match keeps the whole input.
    const m = vraw.match(new RegExp(rule.match));
    if (m?.[1] !== undefined) vraw = m[1];
    else warn?.(`match=${rule.match} does not match ${vraw}, so "${rule.source}" reads ${vraw} as it is`);
  }
  vraw = vraw.replaceAll('/', '-');
  const sv = parseSemver(vraw);
  if (!sv) {
    warn?.(`${vraw} is not a valid semver (https://semver.org/), so "${rule.source}" adds no tag`);
    return undefined;
  }
  // A prerelease only ever gets its full version (or {{raw}}): no 1 / 1.2 moving tags, no latest.
  if (sv.prerelease.length) return { value: isRawStatement(rule.pattern!) ? sv.raw : sv.version, latestAuto: false };
  const vars: Record<string, ExprFn> = {
    raw: () => sv.raw,
    version: () => sv.version,
    major: () => String(sv.major),
    minor: () => String(sv.minor),
    patch: () => String(sv.patch),
  };
  return { value: x.render(rule.pattern!, vars), latestAuto: true };
}

function matchTag(rule: TagRule, ctx: TagContext, x: Expressions, warn?: (m: string) => void): RuleTag | undefined {
  const vraw = versionInput(rule, ctx, x);
  if (vraw === undefined) return undefined;
  // String#match, as metadata-action: with a /g flag the "groups" are the successive matches.
  const m = vraw.match(toRegExp(rule.pattern!));
  if (!m) {
    warn?.(`${rule.pattern} does not match ${vraw}, so "${rule.source}" adds no tag`);
    return undefined;
  }
  const g = m[rule.group ?? 0];
  if (g === undefined) {
    warn?.(`group ${rule.group} does not exist for pattern ${rule.pattern}, so "${rule.source}" adds no tag`);
    return undefined;
  }
  return { value: g, latestAuto: true };
}

function refTag(rule: TagRule, ctx: TagContext): RuleTag | undefined {
  const branch = branchOf(ctx.ref);
  const gitTag = tagOf(ctx.ref);
  if (rule.event === 'branch' && branch !== undefined) return { value: branch, latestAuto: false };
  if (rule.event === 'tag' && gitTag !== undefined) return { value: gitTag, latestAuto: true };
  if (rule.event === 'pr' && ctx.ref.startsWith('refs/pull/'))
    return { value: ctx.ref.replace(/^refs\/pull\//, '').replace(/\/merge$/, ''), latestAuto: false };
  return undefined;
}

function ruleTag(rule: TagRule, ctx: TagContext, x: Expressions, warn?: (m: string) => void): RuleTag | undefined {
  const plain = (value: string): RuleTag => ({ value, latestAuto: false });
  switch (rule.type) {
    case 'schedule':
      return /schedule/.test(ctx.eventName) ? plain(x.render(rule.pattern ?? 'nightly', x.dates)) : undefined;
    case 'semver':
      return semverTag(rule, ctx, x, warn);
    case 'match':
      return matchTag(rule, ctx, x, warn);
    case 'ref':
      return refTag(rule, ctx);
    case 'edge': {
      const branch = branchOf(ctx.ref);
      const want = rule.branch || ctx.defaultBranch;
      return branch !== undefined && want !== undefined && want === branch ? plain('edge') : undefined;
    }
    case 'raw':
      return plain(x.render(rule.value ?? ''));
    case 'sha':
      return ctx.sha ? plain(rule.format === 'long' ? ctx.sha : x.shortSha(ctx.sha)) : undefined;
  }
}

/** Like {@link computeTags}, with the version and latest decision as metadata-action reports them. */
export function computeVersion(
  rules: readonly TagRule[],
  flavor: Flavor,
  ctx: TagContext,
  now: Date = new Date(),
  opts: ComputeOptions = {},
): ComputedVersion {
  const x = expressionsFor(ctx, now, opts);
  const fromFlavor = flavor.latest === 'auto' ? undefined : flavor.latest === 'true';
  let main: string | undefined;
  const partial: string[] = [];
  let latest: boolean | undefined;

  const withAffixes = (val: string, rule: TagRule) => {
    const prefix = rule.prefix ?? flavor.prefix;
    const suffix = rule.suffix ?? flavor.suffix;
    return `${prefix ? x.render(prefix) : ''}${val}${suffix ? x.render(suffix) : ''}`;
  };
  // Stable: equal priorities keep the order written (global lines before a variant's own).
  for (const rule of [...rules].sort((a, b) => b.priority - a.priority)) {
    const enabled = x.render(rule.enable);
    if (enabled !== 'true' && enabled !== 'false')
      throw new TagRuleError(rule.source, `enable= gave "${enabled}", which is not true or false`);
    if (enabled === 'false') continue;
    const t = ruleTag(rule, ctx, x, opts.warn);
    if (!t?.value) continue;
    const tag = sanitizeTag(withAffixes(t.value, rule));
    if (!tag) continue;
    if (main === undefined) main = tag;
    else if (tag !== main && !partial.includes(tag)) partial.push(tag);
    latest ??= fromFlavor ?? t.latestAuto;
  }

  const tags: string[] = [];
  if (main !== undefined) {
    tags.push(main, ...partial);
    if (latest) {
      const l = sanitizeTag(
        `${flavor.prefixLatest ? x.render(flavor.prefix) : ''}latest${flavor.suffixLatest ? x.render(flavor.suffix) : ''}`,
      );
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
export function computeTags(rules: readonly TagRule[], flavor: Flavor, ctx: TagContext, now?: Date, opts?: ComputeOptions): string[] {
  return computeVersion(rules, flavor, ctx, now, opts).tags;
}
