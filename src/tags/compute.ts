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
import { parseTemplate, renderTemplate, type ExprFn, type TemplateExpr } from './template.js';
import { formatDate } from './date-format.js';

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

function isRawStatement(pattern: string): boolean {
  try {
    const parts = parseTemplate(pattern);
    return parts.length === 1 && typeof parts[0] !== 'string' && parts[0]!.name === 'raw';
  } catch {
    return false;
  }
}

/** Like {@link computeTags}, with the version and latest decision as metadata-action reports them. */
export function computeVersion(rules: readonly TagRule[], flavor: Flavor, ctx: TagContext, now: Date = new Date(), opts: ComputeOptions = {}): ComputedVersion {
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
export function computeTags(rules: readonly TagRule[], flavor: Flavor, ctx: TagContext, now?: Date, opts?: ComputeOptions): string[] {
  return computeVersion(rules, flavor, ctx, now, opts).tags;
}
