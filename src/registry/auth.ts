/**
 * Registry authentication: the Docker token flow (RFC 6750 Bearer tokens from a realm named in a
 * `WWW-Authenticate` challenge) and plain Basic.
 *
 * Trust boundary: an Authenticator is asked about one registry at a time and only looks up that
 * registry's credentials. The client hands it challenges only from responses of that registry's
 * own API origin, so registry A's credentials go to A's API host or to the token realm A named,
 * never to a host that merely redirected us or answered for registry B.
 */
import type { Dispatcher } from 'undici';
import type { Logger } from '../log.js';
import { isInsecureRegistry } from '../oci/reference.js';
import type { CredentialSource, Credentials } from './credentials.js';
import { RegistryError, networkError, readLimited, responseError } from './errors.js';

export interface Challenge {
  /** Lowercased: "bearer", "basic". */
  scheme: string;
  /** Lowercased parameter names; values unquoted. */
  params: Record<string, string>;
}

/**
 * Parses WWW-Authenticate (RFC 7235): one or more challenges, each a scheme followed by
 * comma-separated `name=value` or `name="quoted, \"value\""` parameters. A name not followed by
 * `=` starts the next challenge.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((h) => parseChallenges(h));
  const s = header;
  const out: Challenge[] = [];
  let i = 0;
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = () => {
    const start = i;
    while (i < s.length && !/[\s,=]/.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  while (i < s.length) {
    while (i < s.length && /[\s,]/.test(s[i]!)) i++;
    const scheme = token();
    if (!scheme) {
      i++;
      continue;
    }
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    for (;;) {
      const save = i;
      while (i < s.length && /[\s,]/.test(s[i]!)) i++;
      const name = token();
      ws();
      if (!name || s[i] !== '=') {
        i = save;
        break;
      }
      i++; // '='
      ws();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < s.length && s[i] !== ',' && !/\s/.test(s[i]!)) i++;
        value = s.slice(start, i);
      }
      ch.params[name.toLowerCase()] = value;
    }
  }
  return out;
}

// --- Scopes --------------------------------------------------------------------------------

export function pullScopes(repository: string): string[] {
  return [`repository:${repository}:pull`];
}

export function pushScopes(repository: string): string[] {
  return [`repository:${repository}:pull,push`];
}

/** A cross-repository mount needs push on the target and pull on the source, in one token. */
export function mountScopes(target: string, source: string): string[] {
  return target === source ? pushScopes(target) : [`repository:${target}:pull,push`, `repository:${source}:pull`];
}

/** Splits scopes into atoms ("repository:a:pull") so a pull,push token can serve a pull. */
function scopeAtoms(scopes: readonly string[]): Set<string> {
  const atoms = new Set<string>();
  for (const sc of scopes) {
    for (const one of sc.split(' ')) {
      const colon = one.lastIndexOf(':');
      if (colon <= 0) {
        if (one) atoms.add(one);
        continue;
      }
      const resource = one.slice(0, colon);
      for (const action of one.slice(colon + 1).split(',')) if (action) atoms.add(`${resource}:${action}`);
    }
  }
  return atoms;
}

/** Merges scopes per resource into the canonical, sorted request form. */
export function mergeScopes(...lists: ReadonlyArray<readonly string[]>): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const atom of scopeAtoms(lists.flat())) {
    const colon = atom.lastIndexOf(':');
    const resource = colon > 0 ? atom.slice(0, colon) : atom;
    const set = byResource.get(resource) ?? new Set<string>();
    if (colon > 0) set.add(atom.slice(colon + 1));
    byResource.set(resource, set);
  }
  return [...byResource].map(([r, actions]) => (actions.size ? `${r}:${[...actions].sort().join(',')}` : r)).sort();
}

// --- Tokens --------------------------------------------------------------------------------

interface CachedToken {
  atoms: Set<string>;
  header: string;
  expiresAt: number;
}

export interface AuthenticatorOptions {
  dispatcher: Dispatcher;
  credentials?: CredentialSource;
  logger: Logger;
  userAgent: string;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

function isLoopbackUrl(u: URL): boolean {
  return isInsecureRegistry(u.host);
}

export class Authenticator {
  /** The challenge each registry answered with, so later scope sets can fetch a token up front. */
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens = new Map<string, CachedToken[]>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** Number of token requests made (tests and diagnostics). */
  tokenRequests = 0;

  constructor(private readonly opts: AuthenticatorOptions) {}

  /** The Authorization header to send up front, from what we already know; may fetch a token. */
  async authorize(registry: string, scopes: readonly string[]): Promise<string | undefined> {
    const ch = this.challenges.get(registry);
    if (!ch) return undefined; // not challenged yet: try anonymously (local registries never ask)
    if (ch.scheme === 'basic') {
      const c = this.opts.credentials?.get(registry);
      return c ? basicHeader(c) : undefined;
    }
    const cached = this.cached(registry, scopes);
    if (cached) return cached.header;
    return (await this.fetchToken(registry, ch, mergeScopes(scopes))).header;
  }

  /**
   * Handles a 401 from the registry's own API origin. `sent` is the Authorization we used. Returns
   * a different Authorization worth one more try, or undefined when we cannot do better (no
   * supported challenge, no credentials for Basic, or the token server gave the same token back).
   */
  async unauthorized(
    registry: string,
    scopes: readonly string[],
    wwwAuthenticate: string | string[] | undefined,
    sent: string | undefined,
  ): Promise<string | undefined> {
    const all = parseChallenges(wwwAuthenticate);
    const ch = all.find((c) => c.scheme === 'bearer' && c.params.realm) ?? all.find((c) => c.scheme === 'basic');
    if (!ch) return undefined;
    this.challenges.set(registry, ch);
    if (sent) this.invalidate(registry, sent);
    if (ch.scheme === 'basic') {
      const c = this.opts.credentials?.get(registry);
      const h = c ? basicHeader(c) : undefined;
      return h !== sent ? h : undefined;
    }
    // The registry may say which scope it wants; ask for ours and that one in the same token.
    const wanted = mergeScopes(scopes, ch.params.scope ? ch.params.scope.split(' ') : []);
    // Parallel requests that went out before the first token arrived (or with a token another
    // request has since replaced) all come back with a 401: use the token we have by now
    // instead of asking the token server again for each of them.
    const fresh = this.cached(registry, wanted);
    if (fresh && fresh.header !== sent) return fresh.header;
    const tok = await this.fetchToken(registry, ch, wanted);
    return tok.header !== sent ? tok.header : undefined;
  }

  /** A cached, unexpired token whose scopes cover `scopes`. */
  private cached(registry: string, scopes: readonly string[]): CachedToken | undefined {
    const need = scopeAtoms(scopes);
    const now = Date.now();
    const list = (this.tokens.get(registry) ?? []).filter((t) => t.expiresAt > now);
    this.tokens.set(registry, list);
    return list.find((t) => [...need].every((a) => t.atoms.has(a)));
  }

  private invalidate(registry: string, header: string): void {
    const list = this.tokens.get(registry);
    if (list)
      this.tokens.set(
        registry,
        list.filter((t) => t.header !== header),
      );
  }

  /** Fetches (once, even for concurrent callers) a token for a sorted scope set. */
  private fetchToken(registry: string, ch: Challenge, scopes: string[]): Promise<CachedToken> {
    const key = `${registry}\n${scopes.join(' ')}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.requestToken(registry, ch, scopes)
        .then((tok) => {
          const list = this.tokens.get(registry) ?? [];
          list.push(tok);
          this.tokens.set(registry, list);
          return tok;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async requestToken(registry: string, ch: Challenge, scopes: string[]): Promise<CachedToken> {
    let realm: URL;
    try {
      realm = new URL(ch.params.realm ?? '');
    } catch {
      throw new RegistryError({
        method: 'GET',
        url: `https://${registry}/`,
        registry,
        temporary: false,
        detail: `the registry's auth challenge names an invalid token realm "${ch.params.realm ?? ''}"`,
      });
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
      throw new RegistryError({ method: 'GET', url: realm, registry, temporary: false, detail: 'token realm is not an http(s) URL' });
    }
    const url = new URL(realm);
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const creds = this.opts.credentials?.get(registry);
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent, accept: 'application/json' };
    if (creds) {
      // Never put a password on the wire in clear text, except to a loopback test server.
      if (url.protocol !== 'https:' && !isLoopbackUrl(url)) {
        throw new RegistryError({
          method: 'GET',
          url,
          registry,
          temporary: false,
          detail: `refusing to send the credentials for ${registry} to a plain-HTTP token realm`,
        });
      }
      headers.authorization = basicHeader(creds);
    }
    this.tokenRequests++;
    const started = Date.now();
    let res: Dispatcher.ResponseData;
    try {
      res = await this.opts.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: 'GET',
        headers,
        headersTimeout: this.opts.headersTimeoutMs,
        bodyTimeout: this.opts.bodyTimeoutMs,
      });
    } catch (e) {
      throw networkError(e, 'GET', url, registry);
    }
    this.opts.logger.debug(
      `GET ${url.origin}${url.pathname} (token for ${registry}: ${scopes.join(' ')}) -> ${res.statusCode} in ${Date.now() - started} ms`,
    );
    if (res.statusCode !== 200) {
      const hint =
        res.statusCode === 401 || res.statusCode === 403
          ? creds
            ? `the token server rejected the credentials for ${registry}`
            : `the token server requires credentials for ${registry}; none are configured`
          : undefined;
      throw await responseError({
        method: 'GET',
        url,
        registry,
        status: res.statusCode,
        headers: res.headers,
        body: res.body,
        ...(hint ? { hint } : {}),
      });
    }
    const raw = await readLimited(res.body, 1024 * 1024);
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown } = {};
    try {
      doc = JSON.parse(raw?.toString('utf8') ?? '') as typeof doc;
    } catch {
      /* handled below */
    }
    const token =
      typeof doc.token === 'string' && doc.token
        ? doc.token
        : typeof doc.access_token === 'string' && doc.access_token
          ? doc.access_token
          : undefined;
    if (!token) {
      throw new RegistryError({
        method: 'GET',
        url,
        registry,
        status: 200,
        temporary: false,
        detail: 'the token server answered without a token (expected JSON with "token" or "access_token")',
      });
    }
    // The spec's default lifetime is 60 s; renew a little early so a request never races expiry.
    const life = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    const margin = Math.min(30, life * 0.1);
    return { atoms: scopeAtoms(scopes), header: `Bearer ${token}`, expiresAt: started + (life - margin) * 1000 };
  }
}
