import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { pushBusyboxBase } from './helpers/base-image.js';
import { run } from './helpers/exec.js';
import { runNode, ACTION, parseGithubOutput } from './helpers/cli.js';

/** Issue 3: the bundled action on fixture GitHub events against the real registry. */

const SHA = 'abc1234def5678901234567890abcdef12345678';
const PASSWORD = 'gh-token-s3cr3t-ZQ7';
const OTHER_PASSWORD = 'other-registry-pw-K9x';

let reg: TestRegistry;
let ctx: string;

beforeAll(async () => {
  reg = await startRegistry();
  const base = await pushBusyboxBase(reg.host);
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-gh-'));
  writeFileSync(join(ctx, 'coop'), '#!/bin/sh\necho coop\n');
  writeFileSync(
    join(ctx, 'oci-build.yml'),
    `version: 1
variants:
  empty:
    base: ${base.single}
    steps:
      - copy: coop
        to: /usr/local/bin/coop
        mode: "0755"
    labels:
      org.opencontainers.image.description: set in the build file
  claude:
    from: empty
    flavor: ["suffix=-claude,onlatest=true"]
    steps:
      - file: /etc/claude
        content: claude
`,
  );
});

afterAll(async () => {
  await reg?.stop();
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

function event(name: string, payload: object, ref: string) {
  const path = join(ctx, `event-${name}.json`);
  writeFileSync(path, JSON.stringify(payload));
  return { GITHUB_EVENT_NAME: name, GITHUB_EVENT_PATH: path, GITHUB_REF: ref };
}

const repository = {
  name: 'Coop',
  full_name: 'Acme/Coop',
  default_branch: 'main',
  description: 'Coop agents',
  html_url: 'https://github.com/Acme/Coop',
  license: { spdx_id: 'MIT' },
};

async function runAction(extra: Record<string, string>, tag: string) {
  const out = join(ctx, `output-${tag}`);
  const summary = join(ctx, `summary-${tag}.md`);
  writeFileSync(out, '');
  writeFileSync(summary, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    RUNNER_TEMP: join(ctx, 'runner-temp'),
    GITHUB_OUTPUT: out,
    GITHUB_STEP_SUMMARY: summary,
    GITHUB_WORKSPACE: ctx,
    GITHUB_REPOSITORY: 'Acme/Coop',
    GITHUB_SHA: SHA,
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_JOB: 'images',
    GITHUB_ACTOR: 'octocat',
    SOURCE_DATE_EPOCH: '1700000000',
    INPUT_CONFIG: join(ctx, 'oci-build.yml'),
    INPUT_IMAGES: `${reg.host}/acme/coop-\${variant}`,
    INPUT_TAGS: 'type=semver,pattern={{version}}\ntype=semver,pattern={{major}}.{{minor}}\ntype=sha\ntype=ref,event=pr',
    INPUT_PUSH: 'auto',
    INPUT_REGISTRY: 'ghcr.io',
    'INPUT_REGISTRY-USERNAME': 'octocat',
    'INPUT_REGISTRY-PASSWORD': PASSWORD,
    'INPUT_REGISTRY-AUTH': `- registry: registry.example.com\n  username: bot\n  password: ${OTHER_PASSWORD}\n`,
    'INPUT_DIGEST-MAP': join(ctx, `digests-${tag}.json`),
    'INPUT_ARTIFACT-NAME': 'auto',
    INPUT_SUMMARY: 'true',
    ...extra,
  };
  const r = await runNode(ACTION, [], { env, cwd: ctx });
  return { ...r, outputs: parseGithubOutput(readFileSync(out, 'utf8')), summary: readFileSync(summary, 'utf8') };
}

async function tagsOf(repo: string): Promise<string[]> {
  const res = await fetch(`${reg.url}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  // sha256-<hex> tags are the referrers fallback of the attestations, and buildcache the layer
  // cache's record (cache-registry: auto), not image tags.
  return (
    ((await res.json()) as { tags: string[] | null }).tags?.filter((t) => !/^sha256-[a-f0-9]{64}$/.test(t) && t !== 'buildcache').sort() ??
    []
  );
}

describe('the action on GitHub events', () => {
  const logs: string[] = [];

  it('a tag push publishes each variant with metadata-action tags, labels and a summary', async () => {
    const r = await runAction(event('push', { repository, head_commit: { timestamp: '2023-11-14T22:13:20Z' } }, 'refs/tags/v1.2.3'), 'tag');
    logs.push(r.stdout, r.stderr);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.outputs.pushed).toBe('true');
    expect(await tagsOf('acme/coop-empty')).toEqual(['1.2', '1.2.3', 'latest', 'sha-abc1234'].sort());
    expect(await tagsOf('acme/coop-claude')).toEqual(['1.2-claude', '1.2.3-claude', 'latest-claude', 'sha-abc1234-claude'].sort());
    const meta = JSON.parse(r.outputs.metadata!);
    expect(meta.claude.tags).toContain(`${reg.host}/acme/coop-claude:latest-claude`);
    const inspect = JSON.parse(
      (await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/acme/coop-claude:1.2.3-claude`])).stdout,
    );
    expect(inspect.Digest).toBe(meta.claude.digest);
    expect(inspect.Labels).toMatchObject({
      'org.opencontainers.image.source': 'https://github.com/Acme/Coop',
      'org.opencontainers.image.url': 'https://github.com/Acme/Coop',
      'org.opencontainers.image.revision': SHA,
      'org.opencontainers.image.version': '1.2.3-claude',
      'org.opencontainers.image.licenses': 'MIT',
      'org.opencontainers.image.created': '2023-11-14T22:13:20Z',
      // The build file's own label wins over the generated one.
      'org.opencontainers.image.description': 'set in the build file',
    });
    const manifest = JSON.parse(
      (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/acme/coop-empty:1.2.3`])).stdout,
    );
    expect(manifest.annotations['org.opencontainers.image.source']).toBe('https://github.com/Acme/Coop');
    expect(manifest.annotations['org.opencontainers.image.version']).toBe('1.2.3');
    // The job summary: one row per variant, and the digest map.
    expect(r.summary).toContain('<table');
    for (const v of ['empty', 'claude']) expect(r.summary).toContain(meta[v].digest);
    expect(r.summary).toContain('<details');
    // No artifact service off GitHub: a warning, not a failure.
    expect(r.stdout).toMatch(/::warning::digest map artifact "digest-map-images-all" not uploaded/);
    expect(r.outputs['artifact-id']).toBe('');
  });

  it('a pull request builds without pushing, yet sets the digests', async () => {
    const before = await tagsOf('acme/coop-empty');
    const r = await runAction(
      event(
        'pull_request',
        {
          repository,
          number: 7,
          pull_request: {
            number: 7,
            head: { ref: 'feature', repo: { full_name: 'Acme/Coop', fork: false } },
            base: { ref: 'main', repo: { full_name: 'Acme/Coop' } },
          },
        },
        'refs/pull/7/merge',
      ),
      'pr',
    );
    logs.push(r.stdout, r.stderr);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.outputs.pushed).toBe('false');
    const digests = JSON.parse(r.outputs.digests!);
    expect(Object.keys(digests).sort()).toEqual(['claude', 'empty']);
    expect(digests.empty).toMatch(/^sha256:[0-9a-f]{64}$/);
    // As metadata-action: a pr-N tag and the sha tag (they would be written if pushed).
    expect(JSON.parse(r.outputs.metadata!).empty.tags).toEqual([
      `${reg.host}/acme/coop-empty:pr-7`,
      `${reg.host}/acme/coop-empty:sha-abc1234`,
    ]);
    expect(await tagsOf('acme/coop-empty')).toEqual(before);
  });

  it('a fork pull request with push: true still does not push', async () => {
    const r = await runAction(
      {
        ...event(
          'pull_request',
          {
            repository,
            number: 8,
            pull_request: {
              number: 8,
              head: { ref: 'x', repo: { full_name: 'mallory/Coop', fork: true } },
              base: { ref: 'main', repo: { full_name: 'Acme/Coop' } },
            },
          },
          'refs/pull/8/merge',
        ),
        INPUT_PUSH: 'true',
      },
      'fork',
    );
    logs.push(r.stdout, r.stderr);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.outputs.pushed).toBe('false');
    expect(await tagsOf('acme/coop-empty')).not.toContain('pr-8');
  });

  it('no secret appears in any log line', () => {
    const all = logs
      .join('\n')
      .split('\n')
      .filter((l) => !l.startsWith('::add-mask::'));
    expect(all.length).toBeGreaterThan(10);
    for (const secret of [PASSWORD, OTHER_PASSWORD]) expect(all.join('\n')).not.toContain(secret);
    expect(logs.join('\n')).toContain(`::add-mask::${PASSWORD}`);
    expect(logs.join('\n')).toContain(`::add-mask::${OTHER_PASSWORD}`);
  });
});
