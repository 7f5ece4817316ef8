/**
 * A Docker token server (the `auth: token` flow of the CNCF distribution registry) for tests:
 * node:http on a free loopback port, RS256 JWTs signed with a fresh RSA key whose self-signed
 * certificate is the registry's `rootcertbundle`.
 *
 * The registry (2.8) finds the signing key by the JWT `kid` header: the libtrust key ID of the
 * certificate's public key (base32 of the first 240 bits of sha256 over the DER
 * SubjectPublicKeyInfo, in 4-character groups joined by ':'). `keyIdMode: 'x5c'` sends the
 * certificate chain in the header instead, which the registry verifies against the bundle.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenRequest {
  /** Basic user name sent (undefined: anonymous). */
  user?: string;
  /** True when the credentials were checked and accepted. */
  authenticated: boolean;
  service?: string;
  /** `scope` query parameters, in request order. */
  scopes: string[];
  /** What the issued token grants (empty when refused). */
  granted: AccessEntry[];
  status: number;
  /** The token issued, if any (tests scan logs for it). */
  token?: string;
  at: number;
}

export interface TokenLifetime {
  /** `expires_in` told to the client (seconds). */
  expiresIn: number;
  /**
   * How long the registry will accept the token (seconds). The JWT `exp` is set so that the
   * registry's clock-skew leeway (60 s in distribution 2.8) ends this long after issuance.
   */
  validFor: number;
}

export interface TokenServerOptions {
  /** user -> password; default { user: 'pass' }. */
  users?: Record<string, string>;
  /** Tokens without credentials (pull only, as `access` allows). Default false: 401. */
  anonymous?: boolean;
  service?: string;
  issuer?: string;
  keyIdMode?: 'kid' | 'x5c';
  /** The registry's leeway on `exp`, compensated for in `validFor` (default REGISTRY_LEEWAY_SECONDS). */
  leewaySeconds?: number;
  /**
   * Actions `user` (undefined: anonymous) gets on a resource, given the requested ones.
   * Default: everything requested for authenticated users, pull only for anonymous ones.
   */
  access?: (user: string | undefined, type: string, name: string, requested: string[]) => string[];
}

export interface TokenServer {
  url: string;
  /** Realm URL to put in the registry config. */
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  requests: TokenRequest[];
  /** The `auth:` YAML section for startRegistry({ authYaml }). */
  authYaml: string;
  /** Changes the lifetime of tokens issued from now on. */
  setLifetime(l: Partial<TokenLifetime>): void;
  /** Every token issued so far. */
  readonly tokens: string[];
  /** Forgets recorded requests (not tokens). */
  reset(): void;
  close(): Promise<void>;
}

/** The registry's leeway on exp/nbf (distribution 2.8 `token.Leeway`). */
export const REGISTRY_LEEWAY_SECONDS = 60;

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** libtrust key ID: base32(sha256(DER SPKI)[:30]) without padding, grouped by 4 with ':'. */
export function libtrustKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out.match(/.{1,4}/g)!.join(':');
}

/** Parses `repository:name:pull,push` (the name may contain ':' for registry:catalog:*). */
function parseScope(s: string): AccessEntry | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: s.slice(0, first),
    name: s.slice(first + 1, last),
    actions: s
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

export async function startTokenServer(opts: TokenServerOptions = {}): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-build-token-'));
  const users = opts.users ?? { user: 'pass' };
  const service = opts.service ?? 'test-registry';
  const issuer = opts.issuer ?? 'test-token-issuer';
  const mode = opts.keyIdMode ?? 'kid';
  const leeway = opts.leewaySeconds ?? REGISTRY_LEEWAY_SECONDS;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  execFileSync(
    'openssl',
    ['req', '-new', '-x509', '-key', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=oci-build test token issuer'],
    { stdio: 'pipe' },
  );
  const certPem = readFileSync(certPath, 'utf8');
  const certDer = Buffer.from(certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const signingKey = createPrivateKey(readFileSync(keyPath));
  const kid = libtrustKeyId(createPublicKey(signingKey));
  const header = mode === 'kid' ? { typ: 'JWT', alg: 'RS256', kid } : { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
  const encodedHeader = b64url(JSON.stringify(header));
  const access =
    opts.access ?? ((user, _type, _name, requested) => (user === undefined ? requested.filter((a) => a === 'pull') : requested));
  let lifetime: TokenLifetime = { expiresIn: 300, validFor: 300 };
  const requests: TokenRequest[] = [];
  const tokens: string[] = [];

  function issue(user: string | undefined, granted: AccessEntry[]): string {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud: service,
      // exp + leeway is when the registry stops accepting the token.
      exp: now + lifetime.validFor - leeway,
      nbf: now - 5,
      iat: now,
      jti: randomUUID(),
      access: granted,
    };
    const input = `${encodedHeader}.${b64url(JSON.stringify(claims))}`;
    const sig = sign('sha256', Buffer.from(input), signingKey);
    const token = `${input}.${b64url(sig)}`;
    tokens.push(token);
    return token;
  }

  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const scopes = u.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean);
    const rec: TokenRequest = {
      authenticated: false,
      scopes,
      granted: [],
      status: 0,
      at: Date.now(),
      ...(u.searchParams.get('service') ? { service: u.searchParams.get('service')! } : {}),
    };
    requests.push(rec);
    const reply = (status: number, doc: unknown, headers: Record<string, string> = {}) => {
      rec.status = status;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(doc));
    };
    req.resume();
    if (u.pathname !== '/token' || req.method !== 'GET') return reply(404, { details: 'not found' });
    const auth = req.headers.authorization;
    let user: string | undefined;
    if (auth) {
      const m = /^Basic\s+(.+)$/i.exec(auth);
      const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      const name = colon > 0 ? decoded.slice(0, colon) : '';
      rec.user = name || undefined;
      if (!m || colon <= 0 || users[name] === undefined || users[name] !== decoded.slice(colon + 1)) {
        return reply(401, { details: 'incorrect username or password' }, { 'www-authenticate': 'Basic realm="token"' });
      }
      user = name;
      rec.authenticated = true;
    } else if (!opts.anonymous) {
      return reply(401, { details: 'authentication required' }, { 'www-authenticate': 'Basic realm="token"' });
    }
    if (u.searchParams.get('service') !== service)
      return reply(400, { details: `unknown service "${u.searchParams.get('service') ?? ''}"` });
    const granted: AccessEntry[] = [];
    for (const s of scopes) {
      const want = parseScope(s);
      if (!want) continue;
      const actions = access(user, want.type, want.name, want.actions).filter((a) => want.actions.includes(a));
      if (actions.length) granted.push({ type: want.type, name: want.name, actions });
    }
    rec.granted = granted;
    const token = issue(user, granted);
    rec.token = token;
    reply(200, { token, access_token: token, expires_in: lifetime.expiresIn, issued_at: new Date().toISOString() });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const url = `http://127.0.0.1:${port}`;
  const realm = `${url}/token`;
  return {
    url,
    realm,
    service,
    issuer,
    certPath,
    requests,
    get tokens() {
      return tokens;
    },
    authYaml: `  token:\n    realm: ${realm}\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${certPath}`,
    setLifetime(l) {
      lifetime = { ...lifetime, ...l };
    },
    reset() {
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          r();
        });
      }),
  };
}
