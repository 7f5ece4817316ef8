import { describe, expect, it } from 'vitest';
import type { GitContext } from '../src/github/context.js';
import { explainRegistryError } from '../src/github/ghcr-errors.js';
import { defaultImage, lowercaseForRegistry, sanitizeComponent } from '../src/github/image-names.js';
import { ociLabels } from '../src/github/labels.js';
import { parsePushMode, shouldPush, type PushMode } from '../src/github/push-policy.js';
import { parseReference } from '../src/oci/reference.js';

const base: GitContext = {
  eventName: 'push',
  ref: 'refs/heads/main',
  sha: '860c1904a1ce19322e91ac35af1ab07466440c37',
  repository: 'octocat/Hello-World',
  defaultBranch: 'main',
  serverUrl: 'https://github.com',
  repo: { name: 'Hello-World', description: 'This your first repo!', license: 'MIT', html_url: 'https://github.com/octocat/Hello-World' },
};

describe('ociLabels', () => {
  it('matches metadata-action for a full repository (sorted keys)', () => {
    const labels = ociLabels(base, '1.2.3', '2020-01-10T00:30:00.000Z');
    expect(Object.entries(labels)).toEqual([
      ['org.opencontainers.image.created', '2020-01-10T00:30:00.000Z'],
      ['org.opencontainers.image.description', 'This your first repo!'],
      ['org.opencontainers.image.licenses', 'MIT'],
      ['org.opencontainers.image.revision', '860c1904a1ce19322e91ac35af1ab07466440c37'],
      ['org.opencontainers.image.source', 'https://github.com/octocat/Hello-World'],
      ['org.opencontainers.image.title', 'Hello-World'],
      ['org.opencontainers.image.url', 'https://github.com/octocat/Hello-World'],
      ['org.opencontainers.image.version', '1.2.3'],
    ]);
  });

  it('omits empty values and NOASSERTION; falls back to serverUrl/repository', () => {
    const ctx: GitContext = { ...base, sha: '', serverUrl: 'https://ghe.example.com', repo: undefined };
    expect(ociLabels(ctx, undefined, '2020-01-10T00:30:00Z')).toEqual({
      'org.opencontainers.image.created': '2020-01-10T00:30:00Z',
      'org.opencontainers.image.source': 'https://ghe.example.com/octocat/Hello-World',
      'org.opencontainers.image.title': 'Hello-World',
      'org.opencontainers.image.url': 'https://ghe.example.com/octocat/Hello-World',
    });
    expect(ociLabels({ ...base, repo: { ...base.repo!, license: 'NOASSERTION', description: '  ' } }, '', 'x')).not.toHaveProperty(
      'org.opencontainers.image.licenses',
    );
    expect(ociLabels({ eventName: '', ref: '', sha: '', repository: '', serverUrl: 'https://github.com' }, undefined, '')).toEqual({});
  });
});

describe('shouldPush', () => {
  const ctx = (eventName: string, ref = 'refs/heads/main', over: Partial<GitContext> = {}): GitContext => ({
    ...base,
    eventName,
    ref,
    ...over,
  });
  const forkPr = ctx('pull_request', 'refs/pull/3/merge', { isFork: true, prNumber: 3 });
  const forkTarget = ctx('pull_request_target', 'refs/pull/3/merge', { isFork: true, prNumber: 3 });
  const ownPr = ctx('pull_request', 'refs/pull/3/merge', { isFork: false, prNumber: 3 });

  it.each<[string, PushMode, GitContext, boolean, RegExp]>([
    ['branch push', 'auto', ctx('push'), true, /push is auto and this is a push run/],
    ['tag push', 'auto', ctx('push', 'refs/tags/v1.0.0'), true, /refs\/tags\/v1\.0\.0 is a tag/],
    ['workflow_dispatch', 'auto', ctx('workflow_dispatch'), true, /workflow_dispatch/],
    ['schedule', 'auto', ctx('schedule'), true, /schedule/],
    ['release', 'auto', ctx('release', 'refs/tags/v1.0.0'), true, /is a tag/],
    ['create', 'auto', ctx('create', 'refs/heads/new'), true, /create/],
    ['repository_dispatch', 'auto', ctx('repository_dispatch'), true, /repository_dispatch/],
    ['own pull request', 'auto', ownPr, false, /pull_request run \(build only; set push: true/],
    ['pull_request_target, same repo', 'auto', ctx('pull_request_target', 'refs/pull/3/merge', { isFork: false }), false, /build only/],
    ['merge_group', 'auto', ctx('merge_group', 'refs/heads/gh-readonly-queue/main/pr-3-abc'), false, /merge queue/],
    ['workflow_run', 'auto', ctx('workflow_run'), false, /workflow_run is not an event auto pushes on \(set push: true/],
    ['off GitHub', 'auto', ctx(''), false, /not a GitHub Actions run/],
    ['fork PR, auto', 'auto', forkPr, false, /pull_request #3 comes from a fork/],
    ['fork PR, true', 'true', forkPr, false, /comes from a fork/],
    ['fork pull_request_target, true', 'true', forkTarget, false, /pull_request_target #3 comes from a fork/],
    ['own PR, true', 'true', ownPr, true, /push is true/],
    ['push, false', 'false', ctx('push'), false, /push is false/],
    ['tag, false', 'false', ctx('push', 'refs/tags/v1'), false, /push is false/],
  ])('%s (%s)', (_n, mode, c, push, reason) => {
    const d = shouldPush(mode, c);
    expect(d.push).toBe(push);
    expect(d.reason).toMatch(reason);
  });

  it('parsePushMode', () => {
    expect(['', 'auto', 'AUTO', 'true', 'yes', '1', 'false', 'off', '0'].map(parsePushMode)).toEqual([
      'auto',
      'auto',
      'auto',
      'true',
      'true',
      'true',
      'false',
      'false',
      'false',
    ]);
    expect(() => parsePushMode('sometimes')).toThrow(/push: "sometimes" is not auto, true or false/);
  });
});

describe('image names', () => {
  it.each<[string, string, string]>([
    ['Acme/Coop', 'claude', 'ghcr.io/acme/coop-claude'],
    ['octocat/Hello-World', 'base', 'ghcr.io/octocat/hello-world-base'],
    ['Acme/My.Repo', 'x.y', 'ghcr.io/acme/my.repo-x.y'],
    ['acme/.github', 'ci', 'ghcr.io/acme/github-ci'],
    ['acme/foo_-bar', 'v', 'ghcr.io/acme/foo-bar-v'],
    ['acme/a__b', 'v', 'ghcr.io/acme/a__b-v'],
  ])('defaultImage(%s, %s) = %s', (repository, variant, want) => {
    const image = defaultImage({ repository }, variant);
    expect(image).toBe(want);
    expect(() => parseReference(image, { repositoryOnly: true })).not.toThrow();
  });

  it('other registry; bad repository', () => {
    expect(defaultImage({ repository: 'Acme/Coop' }, 'a', 'Registry.Example.com:5000')).toBe('registry.example.com:5000/acme/coop-a');
    expect(() => defaultImage({ repository: '' }, 'a')).toThrow(/GITHUB_REPOSITORY is "", not owner\/name/);
  });

  it.each<[string, string]>([
    ['ghcr.io/Acme/App', 'ghcr.io/acme/app'],
    ['ghcr.io/Acme/App:Tag-V1', 'ghcr.io/acme/app:Tag-V1'],
    [`GHCR.io/Acme/App@sha256:${'a'.repeat(64)}`, `ghcr.io/acme/app@sha256:${'a'.repeat(64)}`],
    [`ghcr.io/Acme/App:V1@sha256:${'a'.repeat(64)}`, `ghcr.io/acme/app:V1@sha256:${'a'.repeat(64)}`],
    ['Localhost:5000/Team/App', 'localhost:5000/team/app'],
    ['localhost:5000', 'localhost:5000'],
    ['App:Latest', 'app:Latest'],
  ])('lowercaseForRegistry(%s) = %s', (input, want) => {
    expect(lowercaseForRegistry(input)).toBe(want);
  });

  it('sanitizeComponent', () => {
    expect(sanitizeComponent('Hello World!')).toBe('hello-world');
    expect(sanitizeComponent('a..b')).toBe('a-b');
    expect(sanitizeComponent('a---b')).toBe('a---b');
  });
});

describe('explainRegistryError', () => {
  const ghcr = (status: number | undefined, codes: string[], message: string) =>
    explainRegistryError({ status, codes, message, registry: 'ghcr.io' });

  it('403 denied on GHCR: workflow permissions and Manage Actions access', () => {
    const s = ghcr(403, ['DENIED'], 'denied: denied')!;
    expect(s).toMatch(/permissions: packages: write/);
    expect(s).toMatch(/Manage Actions access/);
    expect(s).toMatch(/forks get a read-only token/);
  });

  it('installation not allowed to Create organization package', () => {
    const s = ghcr(403, ['DENIED'], 'denied: installation not allowed to Create organization package')!;
    expect(s).toMatch(/create a new organization package/);
    expect(s).toMatch(/permissions: packages: write/);
    expect(s).toMatch(/Workflow permissions, allow "Read and write permissions"/);
    expect(s).toMatch(/Packages → Package creation/);
    expect(s).toMatch(/GitHub App installation token cannot create/);
  });

  it.each([
    'permission_denied: write_package',
    'denied: installation not allowed to Write organization package',
    'permission_denied: The token provided does not match expected scopes.',
  ])('%s', (message) => {
    const s = ghcr(403, ['DENIED'], message)!;
    expect(s).toMatch(/refused to write to the package/);
    expect(s).toMatch(/Manage Actions access.*Write role/);
    expect(s).toMatch(/write:packages scope/);
  });

  it('401 on GHCR: credentials', () => {
    expect(ghcr(401, ['UNAUTHORIZED'], 'unauthorized: authentication required')).toMatch(/did not accept the credentials.*github\.token/);
  });

  it('other registries get generic remedies; other errors none', () => {
    expect(explainRegistryError({ status: 401, codes: [], message: 'unauthorized', registry: 'registry.example.com' })).toMatch(
      /registry-username \/ registry-password/,
    );
    expect(explainRegistryError({ status: 403, codes: ['DENIED'], message: 'denied', registry: 'docker.io' })).toMatch(
      /docker\.io denied access/,
    );
    expect(ghcr(404, ['MANIFEST_UNKNOWN'], 'manifest unknown')).toBeUndefined();
    expect(ghcr(500, [], 'boom')).toBeUndefined();
    expect(explainRegistryError({ status: 400, codes: [], message: 'bad', registry: 'quay.io' })).toBeUndefined();
  });
});
