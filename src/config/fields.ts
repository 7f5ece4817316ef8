/**
 * Checks of single values of the build file, after `${NAME}` substitution.
 * Each returns the normalized value or a message with a fix hint; load.ts adds the position.
 */
import { posix } from 'node:path';
// biome-ignore lint/suspicious/noShadowRestrictedNames: the reference parser's own error class, imported by name
import { parseReference, ReferenceError } from '../oci/reference.js';

export type Check<T> = { ok: true; value: T } | { ok: false; message: string; hint: string };

const ok = <T>(value: T): Check<T> => ({ ok: true, value });
const bad = <T>(message: string, hint: string): Check<T> => ({ ok: false, message, hint });

export const VARIANT_NAME = /^[a-z0-9][a-z0-9_.-]*$/;
/** Variant names become tags, and tags are at most 128 characters. */
export const MAX_VARIANT_NAME = 128;

export function checkVariantName(name: string): Check<string> {
  if (!VARIANT_NAME.test(name)) {
    const lower = name
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '');
    return bad(
      `variant name "${name}" is invalid: it becomes a tag and a file name, so it must match ${VARIANT_NAME.source}`,
      `use lowercase letters, digits, _ . - and start with a letter or digit${lower ? `, e.g. "${lower}"` : ''}`,
    );
  }
  if (name.length > MAX_VARIANT_NAME) {
    return bad(
      `variant name "${name.slice(0, 20)}..." is longer than ${MAX_VARIANT_NAME} characters`,
      'use a shorter name (it becomes a tag)',
    );
  }
  return ok(name);
}

export function checkArgName(name: string): Check<string> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    return bad(`arg name "${name}" is invalid`, 'use letters, digits and _, not starting with a digit (it is used as ${NAME})');
  }
  if (name === 'variant') {
    return bad('"variant" is a built-in name (the variant being built) and cannot be declared as an arg', 'rename the arg');
  }
  return ok(name);
}

/** `image:`: a repository without tag or digest. Kept as written (after substitution). */
export function checkImage(s: string): Check<string> {
  try {
    parseReference(s, { repositoryOnly: true });
    return ok(s);
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    const repo = stripTagAndDigest(s);
    const hint = /[A-Z]/.test(s)
      ? `write it in lowercase, e.g. "${repo.toLowerCase()}"`
      : repo !== s
        ? `remove the tag or digest: image: ${repo} (tags are chosen when pushing)`
        : 'give a repository such as ghcr.io/owner/name';
    return bad(e.message, hint);
  }
}

function stripTagAndDigest(s: string): string {
  let r = s.replace(/@.*$/, '');
  const colon = r.lastIndexOf(':');
  if (colon > r.lastIndexOf('/')) r = r.slice(0, colon);
  return r;
}

/** `base:`: `scratch` or any reference (tag and/or digest). Kept as written (after substitution). */
export function checkBase(s: string): Check<string> {
  if (s === 'scratch') return ok(s);
  try {
    parseReference(s);
    return ok(s);
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    return bad(
      e.message,
      /[A-Z]/.test(s) ? 'repository names are lowercase' : 'give a reference such as docker.io/library/ubuntu:24.04, or scratch',
    );
  }
}

/**
 * A file mode: an octal string ("0755", "755", "04755", "0o755") or a YAML int whose decimal
 * digits read as octal (YAML 1.2 reads `0755` as the int 755). `yamlOctal` is true when YAML
 * itself parsed the value as octal (`0o755`), in which case the number is the mode.
 */
export function parseMode(v: string | number, yamlOctal = false): Check<number> {
  let digits: string;
  if (typeof v === 'number') {
    if (yamlOctal) {
      return v >= 0 && v <= 0o7777 ? ok(v) : bad(`mode 0o${v.toString(8)} is larger than 07777`, 'use at most 4 octal digits, e.g. "0755"');
    }
    if (!Number.isInteger(v) || v < 0) return bad(`mode ${v} is not an octal number`, 'write it as a quoted octal string, e.g. "0755"');
    digits = String(v);
  } else {
    digits = v.trim().replace(/^0o/i, '');
  }
  if (!/^[0-7]+$/.test(digits)) {
    return bad(`mode ${JSON.stringify(v)} is not an octal number`, 'use octal digits 0-7, quoted, e.g. "0755" or "0644"');
  }
  const n = parseInt(digits, 8);
  if (n > 0o7777)
    return bad(
      `mode ${JSON.stringify(v)} is larger than 07777`,
      'use at most 4 octal digits (setuid/setgid/sticky + rwx), e.g. "0755" or "04755"',
    );
  return ok(n);
}

const OWNER = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$/;
const MAX_ID = 2 ** 31 - 1;

/** `owner:` and `user:` syntax: uid, uid:gid, name, name:group. Names are resolved later. */
export function checkOwner(v: string | number, what = 'owner'): Check<string> {
  const s = String(v);
  if (!OWNER.test(s)) {
    return bad(`${what} "${s}" is invalid`, 'write uid, uid:gid, name or name:group, e.g. "1000:1000" or "app:app"');
  }
  for (const part of s.split(':')) {
    if (/^\d+$/.test(part) && Number(part) > MAX_ID) {
      return bad(`${what} "${s}": id ${part} is larger than ${MAX_ID}`, 'use an id between 0 and 2147483647');
    }
  }
  return ok(s);
}

/** `expose:` entries: 8080 or "8080" or "53/udp" -> "8080/tcp", "53/udp". */
export function parseExpose(v: string | number): Check<string> {
  const m = typeof v === 'number' ? [String(v), String(v), undefined] : /^(\d+)(?:\/([A-Za-z]+))?$/.exec(v.trim());
  if (!m) {
    return bad(
      `port ${JSON.stringify(v)} is invalid`,
      'write a port number or "port/proto" with proto tcp, udp or sctp, e.g. 8080 or "53/udp" (ranges are not supported)',
    );
  }
  const port = Number(m[1]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return bad(`port ${JSON.stringify(v)} is out of range`, 'ports are 1 to 65535');
  }
  const proto = (m[2] ?? 'tcp').toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) {
    return bad(`port ${JSON.stringify(v)} has unknown protocol "${m[2]}"`, 'use tcp, udp or sctp');
  }
  return ok(`${port}/${proto}`);
}

/** `stop-signal:` SIGTERM, SIGRTMIN+3, or a signal number. Kept as a string. */
export function parseStopSignal(v: string | number): Check<string> {
  const s = String(v).trim();
  if (/^SIG[A-Z0-9+-]+$/.test(s)) return ok(s);
  if (/^\d+$/.test(s) && Number(s) >= 1 && Number(s) <= 64) return ok(s);
  const upper = s.toUpperCase();
  const suggestion = /^SIG[A-Z0-9+-]+$/.test(upper)
    ? upper
    : /^[A-Z0-9+-]+$/.test(upper) && !/^\d+$/.test(upper)
      ? `SIG${upper}`
      : undefined;
  return bad(
    `stop-signal ${JSON.stringify(v)} is invalid`,
    suggestion ? `write ${suggestion}` : 'use a signal name such as SIGTERM or SIGINT, or a number from 1 to 64',
  );
}

export function checkEnvName(name: string): Check<string> {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)
    ? ok(name)
    : bad(`environment variable name "${name}" is invalid`, 'use letters, digits and _, not starting with a digit');
}

/**
 * An absolute path inside the image. `..` segments are rejected (they make it unclear
 * where a file lands); `//` and `.` collapse. A trailing slash is kept ("into this directory")
 * unless `trailingSlash` is 'forbid'.
 */
export function checkImagePath(p: string, what: string, trailingSlash: 'keep' | 'forbid' | 'strip' = 'keep'): Check<string> {
  if (!p.startsWith('/')) {
    return bad(`${what} "${p}" is not an absolute path`, `start it with /, e.g. "/${p.replace(/^\.?\/*/, '')}"`);
  }
  if (p.split('/').includes('..')) {
    return bad(`${what} "${p}" contains ".."`, 'write the path without .. segments');
  }
  let n = posix.normalize(p);
  if (n.length > 1 && n.endsWith('/')) {
    if (trailingSlash === 'forbid')
      return bad(`${what} "${p}" ends with /, but it names a file`, 'remove the trailing slash and give the file name');
    if (trailingSlash === 'strip') n = n.slice(0, -1);
  }
  return ok(n);
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate to `word`, if one is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[], aliases: Record<string, string> = {}): string | undefined {
  const squash = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const w = squash(word);
  const alias = aliases[word.toLowerCase()] ?? aliases[w];
  if (alias && candidates.includes(alias)) return alias;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = squash(c) === w ? 0 : editDistance(w, squash(c));
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  const limit = Math.max(1, Math.floor(w.length / 3));
  return best !== undefined && bestD <= limit ? best : undefined;
}
