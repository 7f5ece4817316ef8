import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256, type Digest } from '../src/oci/digest.js';
import { MediaType } from '../src/oci/mediatypes.js';
import { mergeScopes, parseChallenges } from '../src/registry/auth.js';
import { RegistryClient, type RepoRef } from '../src/registry/client.js';
import { credentialsFrom, normalizeRegistryKey, parseDockerConfig } from '../src/registry/credentials.js';
import { DigestMismatchError, RegistryError, redactUrl } from '../src/registry/errors.js';
import { backoffDelay, parseRetryAfter, resolveRetryPolicy, withRetry, type RetryPolicy } from '../src/registry/retry.js';
import type { Logger } from '../src/log.js';

// --- A tiny programmable HTTP server --------------------------------------------------------

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface TestServer {
  host: string;
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => unknown;

const servers: TestServer[] = [];
const clients: RegistryClient[] = [];

async function serve(handler: Handler): Promise<TestServer> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      Promise.resolve(handler(req, res, body)).catch((e: unknown) => {
        res.statusCode = 500;
        res.end(String(e));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const s: TestServer = {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  servers.push(s);
  return s;
}

/** Retries in tests: real but tiny delays, recorded. */
function fastRetry(extra: Partial<RetryPolicy> = {}): Partial<RetryPolicy> & { delays: number[] } {
  const delays: number[] = [];
  return {
    retries: 4,
    baseDelayMs: 1,
    maxDelayMs: 5,
    delays,
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...extra,
  };
}

function client(opts: ConstructorParameters<typeof RegistryClient>[0] = {}): RegistryClient {
  const c = new RegistryClient({ retry: fastRetry(), ...opts });
  clients.push(c);
  return c;
}

function json(res: ServerResponse, status: number, doc: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(doc));
}

function regError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  json(res, status, { errors: [{ code, message }] }, headers);
}

const MANIFEST = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha256('{}'), size: 2 },
    layers: [],
  }),
);
const MANIFEST_DIGEST = sha256(MANIFEST);

function serveManifest(res: ServerResponse, head = false): void {
  res.writeHead(200, {
    'content-type': MediaType.OciManifest,
    'docker-content-digest': MANIFEST_DIGEST,
    'content-length': String(MANIFEST.length),
  });
  res.end(head ? undefined : MANIFEST);
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

// --- Pure parts -----------------------------------------------------------------------------

describe('parseChallenges', () => {
  it('parses Bearer with quoted values containing commas', () => {
    const [c, ...rest] = parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
    );
    expect(rest).toEqual([]);
    expect(c).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' },
    });
  });

  it('parses several challenges, unquoted values, escapes and odd spacing', () => {
    const cs = parseChallenges(
      'Basic realm="Registry Realm", Bearer realm = "https://t.example/token" , service=reg.example,error="invalid_token", Foo',
    );
    expect(cs.map((c) => c.scheme)).toEqual(['basic', 'bearer', 'foo']);
    expect(cs[0]!.params).toEqual({ realm: 'Registry Realm' });
    expect(cs[1]!.params).toEqual({ realm: 'https://t.example/token', service: 'reg.example', error: 'invalid_token' });
    expect(parseChallenges('Basic realm="a \\"quoted\\" b"')[0]!.params.realm).toBe('a "quoted" b');
    expect(parseChallenges(['Basic realm=x', 'Bearer realm=y']).map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(parseChallenges(undefined)).toEqual([]);
  });

  it('merges scopes per repository', () => {
    expect(mergeScopes(['repository:a:pull,push'], ['repository:a:pull', 'repository:b:pull'])).toEqual([
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
  });
});

describe('credentials', () => {
  it('normalizes registry keys', () => {
    expect(normalizeRegistryKey('https://index.docker.io/v1/')).toBe('docker.io');
    expect(normalizeRegistryKey('registry-1.docker.io')).toBe('docker.io');
    expect(normalizeRegistryKey('https://ghcr.io')).toBe('ghcr.io');
    expect(normalizeRegistryKey('GHCR.io')).toBe('ghcr.io');
    expect(normalizeRegistryKey('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000');
  });

  it('reads base64 auth and username/password entries; explicit entries win', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-creds-'));
    try {
      const path = join(dir, 'config.json');
      writeFileSync(
        path,
        JSON.stringify({
          auths: {
            'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
            'https://ghcr.io': { username: 'gh', password: 'ghp_x' },
            'quay.io': {},
          },
        }),
      );
      const src = credentialsFrom({ explicit: { 'ghcr.io': { username: 'explicit', password: 'p' } }, dockerConfigPath: path });
      expect(src.get('docker.io')).toEqual({ username: 'hubuser', password: 'hub:pass' });
      expect(src.get('ghcr.io')).toEqual({ username: 'explicit', password: 'p' });
      expect(src.get('quay.io')).toBeUndefined();
      expect(credentialsFrom({ dockerConfigPath: path }).get('ghcr.io')).toEqual({ username: 'gh', password: 'ghp_x' });
      expect(credentialsFrom({ dockerConfigPath: null }).get('docker.io')).toBeUndefined();
      expect(credentialsFrom({ dockerConfigPath: join(dir, 'missing.json') }).get('docker.io')).toBeUndefined();
      writeFileSync(path, '{"auths": {"x": {"auth": "c2VjcmV0"'); // broken JSON must not echo content
      expect(() => credentialsFrom({ dockerConfigPath: path }).get('x')).toThrow(/not valid JSON/);
      // The error about a broken file names the file, never its content (a credential).
      const broken = '{"auths": {"x": {"auth": "c2VjcmV0"';
      let message = '';
      try {
        parseDockerConfig(broken, 'cfg');
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/not valid JSON/);
      expect(message).not.toContain('c2VjcmV0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('errors and retry policy', () => {
  it('redacts userinfo and secret query values', () => {
    const u = redactUrl('https://user:pw@host.example/v2/a/blobs/uploads/x?_state=SECRET&digest=sha256:ab&X-Amz-Signature=sig');
    expect(u).not.toMatch(/SECRET|sig|pw|user/);
    expect(u).toContain('digest=sha256%3Aab');
  });

  it('classifies statuses', () => {
    const mk = (status: number, codes: string[] = []) =>
      new RegistryError({ method: 'GET', url: 'https://r.example/v2/', registry: 'r.example', status, codes });
    expect([500, 502, 503, 504, 429, 408].map((s) => mk(s).temporary)).toEqual([true, true, true, true, true, true]);
    expect([400, 401, 403, 404, 501].map((s) => mk(s).temporary)).toEqual([false, false, false, false, false]);
    expect(mk(403, ['DENIED']).temporary).toBe(false);
    const e = new RegistryError({
      method: 'PUT',
      url: 'https://ghcr.io/v2/acme/x/manifests/v1',
      registry: 'ghcr.io',
      status: 403,
      codes: ['DENIED'],
      detail: 'permission denied',
    });
    expect(e.message).toBe('PUT https://ghcr.io/v2/acme/x/manifests/v1 failed: 403 DENIED: permission denied');
  });

  it('lets permanent error codes win over a 5xx status', () => {
    const mk = (status: number, codes: string[]) =>
      new RegistryError({ method: 'PUT', url: 'https://r.example/v2/a/manifests/v1', registry: 'r.example', status, codes });
    expect(mk(500, ['DENIED']).temporary).toBe(false);
    expect(mk(502, ['MANIFEST_INVALID']).temporary).toBe(false);
    expect(mk(500, ['UNKNOWN']).temporary).toBe(true);
    expect(mk(403, ['TOOMANYREQUESTS']).temporary).toBe(true);
  });

  it('honours a Retry-After longer than maxDelayMs (which caps only our own backoff)', async () => {
    const retry = fastRetry({ maxDelayMs: 5, maxElapsedMs: 60_000 });
    const e = Object.assign(new Error('slow down'), { temporary: true, retryAfterMs: 3000 });
    let n = 0;
    expect(
      await withRetry(async () => {
        if (n++ === 0) throw e;
        return 'ok';
      }, retry),
    ).toBe('ok');
    expect(retry.delays).toEqual([3000]);
  });

  it('parses Retry-After as seconds or an HTTP date; backoff has full jitter', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:00:07 GMT', now)).toBe(7000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    const p = resolveRetryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
    expect(backoffDelay(0, p, () => 0.999)).toBe(99);
    expect(backoffDelay(10, p, () => 0.999)).toBe(999);
    expect(backoffDelay(3, p, () => 0)).toBe(0);
  });

  it('withRetry stops at the retry budget and on permanent errors', async () => {
    const temp = Object.assign(new Error('flaky'), { temporary: true });
    let n = 0;
    await expect(
      withRetry(
        async () => {
          n++;
          throw temp;
        },
        fastRetry({ retries: 2 }),
      ),
    ).rejects.toBe(temp);
    expect(n).toBe(3);
    n = 0;
    await expect(
      withRetry(async () => {
        n++;
        throw new Error('permanent');
      }, fastRetry()),
    ).rejects.toThrow('permanent');
    expect(n).toBe(1);
    n = 0;
    expect(
      await withRetry(async (a) => {
        n++;
        if (a < 2) throw temp;
        return 'ok';
      }, fastRetry()),
    ).toBe('ok');
    expect(n).toBe(3);
  });
});

// --- Against an in-process server ------------------------------------------------------------

/** A token server plus a registry that wants Bearer tokens from it (different origins). */
async function tokenSetup(opts: { users?: Record<string, string> } = {}) {
  const valid = new Set<string>();
  let issued = 0;
  const tokenServer = await serve((req, res) => {
    const auth = req.headers.authorization;
    if (opts.users) {
      const [user, pass] = auth?.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':') : [];
      if (!user || opts.users[user] !== pass) return json(res, 401, { details: 'incorrect username or password' });
    }
    const token = `tok-${++issued}`;
    valid.add(token);
    json(res, 200, { access_token: token, expires_in: 300 });
  });
  const reg = {
    handler: (_req: IncomingMessage, _res: ServerResponse, _body: Buffer): void => {
      throw new Error('no handler');
    },
  };
  const registry = await serve((req, res, body) => {
    const auth = req.headers.authorization;
    if (!auth?.startsWith('Bearer ') || !valid.has(auth.slice(7))) {
      return regError(res, 401, 'UNAUTHORIZED', 'authentication required', {
        'www-authenticate': `Bearer realm="${tokenServer.url}/token",service="test-registry",scope="repository:ignored:pull"`,
      });
    }
    reg.handler(req, res, body);
  });
  const repo: RepoRef = { registry: registry.host, repository: 'acme/app' };
  return { tokenServer, registry, repo, valid, reg };
}

describe('RegistryClient auth', () => {
  it('fetches one token carrying both mount scopes, with Basic credentials at the realm', async () => {
    const t = await tokenSetup({ users: { alice: 's3cret' } });
    t.reg.handler = (_req, res) => {
      res.writeHead(201, { location: `/v2/acme/app/blobs/${sha256('x')}` });
      res.end();
    };
    const c = client({
      credentials: credentialsFrom({ explicit: { [t.registry.host]: { username: 'alice', password: 's3cret' } }, dockerConfigPath: null }),
    });
    expect(await c.mountBlob(t.repo, sha256('x'), 'acme/base')).toBe(true);
    expect(t.tokenServer.seen).toHaveLength(1);
    const q = new URL(t.tokenServer.seen[0]!.url, 'http://x').searchParams;
    expect(q.get('service')).toBe('test-registry');
    expect(q.getAll('scope')).toEqual(expect.arrayContaining(['repository:acme/app:pull,push', 'repository:acme/base:pull']));
    expect(t.tokenServer.seen[0]!.headers.authorization).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    // The password went to the realm only; the registry saw tokens.
    expect(t.registry.seen.every((s) => !s.headers.authorization?.startsWith('Basic'))).toBe(true);
    const post = t.registry.seen.at(-1)!;
    expect(post.method).toBe('POST');
    expect(post.url).toBe(`/v2/acme/app/blobs/uploads/?mount=${encodeURIComponent(sha256('x'))}&from=acme%2Fbase`);
  });

  it('reports wrong credentials at the token server clearly and without retrying', async () => {
    const t = await tokenSetup({ users: { alice: 's3cret' } });
    const c = client({
      credentials: credentialsFrom({ explicit: { [t.registry.host]: { username: 'alice', password: 'nope' } }, dockerConfigPath: null }),
    });
    const err = await c.getManifest(t.repo, 'latest').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(401);
    expect((err as Error).message).toMatch(/rejected the credentials/);
    expect((err as Error).message).not.toMatch(/nope/);
    expect(t.tokenServer.seen).toHaveLength(1);
  });

  it('reuses one token for many calls, sequential and parallel', async () => {
    const t = await tokenSetup();
    t.reg.handler = (req, res) => serveManifest(res, req.method === 'HEAD');
    const c = client();
    await c.getManifest(t.repo, 'v1');
    await Promise.all(Array.from({ length: 8 }, () => c.headManifest(t.repo, 'v1')));
    await c.getManifest(t.repo, MANIFEST_DIGEST);
    expect(t.tokenServer.seen).toHaveLength(1);
    expect(c.tokenRequests).toBe(1);
    // A pull token does not cover a push: that needs a second token, which then also serves pulls.
    t.reg.handler = (_req, res) => {
      res.writeHead(201, { 'docker-content-digest': MANIFEST_DIGEST });
      res.end();
    };
    await c.putManifest(t.repo, 'v1', MediaType.OciManifest, MANIFEST);
    expect(c.tokenRequests).toBe(2);
    t.reg.handler = (req, res) => serveManifest(res, req.method === 'HEAD');
    await c.getManifest(t.repo, 'v1');
    expect(c.tokenRequests).toBe(2);
  });

  it('respects expires_in: an expired token is not reused', async () => {
    const t = await tokenSetup();
    t.reg.handler = (req, res) => serveManifest(res, req.method === 'HEAD');
    // Same set-up, but the token server hands out 200 ms tokens.
    const short = await serve((_req, res) => {
      const token = `short-${t.tokenServer.seen.length}-${short.seen.length}`;
      t.valid.add(token);
      json(res, 200, { token, expires_in: 0.2 });
    });
    const registry = await serve((req, res) => {
      const auth = req.headers.authorization;
      if (!auth || !t.valid.has(auth.slice(7))) {
        return regError(res, 401, 'UNAUTHORIZED', 'auth', { 'www-authenticate': `Bearer realm="${short.url}/token",service="s"` });
      }
      serveManifest(res, req.method === 'HEAD');
    });
    const repo = { registry: registry.host, repository: 'a/b' };
    const c = client();
    await c.headManifest(repo, 'v1');
    await c.headManifest(repo, 'v1');
    expect(short.seen).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 250));
    await c.headManifest(repo, 'v1');
    expect(short.seen).toHaveLength(2);
    // The renewal happened up front: the registry never saw an expired token.
    expect(registry.seen.filter((s) => s.headers.authorization === undefined)).toHaveLength(1);
    expect(registry.seen).toHaveLength(4);
  });

  it('refreshes the token once on a 401 in the middle of an upload, reopening the body', async () => {
    const t = await tokenSetup();
    const blob = Buffer.from('hello, registry');
    const digest = sha256(blob);
    t.reg.handler = (req, res, body) => {
      if (req.method === 'POST') {
        t.valid.clear(); // revoke: the PATCH arrives with a token the registry no longer accepts
        res.writeHead(202, { location: '/v2/acme/app/blobs/uploads/u1?_state=abc' });
        return res.end();
      }
      if (req.method === 'PATCH') {
        expect(body.equals(blob)).toBe(true);
        res.writeHead(202, { location: '/v2/acme/app/blobs/uploads/u1?_state=def' });
        return res.end();
      }
      if (req.method === 'PUT') {
        res.writeHead(201, { 'docker-content-digest': digest });
        return res.end();
      }
      res.writeHead(405).end();
    };
    const c = client();
    let opens = 0;
    await c.uploadBlob(t.repo, digest, blob.length, () => {
      opens++;
      return Readable.from([blob]);
    });
    expect(c.tokenRequests).toBe(2);
    expect(opens).toBe(2); // the PATCH was sent twice: with the revoked token, then with the fresh one
    const ops = t.registry.seen.map((s) => `${s.method} ${s.headers.authorization ? 'auth' : 'anon'}`);
    expect(ops).toEqual(['POST anon', 'POST auth', 'PATCH auth', 'PATCH auth', 'PUT auth']);
    const patch = t.registry.seen.find((s) => s.method === 'PATCH')!;
    expect(patch.headers['content-type']).toBe('application/octet-stream');
    expect(patch.headers['content-length']).toBe(String(blob.length));
    const put = new URL(t.registry.seen.at(-1)!.url, 'http://x');
    expect(put.searchParams.get('_state')).toBe('def');
    expect(put.searchParams.get('digest')).toBe(digest);
  });

  it('never sends Authorization to a redirect target on another origin', async () => {
    const blob = Buffer.from('layer bytes');
    const digest = sha256(blob);
    const storage = await serve((req, res) => {
      if (req.headers.authorization) {
        res.writeHead(400).end('unexpected auth');
        return;
      }
      res.writeHead(200, { 'content-length': String(blob.length) });
      res.end(blob);
    });
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
        return regError(res, 401, 'UNAUTHORIZED', 'auth required', { 'www-authenticate': 'Basic realm="r"' });
      }
      res.writeHead(307, { location: `${storage.url}/blobs/xyz?X-Amz-Signature=abc` });
      res.end();
    });
    const repo = { registry: registry.host, repository: 'acme/app' };
    const c = client({
      credentials: credentialsFrom({ explicit: { [registry.host]: { username: 'u', password: 'p' } }, dockerConfigPath: null }),
    });
    const out = await collect(await c.getBlob(repo, digest));
    expect(out.equals(blob)).toBe(true);
    expect(storage.seen).toHaveLength(1);
    expect(storage.seen[0]!.headers.authorization).toBeUndefined();
    expect(registry.seen.at(-1)!.headers.authorization).toMatch(/^Basic /);
  });

  it("does not answer another host's challenge with a registry's credentials", async () => {
    const other = await serve((_req, res) =>
      regError(res, 401, 'UNAUTHORIZED', 'who are you', { 'www-authenticate': 'Basic realm="other"' }),
    );
    const registry = await serve((_req, res) => {
      res.writeHead(302, { location: `${other.url}/blob` });
      res.end();
    });
    const c = client({
      credentials: credentialsFrom({ explicit: { [registry.host]: { username: 'u', password: 'p' } }, dockerConfigPath: null }),
    });
    const err = await c.getBlob({ registry: registry.host, repository: 'a/b' }, sha256('x')).catch((e: unknown) => e);
    expect((err as RegistryError).status).toBe(401);
    expect(other.seen.length).toBeGreaterThan(0);
    expect(other.seen.every((s) => s.headers.authorization === undefined)).toBe(true);
  });

  it('fails with a clear 401 when a Basic registry needs credentials we do not have', async () => {
    const registry = await serve((_req, res) =>
      regError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="r"' }),
    );
    const c = client();
    const err = await c.blobExists({ registry: registry.host, repository: 'a/b' }, sha256('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(401);
    expect((err as Error).message).toMatch(/no credentials configured/);
    expect(registry.seen).toHaveLength(1);
  });
});

describe('RegistryClient retries', () => {
  it('retries 503, 500 and a connection reset, then succeeds', async () => {
    let n = 0;
    const registry = await serve((req, res) => {
      n++;
      if (n === 1) return regError(res, 503, 'UNAVAILABLE', 'try later');
      if (n === 2) {
        res.writeHead(500).end('boom');
        return;
      }
      if (n === 3) {
        req.socket.destroy();
        return;
      }
      serveManifest(res);
    });
    const retry = fastRetry();
    const c = client({ retry });
    const m = await c.getManifest({ registry: registry.host, repository: 'a/b' }, MANIFEST_DIGEST);
    expect(m.digest).toBe(MANIFEST_DIGEST);
    expect(m.mediaType).toBe(MediaType.OciManifest);
    expect(registry.seen).toHaveLength(4);
    expect(retry.delays).toHaveLength(3);
  });

  it('honours Retry-After on 429', async () => {
    let n = 0;
    const registry = await serve((_req, res) => {
      if (++n === 1) return regError(res, 429, 'TOOMANYREQUESTS', 'slow down', { 'retry-after': '2' });
      serveManifest(res, true);
    });
    const retry = fastRetry({ maxDelayMs: 10_000 });
    const c = client({ retry });
    expect(await c.headManifest({ registry: registry.host, repository: 'a/b' }, 'v1')).toEqual({
      mediaType: MediaType.OciManifest,
      digest: MANIFEST_DIGEST,
      size: MANIFEST.length,
    });
    expect(retry.delays).toEqual([2000]);
  });

  it('gives up at once when Retry-After exceeds the remaining time budget', async () => {
    const registry = await serve((_req, res) => regError(res, 503, 'UNAVAILABLE', 'maintenance', { 'retry-after': '3600' }));
    const retry = fastRetry({ maxElapsedMs: 60_000 });
    const c = client({ retry });
    const err = await c.blobExists({ registry: registry.host, repository: 'a/b' }, sha256('x')).catch((e: unknown) => e);
    expect((err as RegistryError).status).toBe(503);
    expect((err as RegistryError).temporary).toBe(true);
    expect(registry.seen).toHaveLength(1);
    expect(retry.delays).toEqual([]);
  });

  it.each([
    [400, 'MANIFEST_INVALID', 'manifest invalid'],
    [403, 'DENIED', 'permission denied'],
    [404, 'MANIFEST_UNKNOWN', 'manifest unknown'],
  ])('does not retry %i %s', async (status, code, message) => {
    const registry = await serve((_req, res) => regError(res, status, code, message));
    const c = client();
    const repo = { registry: registry.host, repository: 'acme/x' };
    const err = await c.putManifest(repo, 'v1', MediaType.OciManifest, MANIFEST).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    const re = err as RegistryError;
    expect(re.status).toBe(status);
    expect(re.codes).toEqual([code]);
    expect(re.temporary).toBe(false);
    expect(re.message).toContain(`PUT ${registry.url}/v2/acme/x/manifests/v1 failed: ${status} ${code}: ${message}`);
    expect(registry.seen).toHaveLength(1);
  });

  it('bounds retries', async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(502).end('bad gateway');
    });
    const retry = fastRetry({ retries: 2 });
    const c = client({ retry });
    const err = await c.getManifest({ registry: registry.host, repository: 'a/b' }, 'v1').catch((e: unknown) => e);
    expect((err as RegistryError).status).toBe(502);
    expect(registry.seen).toHaveLength(3);
  });

  it("does not retry when the caller's upload body fails", async () => {
    const registry = await serve((req, res) => {
      if (req.method === 'POST') {
        res.writeHead(202, { location: '/v2/a/b/blobs/uploads/s' });
        return res.end();
      }
      res.writeHead(202, { location: req.url });
      res.end();
    });
    const c = client();
    let opens = 0;
    const open = () => {
      opens++;
      return new Readable({
        read() {
          this.destroy(Object.assign(new Error('EIO: disk on fire'), { code: 'EIO' }));
        },
      });
    };
    await expect(c.uploadBlob({ registry: registry.host, repository: 'a/b' }, sha256('x'), 10, open)).rejects.toThrow(
      /reading the upload body failed: EIO: disk on fire/,
    );
    expect(opens).toBe(1);
  });

  it('redoes the whole upload sequence with a fresh body after a failure', async () => {
    const blob = Buffer.alloc(100_000, 7);
    const digest = sha256(blob);
    let patches = 0;
    const registry = await serve((req, res, body) => {
      if (req.method === 'POST') {
        res.writeHead(202, { location: `/v2/a/b/blobs/uploads/s${patches}` });
        return res.end();
      }
      if (req.method === 'PATCH') {
        if (++patches === 1) {
          res.writeHead(500).end();
          return;
        }
        expect(body.length).toBe(blob.length);
        res.writeHead(202, { location: req.url });
        return res.end();
      }
      res.writeHead(201, { 'docker-content-digest': digest });
      res.end();
    });
    const c = client();
    let opens = 0;
    await c.uploadBlob({ registry: registry.host, repository: 'a/b' }, digest, blob.length, () => {
      opens++;
      return Readable.from([blob.subarray(0, 50_000), blob.subarray(50_000)]);
    });
    expect(opens).toBe(2);
    expect(registry.seen.map((s) => s.method)).toEqual(['POST', 'PATCH', 'POST', 'PATCH', 'PUT']);
  });
});

describe('RegistryClient content checks', () => {
  it('detects a digest mismatch on getBlob at the end of the stream', async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '5' });
      res.end('evil!');
    });
    const c = client();
    const s = await c.getBlob({ registry: registry.host, repository: 'a/b' }, sha256('good!'));
    const err = await collect(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).expected).toBe(sha256('good!'));
    expect((err as DigestMismatchError).actual).toBe(sha256('evil!'));
  });

  it('detects a manifest that does not match the requested digest', async () => {
    const registry = await serve((_req, res) => serveManifest(res));
    const c = client();
    const wrong = sha256('something else');
    await expect(c.getManifest({ registry: registry.host, repository: 'a/b' }, wrong)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(registry.seen).toHaveLength(1);
  });

  it('says the host does not look like a registry when it serves HTML', async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>Welcome</title>');
    });
    const c = client();
    const err = await c.getManifest({ registry: registry.host, repository: 'a/b' }, 'latest').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as Error).message).toMatch(/does not look like an OCI registry/);
    expect(registry.seen).toHaveLength(1);
  });

  it('refuses manifests over 4 MiB', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 32);
    const registry = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': MediaType.OciManifest });
      res.end(big);
    });
    const c = client();
    await expect(c.getManifest({ registry: registry.host, repository: 'a/b' }, 'latest')).rejects.toThrow(/larger than .*4 MiB/);
  });

  it('rejects a registry digest that differs from ours on manifest PUT', async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(201, { 'docker-content-digest': sha256('other') });
      res.end();
    });
    const c = client();
    await expect(
      c.putManifest({ registry: registry.host, repository: 'a/b' }, 'v1', MediaType.OciManifest, MANIFEST),
    ).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('cancels the upload session a refused mount opened', async () => {
    const registry = await serve((req, res) => {
      if (req.method === 'POST') {
        res.writeHead(202, { location: '/v2/a/b/blobs/uploads/s1?_state=q' });
        return res.end();
      }
      res.writeHead(204).end();
    });
    const c = client();
    expect(await c.mountBlob({ registry: registry.host, repository: 'a/b' }, sha256('x'), 'c/d')).toBe(false);
    expect(registry.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      `POST /v2/a/b/blobs/uploads/?mount=${encodeURIComponent(sha256('x'))}&from=c%2Fd`,
      'DELETE /v2/a/b/blobs/uploads/s1?_state=q',
    ]);
  });

  it('logs redacted URLs only', async () => {
    const lines: string[] = [];
    const logger: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), debug: (m) => lines.push(m), group: (_n, fn) => fn() };
    const blob = Buffer.from('z');
    const digest: Digest = sha256(blob);
    const registry = await serve((req, res) => {
      if (req.method === 'POST') {
        res.writeHead(202, { location: '/v2/a/b/blobs/uploads/s1?_state=TOPSECRET' });
        return res.end();
      }
      if (req.method === 'PATCH') {
        res.writeHead(202, { location: '/v2/a/b/blobs/uploads/s1?_state=TOPSECRET2' });
        return res.end();
      }
      res.writeHead(201).end();
    });
    const c = client({ logger });
    await c.uploadBlob({ registry: registry.host, repository: 'a/b' }, digest, 1, () => Readable.from([blob]));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.join('\n')).not.toMatch(/TOPSECRET/);
  });
});

async function collect(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
