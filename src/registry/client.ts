/**
 * An OCI distribution-spec client over undici, one method per protocol step. All HTTP goes
 * through `send()`: it adds authentication, maps failures to RegistryError and (unless a method
 * retries a whole multi-request sequence itself) applies withRetry.
 *
 * One shared keep-alive Agent serves every registry, token server and redirect target, so
 * parallel layer uploads reuse connections instead of paying a TLS handshake each.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { hashDigest, isDigest, sha256, type Digest } from '../oci/digest.js';
import { MANIFEST_ACCEPT, MediaType } from '../oci/mediatypes.js';
import type { Index } from '../oci/types.js';
import { isInsecureRegistry, isValidTag, registryBaseUrl } from '../oci/reference.js';
import { silentLogger, type Logger } from '../log.js';
import { Authenticator, mergeScopes, mountScopes, parseChallenges, pullScopes, pushScopes } from './auth.js';
import type { CredentialSource } from './credentials.js';
import {
  DigestMismatchError,
  RegistryError,
  headerValue,
  looksLikeHtml,
  networkError,
  readLimited,
  redactUrl,
  responseError,
} from './errors.js';
import { isTemporary, resolveRetryPolicy, RetryBudget, withRetry, type RetryPolicy } from './retry.js';

export interface RepoRef {
  registry: string;
  repository: string;
}

export interface RegistryClientOptions {
  credentials?: CredentialSource;
  logger?: Logger;
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  /** Time to wait for response headers once a request is sent. */
  headersTimeoutMs?: number;
  /** Longest pause between two chunks of a response body. */
  bodyTimeoutMs?: number;
}

/** The distribution spec lets registries refuse manifests over 4 MiB; we refuse to read larger. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECT = new Set([301, 302, 303, 307, 308]);

type Body = Buffer | (() => Readable | Promise<Readable>);

interface Req {
  method: Dispatcher.HttpMethod;
  url: URL;
  scopes: string[];
  headers?: Record<string, string>;
  /** A Buffer, or a factory: stream bodies are opened afresh for each transmission. */
  body?: Body;
  /** Statuses handed to the caller; anything else becomes a RegistryError. */
  ok: number[];
  /** The handler takes ownership of the response body (streaming); otherwise send() drains it. */
  keepBody?: boolean;
}

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: URL;
}

/** Marks failures of the caller's own body stream: local problems, not registry ones. */
class SourceError extends Error {
  readonly temporary = false;
  constructor(cause: unknown) {
    super(`reading the upload body failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'SourceError';
  }
}

function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim();
}

export class RegistryClient {
  private readonly agent: Agent;
  private readonly auth: Authenticator;
  private readonly logger: Logger;
  private readonly retry: RetryPolicy;
  private readonly userAgent: string;
  private readonly credentials?: CredentialSource;
  private readonly headersTimeoutMs: number;
  private readonly bodyTimeoutMs: number;

  constructor(opts: RegistryClientOptions = {}) {
    this.logger = opts.logger ?? silentLogger;
    this.retry = resolveRetryPolicy(opts.retry);
    this.userAgent = opts.userAgent ?? 'oci-build-action/0.1';
    this.credentials = opts.credentials;
    this.headersTimeoutMs = opts.headersTimeoutMs ?? 60_000;
    this.bodyTimeoutMs = opts.bodyTimeoutMs ?? 120_000;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 300_000,
      headersTimeout: this.headersTimeoutMs,
      bodyTimeout: this.bodyTimeoutMs,
    });
    this.auth = new Authenticator({
      dispatcher: this.agent,
      credentials: opts.credentials,
      logger: this.logger,
      userAgent: this.userAgent,
      headersTimeoutMs: this.headersTimeoutMs,
      bodyTimeoutMs: this.bodyTimeoutMs,
    });
  }

  /** Token requests made so far (diagnostics, tests). */
  get tokenRequests(): number {
    return this.auth.tokenRequests;
  }

  /**
   * Closes pooled connections. A blob stream that was never consumed would keep `close()` waiting
   * forever, so after a grace period the remaining connections are destroyed.
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), 2000);
      timer.unref();
    });
    const outcome = await Promise.race([this.agent.close().then(() => 'closed' as const), grace]);
    clearTimeout(timer);
    if (outcome === 'timeout') await this.agent.destroy().catch(() => {});
  }

  // --- Manifests -------------------------------------------------------------------------------

  async getManifest(repo: RepoRef, reference: string): Promise<{ mediaType: string; digest: Digest; bytes: Buffer }> {
    const url = this.url(repo, `manifests/${checkReference(reference)}`);
    return await this.send(
      repo,
      { method: 'GET', url, scopes: pullScopes(repo.repository), headers: { accept: MANIFEST_ACCEPT }, ok: [200] },
      async (res) => {
        // A manifest that cannot be used: not worth retrying (the same bytes come back).
        const refused = (detail: string) =>
          new RegistryError({ method: 'GET', url, registry: repo.registry, status: res.status, temporary: false, detail });
        const tooBig = () =>
          refused(`the manifest is larger than ${MAX_MANIFEST_BYTES} bytes (4 MiB), the most registries accept; refusing to read it`);
        const notRegistry = (why: string) =>
          refused(`${why}; ${new URL(url).origin} does not look like an OCI registry (check the registry host name)`);
        const len = Number(headerValue(res.headers, 'content-length'));
        if (len > MAX_MANIFEST_BYTES) throw tooBig();
        const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES);
        if (!bytes) throw tooBig();
        const contentType = headerValue(res.headers, 'content-type');
        const head = bytes.subarray(0, 512).toString('utf8');
        if (looksLikeHtml(contentType, head))
          throw notRegistry(`the response is HTML (${mediaTypeOf(contentType) || 'no content type'}), not a manifest`);
        let doc: unknown;
        try {
          doc = JSON.parse(bytes.toString('utf8'));
        } catch {
          throw notRegistry('the response is not JSON');
        }
        if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw notRegistry('the response is not a JSON object');
        const digest = sha256(bytes);
        if (isDigest(reference) && digest !== reference) throw new DigestMismatchError(reference, digest, url, 'manifest');
        const field = (doc as { mediaType?: unknown }).mediaType;
        const mediaType = typeof field === 'string' && field ? field : mediaTypeOf(contentType);
        return { mediaType, digest, bytes };
      },
    );
  }

  /** Existence, digest and size of a manifest without downloading it (cheap on rate-limited registries). */
  async headManifest(repo: RepoRef, reference: string): Promise<{ mediaType: string; digest: Digest; size: number } | undefined> {
    const url = this.url(repo, `manifests/${checkReference(reference)}`);
    const found = await this.send(
      repo,
      { method: 'HEAD', url, scopes: pullScopes(repo.repository), headers: { accept: MANIFEST_ACCEPT }, ok: [200, 404] },
      async (res) => {
        if (res.status === 404) return undefined;
        const dcd = headerValue(res.headers, 'docker-content-digest');
        return {
          mediaType: mediaTypeOf(headerValue(res.headers, 'content-type')),
          digest: dcd && isDigest(dcd) ? dcd : isDigest(reference) ? reference : undefined,
          size: Number(headerValue(res.headers, 'content-length') ?? NaN),
        };
      },
    );
    if (!found) return undefined;
    if (found.digest && Number.isFinite(found.size)) return { mediaType: found.mediaType, digest: found.digest, size: found.size };
    // The registry left out what we need: fall back to downloading the (small) manifest.
    const m = await this.getManifest(repo, reference);
    return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
  }

  /**
   * The referrers API (OCI distribution 1.1): an index of the manifests whose subject is `digest`.
   * Undefined when the registry has no such API: it answers 404 (a registry that has it never does
   * for a valid digest) or a non-index, and then the referrers tag schema is the fallback.
   */
  async getReferrers(repo: RepoRef, digest: Digest): Promise<Index | undefined> {
    const url = this.url(repo, `referrers/${checkDigest(digest)}`);
    return await this.send(
      repo,
      { method: 'GET', url, scopes: pullScopes(repo.repository), headers: { accept: MediaType.OciIndex }, ok: [200, 400, 404, 405] },
      async (res) => {
        if (res.status !== 200) return undefined;
        const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES);
        try {
          const doc = JSON.parse(bytes?.toString('utf8') ?? '') as Index;
          return doc && Array.isArray(doc.manifests) ? doc : undefined;
        } catch {
          return undefined;
        }
      },
    );
  }

  async putManifest(repo: RepoRef, reference: string, mediaType: string, bytes: Buffer): Promise<Digest> {
    const url = this.url(repo, `manifests/${checkReference(reference)}`);
    const digest = sha256(bytes);
    if (isDigest(reference) && reference !== digest) throw new DigestMismatchError(reference, digest, url, 'manifest to push');
    await this.send(
      repo,
      { method: 'PUT', url, scopes: pushScopes(repo.repository), headers: { 'content-type': mediaType }, body: bytes, ok: [200, 201, 202] },
      async (res) => {
        checkDigestHeader(res, digest, 'manifest');
      },
    );
    return digest;
  }

  // --- Blobs -----------------------------------------------------------------------------------

  /**
   * Whether the repository holds the blob. A 200 whose Content-Length differs from `size` or
   * whose Docker-Content-Digest names another blob is not taken as "present" (a cache or proxy
   * answering for something else): skipping the upload on its word fails the manifest later
   * with MANIFEST_BLOB_UNKNOWN. The blob is uploaded instead.
   */
  async blobExists(repo: RepoRef, digest: Digest, size?: number): Promise<boolean> {
    const url = this.url(repo, `blobs/${checkDigest(digest)}`);
    // A redirect on HEAD means the blob exists and is served from storage elsewhere.
    return await this.send(repo, { method: 'HEAD', url, scopes: pullScopes(repo.repository), ok: [200, 404, ...REDIRECT] }, async (res) => {
      if (res.status === 404) return false;
      if (res.status !== 200) return true;
      const dcd = headerValue(res.headers, 'docker-content-digest');
      const len = headerValue(res.headers, 'content-length');
      const wrong =
        dcd && dcd !== digest
          ? `Docker-Content-Digest ${dcd}`
          : size !== undefined && len !== undefined && Number(len) !== size
            ? `Content-Length ${len} (the blob has ${size} bytes)`
            : undefined;
      if (wrong) this.logger.warn(`${redactUrl(url)}: HEAD answered 200 with ${wrong}; not taking the blob as present, uploading it`);
      return !wrong;
    });
  }

  /**
   * A blob's size and digest as the registry states them (HEAD), or undefined when it does not
   * have it. On a redirect (storage elsewhere) the size is not the blob's, so it is left out.
   */
  async headBlob(repo: RepoRef, digest: Digest): Promise<{ digest: Digest; size?: number } | undefined> {
    const url = this.url(repo, `blobs/${checkDigest(digest)}`);
    return await this.send(repo, { method: 'HEAD', url, scopes: pullScopes(repo.repository), ok: [200, 404, ...REDIRECT] }, async (res) => {
      if (res.status === 404) return undefined;
      const dcd = headerValue(res.headers, 'docker-content-digest');
      const len = headerValue(res.headers, 'content-length');
      return {
        digest: dcd && isDigest(dcd) ? dcd : digest,
        ...(res.status === 200 && len !== undefined && /^\d+$/.test(len) ? { size: Number(len) } : {}),
      };
    });
  }

  /**
   * Streams a blob, verifying its size (when known) and sha256 as it flows: the stream errors with
   * DigestMismatchError at the end on a mismatch, so a consumer must not trust data it already
   * wrote until the stream ended cleanly. Retries cover reaching the response headers; when the
   * body breaks part way (reset, truncation, stall) the download resumes where it stopped with a
   * `Range` request (or, if the server ignores ranges, a fresh download that skips what we have),
   * within the same retry budget. What cannot be fixed that way errors the stream.
   */
  async getBlob(repo: RepoRef, digest: Digest, expectedSize?: number): Promise<Readable> {
    const first = this.url(repo, `blobs/${checkDigest(digest)}`);
    const what = `GET ${redactUrl(first)}`;
    const started = Date.now();
    const open = async (offset: number): Promise<Res> =>
      await withRetry(
        async () => {
          let url = first;
          const headers: Record<string, string> | undefined = offset > 0 ? { range: `bytes=${offset}-` } : undefined;
          for (let hop = 0; ; hop++) {
            const r = await this.send(
              repo,
              {
                method: 'GET',
                url,
                scopes: pullScopes(repo.repository),
                ok: [200, 206, ...REDIRECT],
                keepBody: true,
                ...(headers ? { headers } : {}),
              },
              async (x) => x,
              { retry: false },
            );
            if (!REDIRECT.has(r.status)) {
              if (
                r.status === 206 &&
                !(offset > 0 && new RegExp(`^bytes ${offset}-`).test(headerValue(r.headers, 'content-range') ?? ''))
              ) {
                r.body.destroy();
                throw new RegistryError({
                  method: 'GET',
                  url,
                  registry: repo.registry,
                  status: 206,
                  temporary: false,
                  detail: `unexpected partial content (${headerValue(r.headers, 'content-range') ?? 'no Content-Range'}) for a request from byte ${offset}`,
                });
              }
              return r;
            }
            await r.body.dump().catch(() => {});
            const loc = headerValue(r.headers, 'location');
            if (!loc || hop >= MAX_REDIRECTS) {
              throw new RegistryError({
                method: 'GET',
                url: first,
                registry: repo.registry,
                status: r.status,
                temporary: false,
                detail: loc ? `more than ${MAX_REDIRECTS} redirects` : 'redirect without a Location header',
              });
            }
            const next = new URL(loc, url);
            // Never downgrade to plain HTTP (a pre-signed storage URL would be readable by anyone on the path).
            if (next.protocol !== 'https:' && !(next.protocol === 'http:' && isInsecureRegistry(next.host))) {
              throw new RegistryError({
                method: 'GET',
                url: next,
                registry: repo.registry,
                temporary: false,
                detail: 'refusing to follow a redirect to a non-HTTPS URL',
              });
            }
            url = next;
          }
        },
        { ...this.retry, maxElapsedMs: Math.max(0, this.retry.maxElapsedMs - (Date.now() - started)) },
        this.logger,
        what,
      );

    const res = await open(0);
    const lenHeader = headerValue(res.headers, 'content-length');
    const size = expectedSize ?? (lenHeader !== undefined && /^\d+$/.test(lenHeader) ? Number(lenHeader) : undefined);
    const fail = (url: URL, status: number, detail: string) =>
      new RegistryError({ method: 'GET', url, registry: repo.registry, status, temporary: false, detail });
    if (expectedSize !== undefined && lenHeader !== undefined && Number(lenHeader) !== expectedSize) {
      res.body.destroy();
      throw fail(res.url, res.status, `blob ${digest} is ${lenHeader} bytes, expected ${expectedSize}`);
    }
    const registry = repo.registry;
    // Resumes share the download's retry budget: attempts and time since the first request.
    const resumes = new RetryBudget(
      { ...this.retry, maxElapsedMs: Math.max(0, this.retry.maxElapsedMs - (Date.now() - started)) },
      this.logger,
      what,
    );
    async function* verified(): AsyncGenerator<Buffer> {
      const h = createHash('sha256');
      let n = 0;
      let cur = res;
      /** Bytes to drop from the start of `cur` (a resumed download the server sent from byte 0). */
      let skip = 0;
      for (;;) {
        try {
          for await (const raw of cur.body as AsyncIterable<Buffer>) {
            let chunk = raw;
            if (skip > 0) {
              const drop = Math.min(skip, chunk.length);
              skip -= drop;
              chunk = chunk.subarray(drop);
              if (!chunk.length) continue;
            }
            n += chunk.length;
            if (size !== undefined && n > size) throw fail(cur.url, cur.status, `blob ${digest} is longer than ${size} bytes`);
            h.update(chunk);
            yield chunk;
          }
          if (skip > 0) throw fail(cur.url, cur.status, `blob ${digest} is shorter than the ${n} bytes already received`);
          break;
        } catch (e) {
          cur.body.destroy();
          const err = networkError(e, 'GET', cur.url, registry);
          // Every byte arrived before the connection broke: the checks below decide.
          if (isTemporary(err) && size !== undefined && n === size && skip === 0) break;
          await resumes.pause(err, {
            say: (delay) =>
              `the download broke after ${n}${size !== undefined ? ` of ${size}` : ''} bytes (${err.message}); resuming in ${delay} ms`,
          });
          cur = await open(n);
          skip = cur.status === 206 ? 0 : n;
        }
      }
      if (size !== undefined && n !== size) throw fail(cur.url, cur.status, `blob ${digest} ended after ${n} of ${size} bytes`);
      const actual = hashDigest(h);
      if (actual !== digest) throw new DigestMismatchError(digest, actual, cur.url, 'blob');
    }
    return Readable.from(verified(), { objectMode: false });
  }

  /**
   * Cross-repository mount (same registry). True when the registry linked the blob (201). On 202
   * it refused (unknown source, no pull access) and opened an upload session instead: we cancel
   * that session so it does not linger, and the caller uploads.
   */
  async mountBlob(target: RepoRef, digest: Digest, fromRepository: string): Promise<boolean> {
    const url = this.url(target, 'blobs/uploads/');
    url.searchParams.set('mount', checkDigest(digest));
    url.searchParams.set('from', fromRepository);
    const refused = (e: unknown): false => {
      // Registries that check access to the source up front (distribution does) answer 401/403
      // when our credentials cannot pull from it; some refuse mounts outright (404, 405). A
      // mount is only a shortcut: the caller uploads instead, and that reports real problems.
      if (e instanceof RegistryError && e.status !== undefined && [401, 403, 404, 405].includes(e.status)) {
        this.logger.debug(`mount of ${digest} from ${fromRepository} refused (${e.status}); uploading instead`);
        return false;
      }
      throw e;
    };
    return await this.send(
      target,
      { method: 'POST', url, scopes: mountScopes(target.repository, fromRepository), ok: [201, 202] },
      async (res) => {
        if (res.status === 201) return true;
        await res.body.dump().catch(() => {});
        const loc = headerValue(res.headers, 'location');
        if (loc) {
          const session = new URL(loc, url);
          await this.send(
            target,
            { method: 'DELETE', url: session, scopes: pushScopes(target.repository), ok: [200, 202, 204, 404] },
            async () => {},
            { retry: false },
          ).catch((e: unknown) => {
            this.logger.debug(
              `cancelling the upload session opened by a refused mount failed (ignored): ${e instanceof Error ? e.message : String(e)}`,
            );
          });
        }
        return false;
      },
    ).catch(refused);
  }

  /**
   * Uploads a blob: POST opens a session, ONE streaming PATCH sends the whole body (chunked
   * uploads break on registries with small chunk limits, e.g. GHCR's 4 MiB), PUT ?digest= commits.
   * A failure anywhere redoes the whole sequence with a fresh `open()`: the half-written session
   * is unusable, and stream bodies cannot be rewound.
   */
  async uploadBlob(repo: RepoRef, digest: Digest, size: number, open: () => Readable | Promise<Readable>): Promise<void> {
    checkDigest(digest);
    const scopes = pushScopes(repo.repository);
    const start = this.url(repo, 'blobs/uploads/');
    await withRetry(
      async () => {
        const once = { retry: false } as const;
        const session = await this.send(
          repo,
          { method: 'POST', url: start, scopes, ok: [202] },
          async (res) => location(res, 'POST', repo.registry),
          once,
        );
        const committed = await this.send(
          repo,
          {
            method: 'PATCH',
            url: session,
            scopes,
            body: open,
            ok: [202, 204],
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
          },
          async (res) => (headerValue(res.headers, 'location') ? location(res, 'PATCH', repo.registry) : session),
          once,
        );
        const put = new URL(committed);
        put.searchParams.set('digest', digest);
        await this.send(
          repo,
          { method: 'PUT', url: put, scopes, ok: [201, 204] },
          async (res) => checkDigestHeader(res, digest, 'blob'),
          once,
        );
      },
      this.retry,
      this.logger,
      `upload of ${digest} to ${repo.registry}/${repo.repository}`,
    );
  }

  // --- The one HTTP path -----------------------------------------------------------------------

  private url(repo: RepoRef, rest: string): URL {
    return new URL(`${registryBaseUrl(repo.registry)}/v2/${repo.repository}/${rest}`);
  }

  /**
   * Sends one request (with authentication and one re-authentication on 401), hands an accepted
   * response to `handle`, and retries the whole thing on temporary failures unless the caller
   * retries a larger sequence itself (`retry: false`).
   */
  private async send<T>(repo: RepoRef, req: Req, handle: (res: Res) => Promise<T>, opts: { retry?: boolean } = {}): Promise<T> {
    const attempt = async () => {
      const res = await this.exchange(repo, req);
      try {
        return await handle(res);
      } catch (e) {
        res.body.destroy();
        throw networkError(e, req.method, req.url, repo.registry);
      } finally {
        if (!req.keepBody) await res.body.dump().catch(() => {});
      }
    };
    if (opts.retry === false) return await attempt();
    return await withRetry(attempt, this.retry, this.logger, `${req.method} ${redactUrl(req.url)}`);
  }

  private async exchange(repo: RepoRef, req: Req): Promise<Res> {
    const origin = new URL(registryBaseUrl(repo.registry)).origin;
    // Authorization only ever goes to the registry's own API origin, never to redirect targets
    // or other hosts a Location header points at.
    const ours = req.url.origin === origin;
    let authz = ours ? await this.auth.authorize(repo.registry, req.scopes) : undefined;
    let res = await this.transmit(repo, req, authz);
    if (res.status === 401 && ours) {
      // One more try with fresh authentication: a first contact, an expired or revoked token.
      // Keep the (small) error body: it explains the failure if we cannot do better.
      const text = await readLimited(res.body, 64 * 1024).catch(() => undefined);
      const first: Res = { ...res, body: Readable.from(text ? [text] : []) as Res['body'] };
      const next = await this.auth.unauthorized(repo.registry, req.scopes, res.headers['www-authenticate'], authz);
      if (next !== undefined) {
        authz = next;
        res = await this.transmit(repo, req, authz);
      } else {
        res = first;
      }
    }
    if (req.ok.includes(res.status)) return res;
    let hint: string | undefined;
    if (res.status === 401) {
      // A token that was accepted but lacks an action says so in its challenge (RFC 6750).
      const insufficient = authz
        ? parseChallenges(res.headers['www-authenticate']).find((c) => c.params.error === 'insufficient_scope')
        : undefined;
      hint = !ours
        ? undefined
        : insufficient
          ? `the credentials for ${repo.registry} do not grant ${mergeScopes(insufficient.params.scope ? insufficient.params.scope.split(' ') : req.scopes).join(' ')}`
          : this.credentials?.get(repo.registry)
            ? `the credentials for ${repo.registry} were rejected`
            : `no credentials configured for ${repo.registry}`;
    } else if (res.status === 403 && req.scopes.some((s) => s.endsWith(',push'))) {
      hint = `check that the credentials for ${repo.registry} may push to ${repo.repository}`;
    }
    throw await responseError({
      method: req.method,
      url: req.url,
      registry: repo.registry,
      status: res.status,
      headers: res.headers,
      body: res.body,
      ...(hint ? { hint } : {}),
    });
  }

  /** One HTTP request on the shared agent; transport failures become RegistryError. */
  private async transmit(repo: RepoRef, req: Req, authz: string | undefined): Promise<Res> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
    if (authz) headers.authorization = authz;
    let body: Buffer | Readable | undefined;
    let source: Readable | undefined;
    let sourceError: unknown;
    if (Buffer.isBuffer(req.body)) {
      body = req.body;
    } else if (req.body) {
      const src = await req.body();
      source = src;
      // Tag errors of the caller's stream so they are not mistaken for (retryable) network errors.
      body = Readable.from(
        (async function* () {
          try {
            for await (const c of src) yield c as Buffer;
          } catch (e) {
            sourceError = e;
            throw e;
          }
        })(),
        { objectMode: false },
      );
    }
    const started = Date.now();
    const shown = `${req.method} ${redactUrl(req.url)}`;
    try {
      const r = await this.agent.request({
        origin: req.url.origin,
        path: req.url.pathname + req.url.search,
        method: req.method,
        headers,
        body: body ?? null,
        headersTimeout: this.headersTimeoutMs,
        bodyTimeout: this.bodyTimeoutMs,
      });
      this.logger.debug(`${shown} -> ${r.statusCode} in ${Date.now() - started} ms`);
      return { status: r.statusCode, headers: r.headers, body: r.body, url: req.url };
    } catch (e) {
      this.logger.debug(`${shown} -> failed in ${Date.now() - started} ms`);
      if (sourceError !== undefined) throw new SourceError(sourceError);
      throw networkError(e, req.method, req.url, repo.registry);
    } finally {
      // The request is over (or the response headers are in): the body was fully sent or is useless.
      if (source && !source.destroyed && !source.readableEnded) source.destroy();
    }
  }
}

function checkReference(reference: string): string {
  if (!isDigest(reference) && !isValidTag(reference))
    throw new Error(`invalid manifest reference "${reference}": expected a tag or a sha256 digest`);
  return reference;
}

function checkDigest(digest: string): Digest {
  if (!isDigest(digest)) throw new Error(`invalid blob digest "${digest}": expected sha256: and 64 lowercase hex digits`);
  return digest;
}

/** The upload session URL from a Location header (may be relative, may carry a _state query). */
function location(res: Res, method: string, registry: string): URL {
  const loc = headerValue(res.headers, 'location');
  if (!loc) {
    throw new RegistryError({
      method,
      url: res.url,
      registry,
      status: res.status,
      temporary: false,
      detail: 'the registry did not say where to upload (no Location header)',
    });
  }
  return new URL(loc, res.url);
}

/** Registries echo the digest they computed; a different one means the bytes were altered. */
function checkDigestHeader(res: Res, expected: Digest, what: string): void {
  const got = headerValue(res.headers, 'docker-content-digest');
  if (got?.startsWith('sha256:') && got !== expected) throw new DigestMismatchError(expected, got, res.url, what);
}
