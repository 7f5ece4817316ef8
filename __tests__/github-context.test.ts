import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { branchOf, contextFromEnv, loadEventPayload, ownerOf, tagOf } from '../src/github/context.js';
import { computeTags, parseFlavor, resolveTagRules } from '../src/tags/index.js';

const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';
const env = (over: Record<string, string>) => ({
  GITHUB_EVENT_NAME: 'push',
  GITHUB_REF: 'refs/heads/main',
  GITHUB_SHA: SHA,
  GITHUB_REPOSITORY: 'Acme/Coop',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_RUN_ID: '123',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_JOB: 'build',
  GITHUB_ACTOR: 'octocat',
  GITHUB_BASE_REF: '',
  GITHUB_HEAD_REF: '',
  ...over,
});

const repository = {
  name: 'Coop',
  full_name: 'Acme/Coop',
  default_branch: 'main',
  description: 'A coop',
  html_url: 'https://github.com/Acme/Coop',
  license: { key: 'mit', spdx_id: 'MIT' },
  topics: ['containers', 'oci'],
};

const prPayload = (headFullName: string | null, fork: boolean) => ({
  number: 42,
  pull_request: {
    number: 42,
    head: { ref: 'feature', sha: 'f'.repeat(40), repo: headFullName === null ? null : { full_name: headFullName, fork } },
    base: { ref: 'main', repo: { full_name: 'Acme/Coop', fork: false } },
  },
  repository,
});

describe('contextFromEnv', () => {
  it('branch push with payload', () => {
    const ctx = contextFromEnv(env({}), {
      ref: 'refs/heads/main',
      repository,
      head_commit: { id: SHA, timestamp: '2020-01-09T10:00:00Z' },
    });
    expect(ctx).toEqual({
      eventName: 'push',
      ref: 'refs/heads/main',
      sha: SHA,
      repository: 'Acme/Coop',
      defaultBranch: 'main',
      serverUrl: 'https://github.com',
      runId: '123',
      runAttempt: '2',
      job: 'build',
      actor: 'octocat',
      repo: {
        name: 'Coop',
        description: 'A coop',
        license: 'MIT',
        html_url: 'https://github.com/Acme/Coop',
        topics: ['containers', 'oci'],
      },
      commitDate: '2020-01-09T10:00:00Z',
    });
  });

  it('tag push: base_ref from the payload', () => {
    const ctx = contextFromEnv(env({ GITHUB_REF: 'refs/tags/v1.2.3' }), { base_ref: 'refs/heads/main', repository });
    expect(ctx.ref).toBe('refs/tags/v1.2.3');
    expect(ctx.baseRef).toBe('main');
    expect(ctx.prNumber).toBeUndefined();
  });

  it('pull request from the same repository', () => {
    const ctx = contextFromEnv(
      env({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/42/merge', GITHUB_BASE_REF: 'main', GITHUB_HEAD_REF: 'feature' }),
      prPayload('Acme/Coop', false),
    );
    expect(ctx).toMatchObject({
      eventName: 'pull_request',
      ref: 'refs/pull/42/merge',
      prNumber: 42,
      isFork: false,
      baseRef: 'main',
      headRef: 'feature',
    });
  });

  it('pull request from a fork', () => {
    const ctx = contextFromEnv(
      env({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/42/merge' }),
      prPayload('mallory/Coop', true),
    );
    expect(ctx).toMatchObject({ prNumber: 42, isFork: true, baseRef: 'main', headRef: 'feature' });
  });

  it('a pull request inside a fork repository is not a fork PR', () => {
    const payload = prPayload('Acme/Coop', true); // the base repository is itself a fork
    expect(contextFromEnv(env({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/42/merge' }), payload).isFork).toBe(false);
  });

  it('a pull request whose fork was deleted counts as a fork', () => {
    expect(
      contextFromEnv(env({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/42/merge' }), prPayload(null, false)).isFork,
    ).toBe(true);
  });

  it('only the fork flag known', () => {
    const payload = { pull_request: { number: 5, head: { repo: { fork: true } }, base: {} } };
    expect(
      contextFromEnv(env({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/5/merge', GITHUB_REPOSITORY: '' }), payload).isFork,
    ).toBe(true);
  });

  it('pull_request_target: ref becomes refs/pull/<n>/merge (as metadata-action), so pr-N tags work', () => {
    const ctx = contextFromEnv(
      env({ GITHUB_EVENT_NAME: 'pull_request_target', GITHUB_REF: 'refs/heads/main' }),
      prPayload('mallory/Coop', true),
    );
    expect(ctx.ref).toBe('refs/pull/42/merge');
    expect(ctx.isFork).toBe(true);
    expect(computeTags(resolveTagRules([]), parseFlavor([]), ctx)).toEqual(['pr-42']);
  });

  it('PR number from the ref when the payload is missing', () => {
    expect(contextFromEnv(env({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/7/merge' })).prNumber).toBe(7);
  });

  it('schedule and workflow_dispatch', () => {
    const sched = contextFromEnv(env({ GITHUB_EVENT_NAME: 'schedule' }), { schedule: '0 0 * * *' });
    expect(sched).toMatchObject({ eventName: 'schedule', ref: 'refs/heads/main' });
    expect(sched.defaultBranch).toBeUndefined();
    // {{is_default_branch}} is still true on schedule, as in metadata-action.
    expect(computeTags(resolveTagRules(['type=raw,value=d,enable={{is_default_branch}}']), parseFlavor([]), sched)).toEqual(['d']);
    expect(
      contextFromEnv(env({ GITHUB_EVENT_NAME: 'workflow_dispatch' }), { inputs: {}, ref: 'refs/heads/main', repository }),
    ).toMatchObject({ eventName: 'workflow_dispatch', defaultBranch: 'main' });
  });

  it('off GitHub: empty strings, no throw, repo derived only when the repository is known', () => {
    expect(contextFromEnv({})).toEqual({ eventName: '', ref: '', sha: '', repository: '', serverUrl: 'https://github.com' });
    expect(contextFromEnv({ GITHUB_REPOSITORY: 'a/b', GITHUB_SERVER_URL: 'https://ghe.example.com/' }).repo).toEqual({
      name: 'b',
      html_url: 'https://ghe.example.com/a/b',
    });
  });

  it('commit date from commits[] for the matching sha only', () => {
    const payload = {
      commits: [
        { id: 'x', timestamp: '2001-01-01T00:00:00Z' },
        { id: SHA, timestamp: '2002-02-02T00:00:00Z' },
      ],
    };
    expect(contextFromEnv(env({}), payload).commitDate).toBe('2002-02-02T00:00:00Z');
    expect(contextFromEnv(env({}), { head_commit: { id: 'other', timestamp: '2003-01-01T00:00:00Z' } }).commitDate).toBeUndefined();
  });

  it('license null and odd payloads are tolerated', () => {
    const ctx = contextFromEnv(env({}), { repository: { ...repository, license: null, description: null, topics: 'x' } });
    expect(ctx.repo).toEqual({ name: 'Coop', html_url: 'https://github.com/Acme/Coop' });
    expect(contextFromEnv(env({}), 'not an object').repo?.html_url).toBe('https://github.com/Acme/Coop');
  });
});

describe('loadEventPayload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-ctx-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads GITHUB_EVENT_PATH; undefined when missing or not JSON', () => {
    const good = join(dir, 'event.json');
    writeFileSync(good, JSON.stringify({ repository }));
    expect(loadEventPayload({ GITHUB_EVENT_PATH: good })).toEqual({ repository });
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{nope');
    expect(loadEventPayload({ GITHUB_EVENT_PATH: bad })).toBeUndefined();
    expect(loadEventPayload({ GITHUB_EVENT_PATH: join(dir, 'missing.json') })).toBeUndefined();
    expect(loadEventPayload({})).toBeUndefined();
  });
});

describe('helpers', () => {
  it('branchOf / tagOf / ownerOf', () => {
    expect(branchOf('refs/heads/a/b')).toBe('a/b');
    expect(branchOf('refs/tags/v1')).toBeUndefined();
    expect(tagOf('refs/tags/v1')).toBe('v1');
    expect(tagOf('refs/heads/x')).toBeUndefined();
    expect(ownerOf({ repository: 'Acme/Coop' })).toBe('Acme');
  });
});
