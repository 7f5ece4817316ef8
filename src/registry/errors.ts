/**
 * Errors raised by the registry client. Every failure that reaches a caller is one of these two
 * (or an error from the caller's own body stream), so callers and the retry loop can decide on
 * `temporary` without string matching.
 */

/** Query parameters whose values are safe and useful in logs; every other value is redacted. */
const SAFE_QUERY_PARAMS = new Set(['mount', 'from', 'digest', 'n', 'last', 'service', 'scope']);

/**
 * A URL fit for logs and error messages: no userinfo, and query values redacted except a few
 * known-harmless ones. Upload `Location`s carry signed `_state` tokens and blob redirects carry
 * pre-signed storage signatures, both of which grant access on their own.
 */
export function redactUrl(input: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(input));
  } catch {
    return '<invalid URL>';
  }
  u.username = '';
  u.password = '';
  const params = [...u.searchParams.keys()];
  if (params.length) {
    const q = new URLSearchParams();
    for (const [k, v] of u.searchParams) q.append(k, SAFE_QUERY_PARAMS.has(k) ? v : 'REDACTED');
    u.search = q.toString();
  }
  u.hash = '';
  return u.toString();
}

export interface RegistryErrorInit {
  method: string;
  url: string | URL;
  registry: string;
  status?: number;
  codes?: string[];
  /** Human-readable detail: the registry's error messages, or what went wrong. */
  detail?: string;
  /** Overrides the status-based classification (network errors, our own checks). */
  temporary?: boolean;
  /** Delay the server asked for (Retry-After), in milliseconds. */
  retryAfterMs?: number;
  cause?: unknown;
}

/** Registry error codes (distribution spec) that mean "try again later". */
const TEMPORARY_CODES = new Set(['TOOMANYREQUESTS', 'UNAVAILABLE']);

/**
 * Codes that describe the request or the caller's rights, not the server's health: the same
 * request fails the same way again, whatever status a registry (or a gateway in front of it)
 * sent them with.
 */
const PERMANENT_CODES = new Set(['DENIED', 'UNAUTHORIZED', 'MANIFEST_INVALID', 'NAME_INVALID', 'TAG_INVALID', 'UNSUPPORTED']);

/**
 * Classifies an HTTP failure: 5xx (but 501 Not Implemented, which will never change), 408 and
 * 429 are worth retrying; other 4xx (auth, not found, invalid manifest) will fail the same way
 * again, and so will any response whose error codes say permission or validity (DENIED,
 * MANIFEST_INVALID...), even a 5xx.
 */
export function isTemporaryStatus(status: number, codes: readonly string[] = []): boolean {
  if (codes.some((c) => TEMPORARY_CODES.has(c))) return true;
  if (codes.some((c) => PERMANENT_CODES.has(c))) return false;
  if (status === 408 || status === 429) return true;
  return status >= 500 && status !== 501;
}

export class RegistryError extends Error {
  readonly status?: number;
  readonly codes: string[];
  readonly method: string;
  /** Redacted: no userinfo, no query secrets. */
  readonly url: string;
  readonly registry: string;
  readonly temporary: boolean;
  readonly retryAfterMs?: number;

  constructor(init: RegistryErrorInit) {
    const url = redactUrl(init.url);
    const codes = init.codes ?? [];
    const what = [init.status !== undefined ? String(init.status) : '', codes.length ? codes.join(', ') : ''].filter(Boolean).join(' ');
    const detail = init.detail ?? '';
    const sep = what && detail ? ': ' : '';
    super(
      `${init.method} ${url} failed: ${what}${sep}${detail || (what ? '' : 'unknown error')}`,
      init.cause !== undefined ? { cause: init.cause } : undefined,
    );
    this.name = 'RegistryError';
    this.method = init.method;
    this.url = url;
    this.registry = init.registry;
    this.status = init.status;
    this.codes = codes;
    this.temporary = init.temporary ?? (init.status !== undefined && isTemporaryStatus(init.status, codes));
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
  }
}

/** Content we received does not hash to the digest it was addressed by (or announced). */
export class DigestMismatchError extends Error {
  readonly expected: string;
  readonly actual: string;
  readonly url: string;
  /** Never worth retrying automatically: a registry serving wrong bytes is a bug or an attack. */
  readonly temporary = false;

  constructor(expected: string, actual: string, url: string | URL, what = 'content') {
    const u = redactUrl(url);
    super(`digest mismatch for ${what} from ${u}: expected ${expected}, got ${actual}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
    this.url = u;
  }
}

/** Error codes of undici/Node network failures that are worth retrying. */
const TEMPORARY_NET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

function errCode(e: unknown): string | undefined {
  if (e && typeof e === 'object') {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string') return c;
    const cause = (e as { cause?: unknown }).cause;
    if (cause && cause !== e) return errCode(cause);
  }
  return undefined;
}

/** Wraps a transport failure (no HTTP status) as a RegistryError; passes our own errors through. */
export function networkError(e: unknown, method: string, url: string | URL, registry: string): Error {
  if (e instanceof RegistryError || e instanceof DigestMismatchError) return e;
  const code = errCode(e);
  const msg = e instanceof Error ? e.message : String(e);
  let detail = code ? `${code}: ${msg}` : msg;
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    detail = 'the request body was not as long as announced (the blob source changed while uploading?)';
  }
  return new RegistryError({
    method,
    url,
    registry,
    detail,
    cause: e,
    temporary: code !== undefined && TEMPORARY_NET_CODES.has(code),
  });
}

// --- Turning an HTTP error response into a RegistryError -------------------------------------

/** Reads at most `limit` bytes of a body; returns undefined when it is longer (and stops reading). */
export async function readLimited(body: AsyncIterable<Uint8Array> & { destroy?(): void }, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) {
      body.destroy?.();
      return undefined;
    }
    chunks.push(Buffer.from(c.buffer, c.byteOffset, c.length));
  }
  return Buffer.concat(chunks, n);
}

export function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function looksLikeHtml(contentType: string | undefined, text: string): boolean {
  return /html/i.test(contentType ?? '') || /^\s*</.test(text);
}

/** The distribution spec error body: {"errors":[{"code":"DENIED","message":"..."}]}. */
export function parseErrorBody(text: string): { codes: string[]; messages: string[] } {
  const codes: string[] = [];
  const messages: string[] = [];
  try {
    const doc = JSON.parse(text) as { errors?: unknown; details?: unknown; message?: unknown };
    if (Array.isArray(doc.errors)) {
      for (const e of doc.errors as Array<{ code?: unknown; message?: unknown }>) {
        if (typeof e?.code === 'string') codes.push(e.code);
        if (typeof e?.message === 'string' && e.message) messages.push(e.message);
      }
    } else if (typeof doc.details === 'string') {
      messages.push(doc.details); // token servers answer {"details":"..."}
    } else if (typeof doc.message === 'string') {
      messages.push(doc.message);
    }
  } catch {
    /* not JSON */
  }
  return { codes, messages };
}

export interface ErrorResponse {
  method: string;
  url: string | URL;
  registry: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Omit for HEAD responses and when the body was not read. */
  body?: AsyncIterable<Uint8Array> & { destroy?(): void };
  /** Appended to the message: what the user can do about it. */
  hint?: string;
}

/** Reads (a bounded amount of) the error body and builds the RegistryError for a response. */
export async function responseError(r: ErrorResponse): Promise<RegistryError> {
  let detail = '';
  let codes: string[] = [];
  if (r.body && r.method !== 'HEAD') {
    let text = '';
    try {
      text = (await readLimited(r.body, 64 * 1024))?.toString('utf8') ?? '';
    } catch {
      /* the status says enough */
    }
    const ct = headerValue(r.headers, 'content-type');
    if (text && looksLikeHtml(ct, text)) {
      detail = 'the server answered with an HTML page, not a registry API response (is this the registry host?)';
    } else {
      const parsed = parseErrorBody(text);
      codes = parsed.codes;
      detail = parsed.messages.join('; ');
      if (!detail && !codes.length && text.trim()) detail = text.trim().slice(0, 200);
    }
  }
  if (r.hint) detail = detail ? `${detail} (${r.hint})` : r.hint;
  const ra = r.status === 429 || r.status === 503 ? parseRetryAfterHeader(headerValue(r.headers, 'retry-after')) : undefined;
  return new RegistryError({
    method: r.method,
    url: r.url,
    registry: r.registry,
    status: r.status,
    codes,
    detail,
    ...(ra !== undefined ? { retryAfterMs: ra } : {}),
  });
}

/** Retry-After: delta seconds or an HTTP date, in ms from now. */
export function parseRetryAfterHeader(v: string | undefined, now = Date.now()): number | undefined {
  const s = v?.trim();
  if (!s) return undefined;
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}
