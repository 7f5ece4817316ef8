/**
 * The values of `{{expressions}}` for one run: `{{branch}}`, `{{sha}}`, `{{date 'FORMAT'}}`, ...
 * as metadata-action's Handlebars helpers give them.
 */
import { branchOf, tagOf, type TagContext } from './context.js';
import { formatDate, formatDateDefault } from './date-format.js';
import { parseTemplate, renderTemplate, type ExprFn, type TemplateExpr } from './template.js';

export interface ExprOptions {
  /** Length of `{{sha}}` and `type=sha` (DOCKER_METADATA_SHORT_SHA_LENGTH; default 7). */
  shortShaLength?: number;
  warn?: (message: string) => void;
}

export interface Expressions {
  /** Everywhere: branch, tag, sha, base_ref, is_default_branch, is_not_default_branch, dates. */
  global: Record<string, ExprFn>;
  /** In a schedule pattern: the dates only. */
  dates: Record<string, ExprFn>;
  render(template: string, fns?: Record<string, ExprFn>): string;
  shortSha(sha: string): string;
}

/** Events that always run on the default branch's last commit (metadata-action's list). */
const ON_DEFAULT_BRANCH = /create|discussion|issues|schedule/;

function isDefaultBranch(ctx: TagContext): boolean {
  // As metadata-action: the ref minus refs/heads/ (a tag ref stays whole, so never matches).
  const b = ctx.ref.replace(/^refs\/heads\//, '');
  if (!b) return false;
  if (ctx.defaultBranch !== undefined && ctx.defaultBranch === b) return true;
  return ON_DEFAULT_BRANCH.test(ctx.eventName);
}

function dateFn(d: Date, warn?: (message: string) => void): ExprFn {
  return (e: TemplateExpr) => {
    const tz = e.hash.tz ?? 'UTC';
    if (e.quoted[0]) return formatDate(d, e.args[0]!, tz);
    // Handlebars reads a bare word as a (missing) variable: moment gets no format, prints ISO 8601.
    warn?.(
      `${e.source}: an unquoted format is not used as a format (it renders the ISO date, as metadata-action does); quote it: {{${e.name} '${e.args[0]}'}}`,
    );
    return formatDateDefault(d, tz);
  };
}

export function expressionsFor(ctx: TagContext, now: Date, opts: ExprOptions = {}): Expressions {
  const shaLen = opts.shortShaLength ?? 7;
  if (!Number.isInteger(shaLen) || shaLen < 1) throw new Error(`short SHA length must be a positive whole number, got ${shaLen}`);
  const shortSha = (sha: string) => (shaLen >= sha.length ? sha : sha.slice(0, shaLen));
  const gitTag = tagOf(ctx.ref);
  const isPull = ctx.ref.startsWith('refs/pull/');
  const commitDate = ctx.commitDate && !Number.isNaN(Date.parse(ctx.commitDate)) ? new Date(ctx.commitDate) : now;
  const dates: Record<string, ExprFn> = { date: dateFn(now, opts.warn), commit_date: dateFn(commitDate, opts.warn) };
  const global: Record<string, ExprFn> = {
    ...dates,
    branch: () => branchOf(ctx.ref) ?? '',
    tag: () => gitTag ?? '',
    sha: () => shortSha(ctx.sha),
    base_ref: () => (gitTag !== undefined || isPull ? (ctx.baseRef ?? '') : ''),
    is_default_branch: () => String(isDefaultBranch(ctx)),
    is_not_default_branch: () => String(!isDefaultBranch(ctx)),
  };
  return { global, dates, shortSha, render: (s, fns = global) => renderTemplate(parseTemplate(s), fns) };
}
