import { describe, expect, it } from 'vitest';
import type { GitContext } from '../src/github/context.js';
import {
  DEFAULT_FLAVOR,
  computeTags,
  computeVersion,
  mergeFlavor,
  parseFlavor,
  parseFlavorOverrides,
  parseSemver,
  parseTagRules,
  resolveTagRules,
  sanitizeTag,
  splitFields,
  TagRuleError,
  type Flavor,
  formatDate,
} from '../src/tags/index.js';

// Fixture contexts, after metadata-action's test fixtures (default branch "master", octocat repo).
const SHA = '860c1904a1ce19322e91ac35af1ab07466440c37';
const NOW = new Date('2020-01-10T00:30:00.000Z');
const base: GitContext = {
  eventName: 'push',
  ref: 'refs/heads/master',
  sha: SHA,
  repository: 'octocat/Hello-World',
  defaultBranch: 'master',
  serverUrl: 'https://github.com',
};
const push = (branch: string, over: Partial<GitContext> = {}): GitContext => ({ ...base, ref: `refs/heads/${branch}`, ...over });
const tag = (name: string, over: Partial<GitContext> = {}): GitContext => ({
  ...base,
  ref: `refs/tags/${name}`,
  baseRef: 'master',
  ...over,
});
const pr = (n: number, over: Partial<GitContext> = {}): GitContext => ({
  ...base,
  eventName: 'pull_request',
  ref: `refs/pull/${n}/merge`,
  prNumber: n,
  baseRef: 'master',
  headRef: 'feature',
  isFork: false,
  ...over,
});
const schedule: GitContext = { ...base, eventName: 'schedule' };
const dispatch = (branch: string): GitContext => ({ ...base, eventName: 'workflow_dispatch', ref: `refs/heads/${branch}` });

const DEFAULTS: string[] = [];
const SEMVER_EXAMPLE = [
  'type=ref,event=branch',
  'type=ref,event=pr',
  'type=semver,pattern={{version}}',
  'type=semver,pattern={{major}}.{{minor}}',
];

function tags(lines: string[], ctx: GitContext, flavor: string[] = [], now = NOW): string[] {
  return computeTags(resolveTagRules(lines), parseFlavor(flavor), ctx, now);
}

describe('metadata-action README: basic usage (default rules)', () => {
  it.each<[string, GitContext, string[]]>([
    ['pull_request refs/pull/2/merge', pr(2), ['pr-2']],
    ['push refs/heads/master', push('master'), ['master']],
    ['push refs/heads/releases/v1', push('releases/v1'), ['releases-v1']],
    ['push tag v1.2.3', tag('v1.2.3'), ['v1.2.3', 'latest']],
    ['push tag v2.0.8-beta.67', tag('v2.0.8-beta.67'), ['v2.0.8-beta.67', 'latest']],
    ['workflow_dispatch refs/heads/master', dispatch('master'), ['master']],
    ['schedule (nightly, then the branch)', schedule, ['nightly', 'master']],
  ])('%s', (_n, ctx, want) => {
    expect(tags(DEFAULTS, ctx)).toEqual(want);
  });
});

describe('metadata-action README: semver usage', () => {
  it.each<[string, GitContext, string[]]>([
    ['pull request', pr(2), ['pr-2']],
    ['branch', push('master'), ['master']],
    ['branch with slash', push('releases/v1'), ['releases-v1']],
    ['release tag', tag('v1.2.3'), ['1.2.3', '1.2', 'latest']],
    ['prerelease tag: no 1.2, no latest', tag('v2.0.8-beta.67'), ['2.0.8-beta.67']],
    ['prerelease v2.0.0-rc.1', tag('v2.0.0-rc.1'), ['2.0.0-rc.1']],
  ])('%s', (_n, ctx, want) => {
    expect(tags(SEMVER_EXAMPLE, ctx)).toEqual(want);
  });

  it('bake example: version, major.minor, sha, then latest', () => {
    const ctx = tag('v1.2.3', { sha: '90dd6032fac8bda1b6c4436a2e65de27961ed071' });
    expect(tags([...SEMVER_EXAMPLE, 'type=sha'], ctx)).toEqual(['1.2.3', '1.2', 'sha-90dd603', 'latest']);
  });
});

describe('type=semver patterns', () => {
  it.each<[string, string, string[]]>([
    ['v1.2.3', '{{raw}}', ['v1.2.3', 'latest']],
    ['v1.2.3', '{{version}}', ['1.2.3', 'latest']],
    ['v1.2.3', '{{major}}.{{minor}}', ['1.2', 'latest']],
    ['v1.2.3', 'v{{major}}', ['v1', 'latest']],
    ['v1.2.3', '{{minor}}', ['2', 'latest']],
    ['v1.2.3', '{{patch}}', ['3', 'latest']],
    ['v2.0.8-beta.67', '{{raw}}', ['v2.0.8-beta.67']],
    ['v2.0.8-beta.67', '{{version}}', ['2.0.8-beta.67']],
    ['v2.0.8-beta.67', '{{major}}.{{minor}}', ['2.0.8-beta.67']],
    ['v2.0.8-beta.67', '{{ raw }}', ['v2.0.8-beta.67']],
    ['v9.5.7-alpha.2+fork.3.1.8', '{{version}}', ['9.5.7-alpha.2']],
    ['v9.5.7-alpha.2+fork.3.1.8', '{{raw}}', ['v9.5.7-alpha.2-fork.3.1.8']],
    ['1.2.3', '{{version}}', ['1.2.3', 'latest']],
  ])('tag %s, pattern %s', (t, pattern, want) => {
    expect(tags([`type=semver,pattern=${pattern}`], tag(t))).toEqual(want);
  });

  it('three semver rules dedupe (1.1.1 via {{version}} and {{major}}.{{minor}}.{{patch}})', () => {
    expect(tags(['type=semver,pattern={{version}}', 'type=semver,pattern={{major}}.{{minor}}.{{patch}}'], tag('v1.1.1'))).toEqual([
      '1.1.1',
      'latest',
    ]);
    expect(
      tags(['type=semver,pattern={{version}}', 'type=semver,pattern={{major}}.{{minor}}', 'type=semver,pattern={{major}}'], tag('v1.1.1')),
    ).toEqual(['1.1.1', '1.1', '1', 'latest']);
  });

  it('a tag that is not semver adds nothing and warns; value= gives a version off tag events', () => {
    const warnings: string[] = [];
    const rules = parseTagRules(['type=semver,pattern={{version}}', 'type=ref,event=tag']);
    expect(computeTags(rules, DEFAULT_FLAVOR, tag('release1'), NOW, { warn: (m) => warnings.push(m) })).toEqual(['release1', 'latest']);
    expect(warnings[0]).toMatch(/release1 is not a valid semver/);
    expect(tags(['type=semver,pattern={{major}},value=v3.4.5'], push('master'))).toEqual(['3', 'latest']);
    expect(tags(['type=semver,pattern={{version}}'], push('master'))).toEqual([]);
  });

  it('latest=false keeps semver tags without latest (tag14)', () => {
    expect(
      tags(['type=ref,event=tag', 'type=semver,pattern={{version}}', 'type=semver,pattern={{major}}'], tag('sometag'), ['latest=false']),
    ).toEqual(['sometag']);
  });
});

describe('parseSemver', () => {
  it.each<[string, boolean]>([
    ['1.2.3', true],
    ['v1.2.3', true],
    ['v1.2.3-rc.1', true],
    ['1.2.3+build.5', true],
    ['v0.0.0', true],
    ['1.2', false],
    ['V1.2.3', false],
    ['01.2.3', false],
    ['1.2.3-01', false],
    ['1.2.3rc2', false],
    ['release1', false],
    ['=1.2.3', false],
  ])('%s valid=%s', (s, ok) => {
    expect(parseSemver(s) !== undefined).toBe(ok);
  });
  it('splits the parts', () => {
    expect(parseSemver('v2.0.0-rc.1+b.7')).toEqual({
      raw: 'v2.0.0-rc.1+b.7',
      major: 2,
      minor: 0,
      patch: 0,
      prerelease: ['rc', '1'],
      build: ['b', '7'],
      version: '2.0.0-rc.1',
    });
  });
});

describe('type=schedule', () => {
  it.each<[string, string[]]>([
    ['type=schedule', ['nightly']],
    ['type=schedule,pattern=nightly', ['nightly']],
    ["type=schedule,pattern={{date 'YYYYMMDD'}}", ['20200110']],
    ["type=schedule,pattern={{date 'YYYYMMDD-HHmmss'}}", ['20200110-003000']],
    ["type=schedule,pattern={{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}", ['20200110-093000']],
    ["type=schedule,pattern={{date 'YYYYMMDD-hhmmss' tz='Asia/Tokyo'}}", ['20200110-093000']],
    ["type=schedule,pattern=src-{{commit_date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}", ['src-20200110-093000']],
  ])('%s', (line, want) => {
    expect(tags([line], schedule)).toEqual(want);
  });

  it('does nothing off schedule events', () => {
    expect(tags(['type=schedule', 'type=sha'], push('master'))).toEqual(['sha-860c190']);
  });

  it('schedule06: priority and {{is_default_branch}} on schedule', () => {
    expect(tags(['type=schedule', 'type=sha,priority=2000', 'type=raw,value=defbranch,enable={{is_default_branch}}'], schedule)).toEqual([
      'sha-860c190',
      'nightly',
      'defbranch',
    ]);
  });

  it('schedule07: flavor prefix and suffix', () => {
    expect(tags(['type=schedule'], schedule, ['prefix=glo-', 'suffix=-bal'])).toEqual(['glo-nightly-bal']);
  });

  it('commit_date uses the commit date when the context has one', () => {
    const ctx = { ...schedule, commitDate: '2019-12-31T23:59:59Z' };
    expect(tags(["type=schedule,pattern={{commit_date 'YYYYMMDD'}}", "type=raw,value={{date 'YYYYMMDD'}}"], ctx)).toEqual([
      '20191231',
      '20200110',
    ]);
  });
});

describe('type=ref, type=edge, type=raw, type=sha', () => {
  it.each<[string, string[], GitContext, string[]]>([
    ['ref branch with slash', ['type=ref,event=branch'], push('my/branch'), ['my-branch']],
    ['ref tag', ['type=ref,event=tag'], tag('v1.2.3'), ['v1.2.3', 'latest']],
    ['ref tag with slash', ['type=ref,event=tag'], tag('p1/v1.0.0'), ['p1-v1.0.0', 'latest']],
    ['ref pr', ['type=ref,event=pr'], pr(318), ['pr-318']],
    ['ref pr with own prefix', ['type=ref,event=pr,prefix=pull-'], pr(318), ['pull-318']],
    [
      'ref pr on pull_request_target (ref rewritten by the context)',
      ['type=ref,event=pr'],
      pr(7, { eventName: 'pull_request_target' }),
      ['pr-7'],
    ],
    ['ref branch on pr: nothing', ['type=ref,event=branch'], pr(2), []],
    ['edge on default branch', ['type=edge'], push('master'), ['edge']],
    ['edge on other branch', ['type=edge'], push('dev'), []],
    ['edge,branch=dev on dev (push09)', ['type=edge,branch=dev', 'type=sha'], push('dev'), ['edge', 'sha-860c190']],
    ['edge,branch=dev on master (push10)', ['type=edge,branch=dev', 'type=sha'], push('master'), ['sha-860c190']],
    ['edge on workflow_dispatch (push04)', ['type=edge'], dispatch('master'), ['edge']],
    ['priority=2000 ref before edge (push13)', ['type=ref,priority=2000,event=branch', 'type=edge'], push('master'), ['master', 'edge']],
    [
      'raw bare values (raw01)',
      ['type=ref,event=branch', 'type=raw,my', 'type=raw,custom', 'type=raw,tags'],
      push('dev'),
      ['dev', 'my', 'custom', 'tags'],
    ],
    ['bare lines are raw', ['foo', 'bar'], push('dev'), ['foo', 'bar']],
    [
      'raw on tag: latest from ref (raw03)',
      ['type=ref,event=tag', 'type=raw,my', 'type=raw,custom', 'type=raw,tags'],
      tag('release1'),
      ['release1', 'my', 'custom', 'tags', 'latest'],
    ],
    [
      'raw before semver by priority (tag15)',
      ['type=raw,priority=2000,foo', 'type=semver,pattern={{version}}', 'type=match,"pattern=\\d.\\d"'],
      tag('v2.0.8-beta.67'),
      ['foo', '2.0.8-beta.67', '2.0'],
    ],
    [
      'raw first: latest decided by it (tag16)',
      ['type=raw,priority=2000,foo', 'type=ref,event=tag', 'type=edge'],
      tag('v1.1.1'),
      ['foo', 'v1.1.1'],
    ],
    ['sha short', ['type=sha'], push('dev'), ['sha-860c190']],
    ['sha long', ['type=sha,format=long'], push('dev'), [`sha-${SHA}`]],
    ['sha with branch prefix', ['type=sha,prefix={{branch}}-'], push('master'), ['master-860c190']],
    ['raw with expressions', ['type=raw,value=mytag-{{branch}}-{{sha}}'], push('master'), ['mytag-master-860c190']],
    [
      'global expressions on tag (tag20)',
      ['type=raw,{{tag}}-{{sha}}-foo', 'type=raw,{{base_ref}}-foo', 'type=raw,defbranch-foo,enable={{is_default_branch}}'],
      tag('v1.1.1'),
      ['v1.1.1-860c190-foo', 'master-foo'],
    ],
    ['base_ref on a pull request', ['type=raw,value=base-{{base_ref}}'], pr(2), ['base-master']],
    ['base_ref on a branch: empty', ['type=raw,value=base-{{base_ref}}'], push('dev'), ['base-']],
    ['sha and branch on pr (pr + sha)', ['type=ref,event=pr', 'type=sha'], pr(2), ['pr-2', 'sha-860c190']],
    ['no sha: no sha tag', ['type=sha'], { ...base, sha: '' }, []],
    ['unknown ref kind: nothing', ['type=ref,event=branch', 'type=ref,event=tag', 'type=ref,event=pr'], { ...base, ref: '' }, []],
  ])('%s', (_n, lines, ctx, want) => {
    expect(tags(lines, ctx)).toEqual(want);
  });

  it('{{branch}} is empty off branches; an empty value adds no tag (not "-")', () => {
    expect(tags(['type=raw,value={{branch}}', 'type=ref,event=tag'], tag('v1'))).toEqual(['v1', 'latest']);
    expect(tags(['type=raw,value={{branch}},suffix=-x', 'type=ref,event=tag'], tag('v1'))).toEqual(['v1', 'latest']);
  });
});

describe('type=match', () => {
  it.each<[string, string, string[]]>([
    ['v1.2.3', 'type=match,pattern=\\d.\\d.\\d', ['1.2.3', 'latest']],
    ['v2.0.8-beta.67', 'type=match,pattern=v(.*),group=1', ['2.0.8-beta.67', 'latest']],
    ['v2.0.8-beta.67', 'type=match,pattern=v(\\d.\\d),group=1', ['2.0', 'latest']],
    ['20200110-RC2', 'type=match,pattern=\\d+', ['20200110', 'latest']],
    ['p1/v1.2.3', 'type=match,pattern=p1/v(\\d.\\d.\\d),group=1', ['1.2.3', 'latest']],
    ['p1/v1.0.0', 'type=match,"pattern=/^v(\\d.\\d.\\d)$/ig",group=1', []],
    ['sometag', 'type=match,"pattern=\\d.\\d"', []],
  ])('tag %s: %s', (t, line, want) => {
    expect(tags([line], tag(t))).toEqual(want);
  });

  it('missing group warns (tag18)', () => {
    const warnings: string[] = [];
    const rules = parseTagRules([
      'type=match,pattern=p1/v(\\d.\\d.\\d),group=1',
      'type=match,pattern=p1/v(\\d.\\d),group=1',
      'type=match,pattern=p1/v(\\d.\\d),group=3',
      'type=ref,event=pr',
      'type=sha',
    ]);
    expect(computeTags(rules, DEFAULT_FLAVOR, tag('p1/v1.0.0'), NOW, { warn: (m) => warnings.push(m) })).toEqual([
      '1.0.0',
      '1.0',
      'sha-860c190',
      'latest',
    ]);
    expect(warnings.join('\n')).toMatch(/group 3 does not exist/);
  });

  it('latest=false (raw04)', () => {
    expect(tags(['type=match,pattern=\\d{8}', 'type=raw,my'], tag('20200110-RC2'), ['latest=false'])).toEqual(['20200110', 'my']);
  });
});

describe('flavor', () => {
  it.each<[string, string[], string[], GitContext, string[]]>([
    ['latest=auto on a branch', ['type=ref,event=branch'], ['latest=auto'], push('master'), ['master']],
    ['latest=true on a branch', ['type=ref,event=branch'], ['latest=true'], push('master'), ['master', 'latest']],
    ['latest=false on a release tag', SEMVER_EXAMPLE, ['latest=false'], tag('v1.2.3'), ['1.2.3', '1.2']],
    ['latest=true on a prerelease', SEMVER_EXAMPLE, ['latest=true'], tag('v2.0.0-rc.1'), ['2.0.0-rc.1', 'latest']],
    ['latest=true with no tag at all: nothing', ['type=ref,event=tag'], ['latest=true'], push('master'), []],
    ['prefix, not on latest', SEMVER_EXAMPLE, ['prefix=app-'], tag('v1.2.3'), ['app-1.2.3', 'app-1.2', 'latest']],
    ['prefix on latest', SEMVER_EXAMPLE, ['prefix=app-,onlatest=true'], tag('v1.2.3'), ['app-1.2.3', 'app-1.2', 'app-latest']],
    [
      'suffix on latest (tag21)',
      ['type=semver,pattern={{version}}', 'type=semver,pattern={{major}}.{{minor}}.{{patch}}'],
      ['suffix=-dev,onlatest=true'],
      tag('v1.1.1'),
      ['1.1.1-dev', 'latest-dev'],
    ],
    [
      'a rule suffix= (even empty) wins over the flavor (tag19)',
      ['type=match,pattern=p1/v(\\d.\\d.\\d),group=1', 'type=match,pattern=p1/v(\\d.\\d),group=1,suffix=', 'type=ref,event=pr', 'type=sha'],
      ['suffix=-dev'],
      tag('p1/v1.0.0'),
      ['1.0.0-dev', '1.0', 'sha-860c190-dev', 'latest'],
    ],
    ['sha keeps its own sha- prefix over a flavor prefix', ['type=sha'], ['prefix=x-'], push('dev'), ['sha-860c190']],
    ['pr keeps its pr- prefix over a flavor prefix', ['type=ref,event=pr'], ['prefix=x-'], pr(4), ['pr-4']],
    ['flavor with an expression', ['type=ref,event=branch'], ['suffix=-{{sha}}'], push('dev'), ['dev-860c190']],
  ])('%s', (_n, lines, flavor, ctx, want) => {
    expect(tags(lines, ctx, flavor)).toEqual(want);
  });

  it('parses and merges per variant', () => {
    const global = parseFlavor(['latest=auto', 'prefix=glo-']);
    expect(global).toEqual({ latest: 'auto', prefix: 'glo-', prefixLatest: false, suffix: '', suffixLatest: false });
    const variant = parseFlavorOverrides(['suffix=-claude,onlatest=true']);
    expect(variant).toEqual({ suffix: '-claude', suffixLatest: true });
    expect(mergeFlavor(global, variant)).toEqual({
      latest: 'auto',
      prefix: 'glo-',
      prefixLatest: false,
      suffix: '-claude',
      suffixLatest: true,
    });
    // A variant's suffix replaces a global one, and its own line decides onlatest.
    expect(mergeFlavor(parseFlavor(['suffix=-slim,onlatest=true']), parseFlavorOverrides(['suffix=-claude']))).toMatchObject({
      suffix: '-claude',
      suffixLatest: false,
    });
    expect(mergeFlavor(global, {})).toEqual(global);
  });

  it('one onlatest per prefix/suffix on the same line', () => {
    expect(parseFlavor(['prefix=p-,onlatest=true,suffix=-s,onlatest=false'])).toMatchObject({
      prefix: 'p-',
      prefixLatest: true,
      suffix: '-s',
      suffixLatest: false,
    });
  });
});

describe('per-variant flavor and rules', () => {
  const globalLines = ['type=ref,event=branch', 'type=semver,pattern={{version}}', 'type=sha'];
  const claude: Partial<Flavor> = parseFlavorOverrides(['suffix=-claude,onlatest=true']);
  const flavor = mergeFlavor(parseFlavor([]), claude);

  it('release tag: latest-claude, sha-abc1234-claude', () => {
    const ctx = tag('v1.2.3', { sha: 'abc1234def5678abc1234def5678abc1234def56' });
    expect(computeTags(resolveTagRules(globalLines), flavor, ctx, NOW)).toEqual(['1.2.3-claude', 'sha-abc1234-claude', 'latest-claude']);
  });

  it('branch push: branch and sha with the suffix, no latest', () => {
    expect(computeTags(resolveTagRules(globalLines), flavor, push('main'), NOW)).toEqual(['main-claude', 'sha-860c190-claude']);
  });

  it('variant rules join the global ones, ordered by priority (ties keep global first)', () => {
    const rules = resolveTagRules(globalLines, ['type=raw,value=claude-{{branch}}', 'type=raw,value=top,priority=5000']);
    expect(computeTags(rules, DEFAULT_FLAVOR, push('dev'), NOW)).toEqual(['top', 'dev', 'claude-dev', 'sha-860c190']);
  });

  it('no global lines: metadata-action defaults, plus the variant lines', () => {
    expect(computeTags(resolveTagRules([], ['type=sha']), DEFAULT_FLAVOR, push('dev'), NOW)).toEqual(['dev', 'sha-860c190']);
    expect(computeTags(resolveTagRules([], ['type=sha']), DEFAULT_FLAVOR, pr(9), NOW)).toEqual(['pr-9', 'sha-860c190']);
  });
});

describe('enable=', () => {
  it.each<[string, GitContext, string[]]>([
    ['default branch', push('master'), ['master', 'latest']],
    ['other branch', push('dev'), ['dev']],
    ['tag', tag('v1.0.0'), ['v1.0.0', 'latest']],
    ['pull request', pr(3), ['pr-3']],
  ])('type=raw,value=latest,enable={{is_default_branch}} on %s', (_n, ctx, want) => {
    expect(
      tags(['type=ref,event=branch', 'type=ref,event=tag', 'type=ref,event=pr', 'type=raw,value=latest,enable={{is_default_branch}}'], ctx),
    ).toEqual(want);
  });

  it('enable=false drops a rule; unknown default branch gives false', () => {
    expect(tags(['type=sha,enable=false', 'type=ref,event=branch'], push('dev'))).toEqual(['dev']);
    expect(tags(['type=raw,value=x,enable={{is_default_branch}}'], push('master', { defaultBranch: undefined }))).toEqual([]);
  });

  it('an expression giving something else is an error naming the line', () => {
    const rules = parseTagRules(['type=raw,value=x,enable={{branch}}']);
    expect(() => computeTags(rules, DEFAULT_FLAVOR, push('dev'), NOW)).toThrow(
      /type=raw,value=x,enable=\{\{branch\}\}.*"dev".*true or false/,
    );
  });
});

describe('sanitizing', () => {
  it.each<[string, string]>([
    ['feature/Foo Bar', 'feature-Foo-Bar'],
    ['my/feature#1245', 'my-feature-1245'],
    ['a@@b', 'a-b'],
    ['.hidden', 'hidden'],
    ['-dash', 'dash'],
    ['..-x', 'x'],
    ['ünïcødé', 'n-c-d-'],
    ['keep_UPPER.case-1', 'keep_UPPER.case-1'],
  ])('%s -> %s', (input, want) => {
    expect(sanitizeTag(input)).toBe(want);
  });

  it('case is kept, as metadata-action does (tags may hold uppercase)', () => {
    expect(tags(DEFAULTS, push('feature/Foo Bar'))).toEqual(['feature-Foo-Bar']);
  });

  it('cuts to 128 characters', () => {
    const long = `feature/${'x'.repeat(200)}`;
    const out = tags(['type=ref,event=branch', 'type=sha'], push(long), ['suffix=-claude']);
    expect(out[0]).toHaveLength(128);
    expect(out[0]).toBe(`feature-${'x'.repeat(120)}`);
    expect(out[1]).toBe('sha-860c190-claude');
  });

  it('a value that sanitizes to nothing adds no tag', () => {
    expect(tags(['type=raw,value=..', 'type=sha'], push('dev'))).toEqual(['sha-860c190']);
  });

  it('invalid-character branch with edge + sha (push11)', () => {
    expect(tags(['type=edge', 'type=sha'], push('my/feature#1245', { sha: '983315b5e8d46e46fc4c49869e85e7ee5fb289ba' }))).toEqual([
      'sha-983315b',
    ]);
  });
});

describe('computeVersion', () => {
  it('reports main, partial and latest like metadata-action', () => {
    const v = computeVersion(
      resolveTagRules([
        'type=semver,pattern={{version}}',
        'type=semver,pattern={{major}}.{{minor}}',
        'type=semver,pattern={{major}}',
        'type=raw,my',
      ]),
      DEFAULT_FLAVOR,
      tag('v1.1.1'),
      NOW,
    );
    expect(v).toEqual({ main: '1.1.1', partial: ['1.1', '1', 'my'], latest: true, tags: ['1.1.1', '1.1', '1', 'my', 'latest'] });
  });
  it('no duplicate latest when a rule already gives it', () => {
    expect(tags(['type=semver,pattern={{version}}', 'type=raw,value=latest'], tag('v1.0.0'))).toEqual(['1.0.0', 'latest']);
  });
  it('short SHA length option', () => {
    expect(
      computeTags(parseTagRules(['type=sha', 'type=raw,value=x-{{sha}}']), DEFAULT_FLAVOR, push('dev'), NOW, { shortShaLength: 12 }),
    ).toEqual(['x-860c1904a1ce', 'sha-860c1904a1ce']);
  });
});

describe('parseTagRules', () => {
  it('applies defaults', () => {
    const [sched, semver, ref, pr2, sha, raw, edge] = parseTagRules([
      'type=schedule',
      'type=semver,pattern={{version}}',
      'type=ref,event=branch',
      'type=ref,event=pr',
      'type=sha',
      'foo',
      'type=edge',
    ]);
    expect(sched).toMatchObject({ type: 'schedule', priority: 1000, pattern: 'nightly', enable: 'true' });
    expect(semver).toMatchObject({ type: 'semver', priority: 900, value: '' });
    expect(ref).toMatchObject({ type: 'ref', priority: 600, event: 'branch' });
    expect(pr2).toMatchObject({ type: 'ref', priority: 600, event: 'pr', prefix: 'pr-' });
    expect(sha).toMatchObject({ type: 'sha', priority: 100, prefix: 'sha-', format: 'short' });
    expect(raw).toMatchObject({ type: 'raw', priority: 200, value: 'foo' });
    expect(edge).toMatchObject({ type: 'edge', priority: 700, branch: '' });
    expect(parseTagRules(['type=match,pattern=x'])[0]).toMatchObject({ priority: 800, group: 0 });
  });

  it('skips blank lines and # comments, and accepts multi-line strings', () => {
    expect(parseTagRules(['', '# a comment', '  type=sha  ', 'type=raw,value=a#b\n\ntype=edge']).map((r) => r.type)).toEqual([
      'sha',
      'raw',
      'edge',
    ]);
    expect(parseTagRules(['type=raw,value=a#b'])[0]!.value).toBe('a#b');
  });

  it('keeps everything after the first = in a value', () => {
    expect(parseTagRules(['type=raw,value=a=b'])[0]!.value).toBe('a=b');
  });

  it.each<[string, RegExp]>([
    ['type=foo', /line "type=foo": unknown type "foo" \(use one of schedule, semver, match, edge, ref, raw, sha/],
    ['type=pep440,pattern={{version}}', /pep440 is not supported/],
    ['type=semver', /type=semver needs pattern=.*pattern=\{\{version\}\}/],
    ['type=ref', /type=ref needs event=branch, event=tag or event=pr/],
    ['type=ref,event=push', /event=push is not one of branch, tag, pr/],
    ['type=raw', /type=raw needs value=/],
    ['type=sha,format=medium', /format=medium must be short or long/],
    ['type=sha,lenght=12', /unknown attribute lenght= for type=sha \(allowed: enable=, priority=, prefix=, suffix=, format=/],
    ['type=sha,priority=high', /priority=high is not a whole number/],
    ['type=sha,enable=yes', /enable=yes must be true or false/],
    ['type=sha,type=raw', /type= is given twice/],
    ['type=match,pattern=(', /pattern=\( is not a valid regular expression/],
    ['type=match,pattern=x,group=one', /group=one must be a capture group number/],
    ['type=raw,value={{brnch}}', /unknown expression "brnch" here \(available: \{\{branch\}\}/],
    ['type=raw,value={{branch', /has no closing \}\}/],
    ['type=semver,pattern={{branch}}', /unknown expression "branch".*put \{\{branch\}\}-style expressions in prefix= or suffix=/],
    ["type=schedule,pattern={{date 'YYYY' tz='Mars/Base'}}", /unknown time zone tz='Mars\/Base'/],
    ["type=schedule,pattern={{date 'YYYY' zone='UTC'}}", /unknown attribute zone= for date \(allowed: tz\)/],
    ['type=schedule,pattern={{date}}', /date takes 1 quoted argument\(s\), got 0 \(e\.g\. \{\{date 'YYYYMMDD'\}\}\)/],
    ['type=raw,"value=a', /double-quoted field is not closed/],
  ])('%s', (line, re) => {
    let err: unknown;
    try {
      parseTagRules(['type=sha', line]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TagRuleError);
    expect((err as Error).message).toMatch(/^tags: line /);
    expect((err as Error).message).toMatch(re);
  });
});

describe('parseFlavor errors', () => {
  it.each<[string, RegExp]>([
    ['latest=maybe', /flavor: line "latest=maybe": latest=maybe must be auto, true or false/],
    ['onlatest=true', /onlatest= applies to the prefix= or suffix= before it/],
    ['suffix=-x,onlatest=yes', /onlatest=yes must be true or false/],
    ['colour=blue', /unknown flavor "colour"/],
    ['latest', /"latest" is not key=value/],
    ['prefix={{nope}}-', /unknown expression "nope"/],
  ])('%s', (line, re) => {
    expect(() => parseFlavor([line])).toThrow(re);
  });
});

describe('splitFields', () => {
  it('splits on commas, honours double quotes and {{ }}', () => {
    expect(splitFields('type=match,"pattern=\\d,\\d",group=1')).toEqual(['type=match', 'pattern=\\d,\\d', 'group=1']);
    expect(splitFields("type=schedule,pattern={{date 'YYYY,MM'}}")).toEqual(['type=schedule', "pattern={{date 'YYYY,MM'}}"]);
    expect(splitFields('"a ""quoted"" b",c,')).toEqual(['a "quoted" b', 'c']);
  });
});

describe('formatDate (moment format subset)', () => {
  const d = new Date('2020-01-10T15:25:50.123Z');
  it.each<[string, string | undefined, string]>([
    ['YYYYMMDD', undefined, '20200110'],
    ['dddd, MMMM Do YYYY, h:mm:ss a', undefined, 'Friday, January 10th 2020, 3:25:50 pm'],
    ['YYYYMMDD-HHmmss', 'Asia/Tokyo', '20200111-002550'],
    ['YYYY-MM-DDTHH:mm:ss.SSS[Z]', undefined, '2020-01-10T15:25:50.123Z'],
    ['YY Q M D DDD DDDD ddd dd d', undefined, '20 1 1 10 10 010 Fri Fr 5'],
    ['hh A kk', 'America/New_York', '10 AM 10'],
    ['Z ZZ', 'Asia/Kolkata', '+05:30 +0530'],
    ['Z', 'America/Los_Angeles', '-08:00'],
    ['X x', undefined, '1578669950 1578669950123'],
    ['[YYYY] YYYY', undefined, 'YYYY 2020'],
  ])('%s (tz %s)', (fmt, tz, want) => {
    expect(formatDate(d, fmt, tz)).toBe(want);
  });
  it('ordinals', () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 23].map((n) => formatDate(new Date(Date.UTC(2020, 0, n)), 'Do'))).toEqual([
      '1st',
      '2nd',
      '3rd',
      '4th',
      '11th',
      '12th',
      '13th',
      '21st',
      '22nd',
      '23rd',
    ]);
  });
});

describe('module boundaries', () => {
  // Issue 11: the grammar is shared by config/ (checking build-file lines) and the pipeline; it
  // must not pull GitHub event reading into config/.
  it('src/tags and src/config import nothing from src/github', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const offenders: string[] = [];
    for (const dir of ['src/tags', 'src/config']) {
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
        const text = readFileSync(`${dir}/${f}`, 'utf8');
        if (/from '\.\.\/github\//.test(text)) offenders.push(`${dir}/${f}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
