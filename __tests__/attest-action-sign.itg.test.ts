import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { run } from './helpers/exec.js';
import { runNode, ACTION } from './helpers/cli.js';

/**
 * Signing through the running action (dist/index.js): the workflow's OIDC token from a loopback
 * endpoint, Fulcio and the timestamp authority from @sigstore/mock (preloaded into the action's
 * process, helpers/sigstore-preload.mjs), the repository's attestations API a loopback stand-in
 * (GITHUB_API_URL). The Sigstore bundles are the referrers in the real registry, verify with
 * @sigstore/verify, and were stored through the API. Without `id-token: write`: unsigned
 * attestations attached, one notice.
 */

const BUNDLE = /^application\/vnd\.dev\.sigstore\.bundle\.v0\.3\+json$/;
const PRELOAD = resolve(import.meta.dirname, 'helpers', 'sigstore-preload.mjs');
let reg: TestRegistry;
let work: string;
let oidc: Server;
let api: Server;
const stored: { path: string; auth: string; bundle: unknown }[] = [];

const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const listen = async (s: Server) => {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
};

beforeAll(async () => {
  reg = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'attest-action-'));
  writeFileSync(
    join(work, 'oci-build.yml'),
    ['version: 1', 'variants:', '  app:', '    base: scratch', '    steps:', '      - file: /etc/app.conf', '        content: signed'].join(
      '\n',
    ),
  );
  writeFileSync(
    join(work, 'event.json'),
    JSON.stringify({ repository: { full_name: 'acme/app', visibility: 'private', default_branch: 'main' } }),
  );
  // The Actions runtime's OIDC token endpoint (present only with `id-token: write`).
  oidc = createServer((req, res) => {
    const aud = new URL(req.url ?? '/', 'http://x').searchParams.get('audience') ?? '';
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: 'https://token.actions.githubusercontent.com',
      sub: 'repo:acme/app:ref:refs/heads/main',
      aud,
      iat: now,
      exp: now + 300,
    };
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ value: [b64url({ alg: 'RS256' }), b64url(claims), 'c2ln'].join('.') }));
  });
  // POST /repos/{owner}/{repo}/attestations, as GitHub's REST API answers it.
  api = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      stored.push({
        path: req.url ?? '',
        auth: req.headers.authorization ?? '',
        bundle: (JSON.parse(body || '{}') as { bundle?: unknown }).bundle,
      });
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: stored.length }));
    });
  });
}, 300_000);
afterAll(async () => {
  await reg?.stop();
  await new Promise<void>((r) => (oidc?.listening ? oidc.close(() => r()) : r()));
  await new Promise<void>((r) => (api?.listening ? api.close(() => r()) : r()));
  if (work) rmSync(work, { recursive: true, force: true });
});

async function runAction(tag: string, image: string, extra: Record<string, string>) {
  const out = join(work, `out-${tag}`);
  const summary = join(work, `summary-${tag}.md`);
  writeFileSync(out, '');
  writeFileSync(summary, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_ACTIONS: 'true',
    RUNNER_TEMP: join(work, 'runner-temp'),
    GITHUB_OUTPUT: out,
    GITHUB_STEP_SUMMARY: summary,
    GITHUB_WORKSPACE: work,
    GITHUB_REPOSITORY: 'acme/app',
    GITHUB_SHA: 'abc1234def5678901234567890abcdef12345678',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_EVENT_NAME: 'push',
    GITHUB_EVENT_PATH: join(work, 'event.json'),
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_RUN_ID: '42',
    GITHUB_JOB: 'images',
    SOURCE_DATE_EPOCH: '1700000000',
    INPUT_CONFIG: join(work, 'oci-build.yml'),
    INPUT_IMAGES: image,
    INPUT_TAGS: 'type=raw,value=v1',
    INPUT_PUSH: 'true',
    INPUT_CACHE: 'false',
    'INPUT_CACHE-REGISTRY': 'false',
    'INPUT_DIGEST-MAP': join(work, `digests-${tag}.json`),
    'INPUT_ARTIFACT-NAME': '',
    INPUT_SUMMARY: 'true',
    INPUT_PROVENANCE: 'true',
    INPUT_SBOM: 'true',
    'INPUT_GITHUB-TOKEN': 'gh-token-for-attestations',
    ...extra,
  };
  const r = await runNode(ACTION, [], { env, cwd: work });
  expect(r.code, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`).toBe(0);
  const map = JSON.parse(readFileSync(join(work, `digests-${tag}.json`), 'utf8')) as Record<
    string,
    { digest: string; attestations: Record<string, { provenance: string; sbom: string }> }
  >;
  return { ...r, app: map.app!, summary: readFileSync(summary, 'utf8') };
}

async function raw(ref: string): Promise<any> {
  return JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout);
}

describe('signing through the running action', () => {
  it('with id-token: write, the referrers are Sigstore bundles that verify, and each was stored through the attestations API', async () => {
    const trustFile = join(work, 'trust.json');
    const r = await runAction('signed', `${reg.host}/acme/app`, {
      ACTIONS_ID_TOKEN_REQUEST_URL: `${await listen(oidc)}/token?api-version=2.0`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'request-token',
      GITHUB_API_URL: await listen(api),
      NODE_OPTIONS: `--import ${pathToFileURL(PRELOAD).href}`,
      SIGSTORE_MOCK_TRUST: trustFile,
    });
    expect(r.stdout).not.toMatch(/id-token: write/);
    const trust = toTrustMaterial(TrustedRoot.fromJSON(JSON.parse(readFileSync(trustFile, 'utf8'))));
    const attested = r.app.attestations[r.app.digest]!;
    const fallback = await raw(`${reg.host}/acme/app:sha256-${r.app.digest.slice(7)}`);
    expect(fallback.manifests.map((m: any) => m.digest).sort()).toEqual([attested.provenance, attested.sbom].sort());
    const predicates: string[] = [];
    for (const m of fallback.manifests) {
      expect(m.artifactType).toMatch(BUNDLE);
      const art = await raw(`${reg.host}/acme/app@${m.digest}`);
      expect(art.subject.digest).toBe(r.app.digest);
      const bundle = (await (await fetch(`${reg.url}/v2/acme/app/blobs/${art.layers[0].digest}`)).json()) as any;
      // GitHub's instance logs no Rekor entry: the certificate's SCT and an RFC 3161 timestamp stand for it.
      new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 1, timestampThreshold: 1 }).verify(toSignedEntity(bundleFromJSON(bundle)));
      const st = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8'));
      expect(st.subject[0].digest.sha256).toBe(r.app.digest.slice(7));
      predicates.push(st.predicateType);
      // The very bundle the registry holds went to the repository's attestations, with the token.
      expect(stored.filter((s) => JSON.stringify(s.bundle) === JSON.stringify(bundle))).toHaveLength(1);
    }
    expect(predicates.sort()).toEqual(['https://cyclonedx.org/bom', 'https://slsa.dev/provenance/v1']);
    expect(stored).toHaveLength(2);
    // The job summary's attestations column names them.
    const row = r.summary.split('\n').find((l) => l.includes('<b>app</b>'))!;
    expect(row).toContain('<summary>1 provenance, 1 SBOM</summary>');
    for (const d of [attested.provenance, attested.sbom]) expect(row).toContain(`<code>${d.slice(0, 19)}</code>`);
    for (const s of stored) {
      expect(s.path).toBe('/repos/acme/app/attestations');
      expect(s.auth).toMatch(/gh-token-for-attestations/);
    }
  }, 300_000);

  it('without id-token: write, the attestations are attached unsigned and one notice names both permissions', async () => {
    const r = await runAction('unsigned', `${reg.host}/acme/unsigned`, {});
    const fallback = await raw(`${reg.host}/acme/unsigned:sha256-${r.app.digest.slice(7)}`);
    expect(fallback.manifests.map((m: any) => m.artifactType).sort()).toEqual([
      'application/vnd.cyclonedx+json',
      'application/vnd.in-toto+json',
    ]);
    const notices = r.stdout.split('\n').filter((l) => /id-token: write/.test(l));
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/^::warning::.*id-token: write.*attestations: write/);
  }, 300_000);
});
