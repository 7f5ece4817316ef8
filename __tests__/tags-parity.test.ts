/**
 * The metadata-action features added for parity (issue 12): semver match=, {{is_not_default_branch}},
 * unquoted date formats, DOCKER_METADATA_PR_HEAD_SHA and DOCKER_METADATA_SHORT_SHA_LENGTH (down to
 * the pipeline). metadata-action's own tables are replayed in tags-metadata-action.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { contextFromEnv, shortShaLengthFromEnv, type GitContext } from '../src/github/context.js';
import { ConfigError } from '../src/config/model.js';
import { plan } from '../src/pipeline.js';
import { computeTags, parseFlavor, parseTagRules, resolveTagRules, TagRuleError, type ComputeOptions } from '../src/tags/index.js';

const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';
const NOW = new Date('2020-01-10T00:30:00.000Z');
const base: GitContext = {
  eventName: 'push',
  ref: 'refs/heads/dev',
  sha: SHA,
  repository: 'octocat/Hello-World',
  defaultBranch: 'master',
  serverUrl: 'https://github.com',
};
const tags = (lines: string[], over: Partial<GitContext> = {}, opts?: ComputeOptions) =>
  computeTags(resolveTagRules(lines), parseFlavor([]), { ...base, ...over }, NOW, opts);

describe('type=semver match=', () => {
  it('takes group 1 of the tag as the version', () => {
    expect(tags(['type=semver,pattern={{version}},"match=v(\\d.\\d.\\d)$"'], { ref: 'refs/tags/p1/v1.2.3' })).toEqual(['1.2.3', 'latest']);
    expect(tags(['type=semver,pattern={{major}}.{{minor}},match=^app-(.*)$'], { ref: 'refs/tags/app-2.5.0' })).toEqual(['2.5', 'latest']);
  });

  it('applies to value= too', () => {
    expect(tags(['type=semver,pattern={{version}},value=p1/v1.2.3,"match=v(\\d.\\d.\\d)$"'])).toEqual(['1.2.3', 'latest']);
  });

  it('keeps the whole input when it does not match (as metadata-action), and says so', () => {
    const warnings: string[] = [];
    expect(
      tags(['type=semver,pattern={{version}},match=^app-(.*)$'], { ref: 'refs/tags/v3.0.0' }, { warn: (m) => warnings.push(m) }),
    ).toEqual(['3.0.0', 'latest']);
    expect(warnings.join()).toMatch(/match=\^app-\(\.\*\)\$ does not match v3\.0\.0/);
  });

  it('rejects a match= without a capture group, or that is not a regular expression, naming the line', () => {
    expect(() => parseTagRules(['type=semver,pattern={{version}},match=^v\\d+'])).toThrow(
      /line "type=semver,pattern=\{\{version\}\},match=\^v\\d\+": match=.* has no capture group: the version is group 1/,
    );
    expect(() => parseTagRules(['type=semver,pattern={{version}},match=v('])).toThrow(TagRuleError);
    expect(() => parseTagRules(['type=match,pattern=v(.*),match=(x)'])).toThrow(/unknown attribute match= for type=match/);
  });
});

describe('{{is_not_default_branch}}', () => {
  it.each<[string, Partial<GitContext>, string[]]>([
    ['a branch that is not the default', { ref: 'refs/heads/dev' }, ['dev', 'notdef']],
    ['the default branch', { ref: 'refs/heads/master' }, ['master']],
    ['a tag (never the default branch)', { ref: 'refs/tags/v1' }, ['notdef']],
    ['a schedule (runs on the default branch)', { eventName: 'schedule', ref: 'refs/heads/dev' }, ['dev']],
  ])('%s', (_n, over, want) => {
    expect(tags(['type=ref,event=branch', 'type=raw,value=notdef,enable={{is_not_default_branch}}'], over)).toEqual(want);
  });
});

describe('unquoted date formats', () => {
  it('{{commit_date FORMAT}} without quotes renders the ISO date, as Handlebars + moment do, with a warning', () => {
    const warnings: string[] = [];
    const got = tags(
      ['type=raw,value=src-{{commit_date YYYY-MM-DD}}'],
      { commitDate: '2024-11-13T13:42:28Z' },
      { warn: (m) => warnings.push(m) },
    );
    expect(got).toEqual(['src-2024-11-13T13-42-28Z']);
    expect(warnings.join()).toMatch(/quote it: \{\{commit_date 'YYYY-MM-DD'\}\}/);
  });

  it('in another time zone the ISO date carries the offset; quoted formats are used as formats', () => {
    expect(tags(["type=raw,value={{date YYYYMMDD tz='Asia/Tokyo'}}"])).toEqual(['2020-01-10T09-30-00-09-00']);
    expect(tags(["type=raw,value={{commit_date 'YYYY-MM-DD'}}"], { commitDate: '2024-11-13T13:42:28Z' })).toEqual(['2024-11-13']);
  });
});

describe('DOCKER_METADATA_PR_HEAD_SHA', () => {
  const HEAD = '3370e228f2209994d57af4427fe64e71bb79ac96';
  const MERGE = 'a9c8c5828b91be19d9728548b24759e352367ef1';
  const payload = { number: 15, pull_request: { number: 15, head: { sha: HEAD, ref: 'feature' }, base: { ref: 'master' } } };
  const env = (event: string, flag?: string) => ({
    GITHUB_EVENT_NAME: event,
    GITHUB_REF: event === 'push' ? 'refs/heads/dev' : 'refs/pull/15/merge',
    GITHUB_SHA: MERGE,
    GITHUB_REPOSITORY: 'octocat/Hello-World',
    ...(flag !== undefined ? { DOCKER_METADATA_PR_HEAD_SHA: flag } : {}),
  });
  const shaTags = (ctx: GitContext) => computeTags(resolveTagRules(['type=sha', 'type=raw,value=c-{{sha}}']), parseFlavor([]), ctx, NOW);

  it.each(['pull_request', 'pull_request_target'])('on %s, true names the head commit in type=sha and {{sha}}', (event) => {
    const ctx = contextFromEnv(env(event, 'true'), payload);
    expect(ctx.sha).toBe(HEAD);
    expect(shaTags(ctx)).toEqual(['c-3370e22', 'sha-3370e22']);
  });

  it('unset or false keeps the merge commit; other events ignore it', () => {
    expect(shaTags(contextFromEnv(env('pull_request'), payload))).toEqual(['c-a9c8c58', 'sha-a9c8c58']);
    expect(contextFromEnv(env('pull_request', 'false'), payload).sha).toBe(MERGE);
    expect(contextFromEnv(env('push', 'true'), payload).sha).toBe(MERGE);
  });
});

describe('DOCKER_METADATA_SHORT_SHA_LENGTH', () => {
  it('reads a positive whole number, and rejects anything else naming the variable', () => {
    expect(shortShaLengthFromEnv({})).toBeUndefined();
    expect(shortShaLengthFromEnv({ DOCKER_METADATA_SHORT_SHA_LENGTH: '12' })).toBe(12);
    for (const bad of ['abc', '0', '-3', '7.5']) {
      expect(() => shortShaLengthFromEnv({ DOCKER_METADATA_SHORT_SHA_LENGTH: bad })).toThrow(
        /DOCKER_METADATA_SHORT_SHA_LENGTH=.* is not a positive whole number/,
      );
    }
  });

  const dir = mkdtempSync(join(tmpdir(), 'tags-pipeline-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'oci-build.yml'), 'version: 1\nvariants:\n  app:\n    base: scratch\n    image: ghcr.io/acme/app\n');
  const planTags = async (env: Record<string, string>, tagLines = ['type=sha', 'type=raw,value=x-{{sha}}'], warn?: (m: string) => void) => {
    const p = await plan(
      {
        config: join(dir, 'oci-build.yml'),
        variants: [],
        push: false,
        tags: tagLines,
        git: { ...base, commitDate: '2024-11-13T13:42:28Z' },
        outputs: [],
        credentials: {},
        dockerConfig: false,
        platforms: [],
        gzipLevel: 6,
        workDir: join(dir, 'work'),
        env,
      },
      warn,
    );
    return p.tags.get('app');
  };

  it('the pipeline passes it from the environment to the tags', async () => {
    expect(await planTags({})).toEqual(['x-860c190', 'sha-860c190']);
    expect(await planTags({ DOCKER_METADATA_SHORT_SHA_LENGTH: '12' })).toEqual(['x-860c1904a1ce', 'sha-860c1904a1ce']);
  });

  it('the pipeline reports a bad value as a problem naming the variable', async () => {
    const err = await planTags({ DOCKER_METADATA_SHORT_SHA_LENGTH: 'twelve' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toMatch(/DOCKER_METADATA_SHORT_SHA_LENGTH=twelve is not a positive whole number/);
  });

  it('the pipeline passes on what the rules warn about, naming the variant', async () => {
    const warnings: string[] = [];
    expect(await planTags({}, ['type=raw,value=d-{{commit_date YYYYMMDD}}'], (m) => warnings.push(m))).toEqual(['d-2024-11-13T13-42-28Z']);
    expect(warnings).toEqual([expect.stringMatching(/^variant app: \{\{commit_date YYYYMMDD\}\}: an unquoted format/)]);
  });
});
