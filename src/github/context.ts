import { readFileSync } from 'node:fs';
import type { TagContext } from '../tags/index.js';

export { branchOf, tagOf } from '../tags/index.js';

/** Repository facts from the event payload (what metadata-action asks the API for). */
export interface RepoInfo {
  /** Repository name without the owner (`Hello-World`). */
  name?: string;
  description?: string;
  /** SPDX id of the detected license (`MIT`); absent when GitHub found none. */
  license?: string;
  html_url: string;
  topics?: string[];
}

/**
 * What a run knows about where it comes from. Built from the runner's environment and the event
 * payload by {@link contextFromEnv}; tests build it by hand.
 */
export interface GitContext extends TagContext {
  /** GITHUB_EVENT_NAME: push, pull_request, schedule, workflow_dispatch, ... ('' off GitHub). */
  eventName: string;
  /**
   * The Git ref the run is for (refs/heads/main, refs/tags/v1.2.3, refs/pull/2/merge). For
   * `pull_request_target`, whose GITHUB_REF is the base branch, this is `refs/pull/<n>/merge`, as
   * metadata-action does, so `type=ref,event=pr` gives `pr-<n>` there too.
   */
  ref: string;
  /** owner/name as GitHub spells it (case kept). */
  repository: string;
  /** Source branch of a pull request. */
  headRef?: string;
  prNumber?: number;
  /** For pull requests: the head branch lives in another repository (a fork). */
  isFork?: boolean;
  /** https://github.com, or the GHES / ghe.com host. */
  serverUrl: string;
  runId?: string;
  runAttempt?: string;
  /** GITHUB_JOB: the job's id in the workflow (shared by all legs of a matrix). */
  job?: string;
  repo?: RepoInfo;
  actor?: string;
}

type Env = Record<string, string | undefined>;

/** The event payload (GITHUB_EVENT_PATH), or undefined when absent or unreadable. */
export function loadEventPayload(env: Env): unknown {
  const path = env.GITHUB_EVENT_PATH;
  if (!path) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}

/**
 * Pure: the context from an environment (process.env on a runner) and the parsed event payload
 * (see {@link loadEventPayload}). Never throws; missing facts are left undefined (or '' for the
 * required strings) so the CLI can use it off GitHub.
 */
export function contextFromEnv(env: Env, eventPayload?: unknown): GitContext {
  const payload = obj(eventPayload) ?? {};
  const eventName = env.GITHUB_EVENT_NAME ?? '';
  let ref = env.GITHUB_REF ?? '';
  const repository = env.GITHUB_REPOSITORY ?? str(obj(payload.repository)?.full_name) ?? '';
  const serverUrl = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '');

  const pr = obj(payload.pull_request);
  let prNumber = num(pr?.number) ?? (pr ? num(payload.number) : undefined);
  if (prNumber === undefined) {
    const m = /^refs\/pull\/(\d+)\//.exec(ref);
    if (m) prNumber = Number(m[1]);
  }
  if (eventName === 'pull_request_target' && prNumber !== undefined) ref = `refs/pull/${prNumber}/merge`;

  let isFork: boolean | undefined;
  if (pr) {
    const headRepo = obj(obj(pr.head)?.repo);
    const baseRepo = obj(obj(pr.base)?.repo);
    const headName = str(headRepo?.full_name);
    const baseName = str(baseRepo?.full_name) ?? (repository || undefined);
    if (obj(pr.head) && !headRepo)
      isFork = true; // the fork was deleted: still not ours
    else if (headName && baseName) isFork = headName.toLowerCase() !== baseName.toLowerCase();
    else if (typeof headRepo?.fork === 'boolean') isFork = headRepo.fork;
  }

  let baseRef = env.GITHUB_BASE_REF || str(obj(pr?.base)?.ref);
  if (!baseRef && ref.startsWith('refs/tags/')) baseRef = str(payload.base_ref)?.replace(/^refs\/heads\//, '');
  const headRef = env.GITHUB_HEAD_REF || str(obj(pr?.head)?.ref);

  const r = obj(payload.repository);
  const sha = prHeadSha(env, eventName, pr) ?? env.GITHUB_SHA ?? '';
  let repo: RepoInfo | undefined;
  if (r || repository) {
    const license = str(obj(r?.license)?.spdx_id);
    const topics = Array.isArray(r?.topics) ? r.topics.filter((t): t is string => typeof t === 'string') : undefined;
    repo = {
      name: str(r?.name) ?? (repository.split('/')[1] || undefined),
      description: str(r?.description),
      license,
      html_url: str(r?.html_url) ?? `${serverUrl}/${repository}`,
      ...(topics?.length ? { topics } : {}),
    };
    for (const k of ['name', 'description', 'license'] as const) if (repo[k] === undefined) delete repo[k];
  }

  const ctx: GitContext = {
    eventName,
    ref,
    sha,
    repository,
    defaultBranch: str(r?.default_branch),
    baseRef,
    headRef,
    prNumber,
    isFork,
    serverUrl,
    runId: env.GITHUB_RUN_ID || undefined,
    runAttempt: env.GITHUB_RUN_ATTEMPT || undefined,
    job: env.GITHUB_JOB || undefined,
    repo,
    actor: env.GITHUB_ACTOR || undefined,
    commitDate: commitDateFrom(payload, sha),
  };
  for (const k of Object.keys(ctx) as (keyof GitContext)[]) if (ctx[k] === undefined) delete ctx[k];
  return ctx;
}

/**
 * DOCKER_METADATA_PR_HEAD_SHA=true: on pull_request(_target), the commit the author pushed (the
 * payload's head SHA) instead of GitHub's merge commit, as metadata-action does; it then names
 * `type=sha`, `{{sha}}` and the revision label.
 */
function prHeadSha(env: Env, eventName: string, pr: Record<string, unknown> | undefined): string | undefined {
  if (!/true/i.test(env.DOCKER_METADATA_PR_HEAD_SHA ?? '') || !/pull_request/.test(eventName)) return undefined;
  return str(obj(pr?.head)?.sha);
}

/**
 * DOCKER_METADATA_SHORT_SHA_LENGTH: the length of `type=sha` and `{{sha}}` (undefined: the
 * default, 7). Throws naming the variable when it is not a positive whole number.
 */
export function shortShaLengthFromEnv(env: Env): number | undefined {
  const v = env.DOCKER_METADATA_SHORT_SHA_LENGTH?.trim();
  if (!v) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1) {
    throw new Error(`DOCKER_METADATA_SHORT_SHA_LENGTH=${v} is not a positive whole number (e.g. 12; unset it for the default 7)`);
  }
  return Number(v);
}

/** The commit date a push payload carries (commits[] or head_commit), when it is for `sha`. */
function commitDateFrom(payload: Record<string, unknown>, sha: string): string | undefined {
  if (!sha) return undefined;
  if (Array.isArray(payload.commits)) {
    for (const c of payload.commits) {
      const o = obj(c);
      if (o?.id === sha && str(o.timestamp)) return o.timestamp as string;
    }
  }
  const head = obj(payload.head_commit);
  if (head?.id === sha && str(head.timestamp)) return head.timestamp as string;
  return undefined;
}

/** The repository owner (`Acme` in `Acme/app`). */
export function ownerOf(ctx: Pick<GitContext, 'repository'>): string {
  return ctx.repository.split('/')[0] ?? '';
}
