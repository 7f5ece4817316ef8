import type { GitContext } from './context.js';

export type PushMode = 'auto' | 'true' | 'false';

export interface PushDecision {
  push: boolean;
  /** One sentence for the log, saying why and how to change it. */
  reason: string;
}

/** Events `auto` pushes on: they run on code already in the repository. */
const AUTO_PUSH_EVENTS = new Set(['push', 'workflow_dispatch', 'schedule', 'release', 'create', 'repository_dispatch']);

/**
 * Whether to push.
 * - A pull request from a fork never pushes, whatever the mode: on `pull_request` its token
 *   cannot write packages, and on `pull_request_target` pushing an image built from the fork's
 *   code with the base repository's token would publish untrusted code.
 * - `true` / `false` are obeyed otherwise.
 * - `auto` pushes on push (branches and tags), workflow_dispatch, schedule, release, create and
 *   repository_dispatch, and on any event whose ref is a tag (refs/tags/*). It builds without
 *   pushing on pull_request / pull_request_target (the change is not merged yet), on merge_group
 *   (the merge queue's temporary `gh-readonly-queue/...` branches are checks, not releases; the
 *   push event after the merge publishes), and on every other event (workflow_run, issue_comment,
 *   ...: set `push: true` to push there).
 */
export function shouldPush(mode: PushMode, ctx: GitContext): PushDecision {
  const isPr = ctx.eventName === 'pull_request' || ctx.eventName === 'pull_request_target';
  if (isPr && ctx.isFork) {
    return {
      push: false,
      reason: `not pushing: ${ctx.eventName}${ctx.prNumber ? ` #${ctx.prNumber}` : ''} comes from a fork, whose images are never pushed (build only)`,
    };
  }
  if (mode === 'true') return { push: true, reason: 'pushing: push is true' };
  if (mode === 'false') return { push: false, reason: 'not pushing: push is false (build only)' };
  if (isPr) {
    return {
      push: false,
      reason: `not pushing: push is auto and this is a ${ctx.eventName} run (build only; set push: true to push pull request images)`,
    };
  }
  if (ctx.eventName === 'merge_group') {
    return {
      push: false,
      reason: 'not pushing: push is auto and this is a merge queue (merge_group) run (build only; the push after the merge publishes)',
    };
  }
  if (ctx.ref.startsWith('refs/tags/')) return { push: true, reason: `pushing: push is auto and ${ctx.ref} is a tag` };
  if (AUTO_PUSH_EVENTS.has(ctx.eventName)) return { push: true, reason: `pushing: push is auto and this is a ${ctx.eventName} run` };
  if (!ctx.eventName)
    return { push: false, reason: 'not pushing: push is auto and this is not a GitHub Actions run (set push: true to push)' };
  return { push: false, reason: `not pushing: push is auto and ${ctx.eventName} is not an event auto pushes on (set push: true to push)` };
}

/** Reads a `push` input: auto, true or false (yes/no, on/off, 1/0 too); '' is auto. */
export function parsePushMode(value: string): PushMode {
  const v = value.trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (['true', 'yes', 'on', '1'].includes(v)) return 'true';
  if (['false', 'no', 'off', '0'].includes(v)) return 'false';
  throw new Error(`push: "${value}" is not auto, true or false`);
}
