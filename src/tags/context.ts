/**
 * The facts tag rules read about a run. github/context.ts fills them (and more) from a runner's
 * environment and event payload; the CLI and tests build them by hand.
 */
export interface TagContext {
  /** push, pull_request, schedule, workflow_dispatch, ... ('' off GitHub). */
  eventName: string;
  /** The Git ref the run is for (refs/heads/main, refs/tags/v1.2.3, refs/pull/2/merge). */
  ref: string;
  /** Full commit SHA ('' when unknown). */
  sha: string;
  defaultBranch?: string;
  /** Target branch of a pull request; for a tag push, the payload's base_ref (branch name). */
  baseRef?: string;
  /** ISO date of the commit when known (for `{{commit_date}}`). */
  commitDate?: string;
}

/** Branch name for refs/heads/* refs, else undefined. */
export function branchOf(ref: string): string | undefined {
  return ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : undefined;
}

/** Tag name for refs/tags/* refs, else undefined. */
export function tagOf(ref: string): string | undefined {
  return ref.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : undefined;
}
