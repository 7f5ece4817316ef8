/**
 * The small subset of Handlebars that docker/metadata-action's `tags` and `flavor` inputs use:
 * `{{name}}` and `{{name 'arg' key='value'}}`. Names are checked when a line is parsed, so a typo
 * fails with the line instead of silently rendering ''. No HTML escaping (tags are not HTML).
 */

export interface TemplateExpr {
  name: string;
  args: string[];
  hash: Record<string, string>;
  /** The expression as written, braces included. */
  source: string;
}

export type TemplatePart = string | TemplateExpr;

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Splits a template into literal text and expressions; throws TemplateError on bad syntax. */
export function parseTemplate(s: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let i = 0;
  while (i < s.length) {
    const open = s.indexOf('{{', i);
    if (open < 0) {
      parts.push(s.slice(i));
      break;
    }
    if (open > i) parts.push(s.slice(i, open));
    const close = findClose(s, open + 2);
    if (close < 0) throw new TemplateError(`"${s.slice(open)}" has no closing }}`);
    parts.push(parseExpr(s.slice(open + 2, close), s.slice(open, close + 2)));
    i = close + 2;
  }
  return parts;
}

function findClose(s: string, from: number): number {
  let quote: string | undefined;
  for (let i = from; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '}' && s[i + 1] === '}') {
      return i;
    }
  }
  return -1;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parseExpr(body: string, source: string): TemplateExpr {
  const tokens: string[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    let j = i;
    let tok = '';
    while (j < body.length && !/\s/.test(body[j]!)) {
      const q = body[j]!;
      if (q === "'" || q === '"') {
        const end = body.indexOf(q, j + 1);
        if (end < 0) throw new TemplateError(`${source}: unterminated ${q === "'" ? 'single' : 'double'} quote`);
        tok += body.slice(j, end + 1);
        j = end + 1;
      } else {
        tok += q;
        j++;
      }
    }
    tokens.push(tok);
    i = j;
  }
  const [name, ...rest] = tokens;
  if (!name || !IDENT.test(name)) throw new TemplateError(`${source}: expected an expression name such as {{branch}}`);
  const args: string[] = [];
  const hash: Record<string, string> = {};
  for (const t of rest) {
    const eq = t.indexOf('=');
    if (eq > 0 && IDENT.test(t.slice(0, eq))) {
      hash[t.slice(0, eq)] = unquote(t.slice(eq + 1), source);
    } else {
      args.push(unquote(t, source));
    }
  }
  return { name, args, hash, source };
}

function unquote(t: string, source: string): string {
  const q = t[0];
  if ((q === "'" || q === '"') && t.length >= 2 && t.endsWith(q)) return t.slice(1, -1);
  if (t.includes("'") || t.includes('"')) throw new TemplateError(`${source}: badly quoted argument ${t}`);
  return t;
}

/** What an expression may look like: its arguments and hash keys. */
export interface ExprSpec {
  /** Positional arguments: exact count, or [min, max]. */
  args: number | [number, number];
  hash?: string[];
}

/** Checks a parsed template against the expressions allowed where it is used. */
export function checkTemplate(parts: TemplatePart[], allowed: Record<string, ExprSpec>): void {
  for (const p of parts) {
    if (typeof p === 'string') continue;
    const spec = allowed[p.name];
    if (!spec) {
      const names = Object.keys(allowed).map((n) => `{{${n}}}`).join(', ');
      throw new TemplateError(`${p.source}: unknown expression "${p.name}" here (available: ${names || 'none'})`);
    }
    const [min, max] = typeof spec.args === 'number' ? [spec.args, spec.args] : spec.args;
    if (p.args.length < min || p.args.length > max) {
      const want = min === max ? `${min}` : `${min} to ${max}`;
      throw new TemplateError(`${p.source}: ${p.name} takes ${want} quoted argument(s), got ${p.args.length}${p.name.endsWith('date') ? ` (e.g. {{${p.name} 'YYYYMMDD'}})` : ''}`);
    }
    for (const k of Object.keys(p.hash)) {
      if (!spec.hash?.includes(k)) throw new TemplateError(`${p.source}: unknown attribute ${k}= for ${p.name}${spec.hash?.length ? ` (allowed: ${spec.hash.join(', ')})` : ''}`);
    }
  }
}

export type ExprFn = (e: TemplateExpr) => string;

export function renderTemplate(parts: TemplatePart[], fns: Record<string, ExprFn>): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    const fn = fns[p.name];
    if (!fn) throw new TemplateError(`${p.source}: unknown expression "${p.name}"`);
    out += fn(p);
  }
  return out;
}

// --- Dates (moment.js format subset) ---------------------------------------------------------

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const TOKENS = /\[[^\]]*\]|YYYY|YY|Q|MMMM|MMM|MM|M|DDDD|DDD|DD|Do|D|dddd|ddd|dd|d|HH|H|hh|h|kk|k|mm|m|ss|s|SSS|SS|S|A|a|ZZ|Z|X|x/g;

interface Wall {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number; // 0 = Sunday
  offsetMinutes: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Throws TemplateError when tz is not an IANA time zone name the runtime knows. */
export function checkTimeZone(tz: string): void {
  wallClock(new Date(0), tz);
}

function wallClock(d: Date, tz: string): Wall {
  let f = formatters.get(tz);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new TemplateError(`unknown time zone tz='${tz}' (use an IANA name such as UTC, Europe/Paris or Asia/Tokyo)`);
    }
    formatters.set(tz, f);
  }
  const parts = Object.fromEntries(f.formatToParts(d).map((p) => [p.type, p.value]));
  const year = Number(parts.year);
  const month = Number(parts.month);
  const day = Number(parts.day);
  const hour = Number(parts.hour) % 24;
  const minute = Number(parts.minute);
  const second = Number(parts.second);
  const asUtc = Date.UTC(year, month - 1, day, hour, minute, second);
  const offsetMinutes = Math.round((asUtc - Math.floor(d.getTime() / 1000) * 1000) / 60000);
  const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  return { year, month, day, hour, minute, second, weekday, offsetMinutes };
}

const pad = (n: number, w: number) => String(Math.abs(n)).padStart(w, '0');

function ordinal(n: number): string {
  const t = n % 100;
  if (t >= 11 && t <= 13) return `${n}th`;
  return `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
}

/**
 * Formats a date with moment.js tokens (the subset: YYYY YY Q MMMM MMM MM M DDDD DDD DD Do D dddd
 * ddd dd d HH H hh h kk k mm m ss s SSS SS S A a ZZ Z X x, and [literal] text); any other
 * character is copied as is. `tz` is an IANA zone, UTC by default.
 */
export function formatDate(d: Date, format: string, tz = 'UTC'): string {
  const w = wallClock(d, tz);
  const ms = ((d.getTime() % 1000) + 1000) % 1000;
  const h12 = w.hour % 12 || 12;
  const dayOfYear = Math.round((Date.UTC(w.year, w.month - 1, w.day) - Date.UTC(w.year, 0, 1)) / 86400000) + 1;
  const off = (sep: string) => `${w.offsetMinutes < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(w.offsetMinutes) / 60), 2)}${sep}${pad(Math.abs(w.offsetMinutes) % 60, 2)}`;
  return format.replace(TOKENS, (t) => {
    switch (t) {
      case 'YYYY': return pad(w.year, 4);
      case 'YY': return pad(w.year % 100, 2);
      case 'Q': return String(Math.ceil(w.month / 3));
      case 'MMMM': return MONTHS[w.month - 1]!;
      case 'MMM': return MONTHS[w.month - 1]!.slice(0, 3);
      case 'MM': return pad(w.month, 2);
      case 'M': return String(w.month);
      case 'DDDD': return pad(dayOfYear, 3);
      case 'DDD': return String(dayOfYear);
      case 'DD': return pad(w.day, 2);
      case 'Do': return ordinal(w.day);
      case 'D': return String(w.day);
      case 'dddd': return DAYS[w.weekday]!;
      case 'ddd': return DAYS[w.weekday]!.slice(0, 3);
      case 'dd': return DAYS[w.weekday]!.slice(0, 2);
      case 'd': return String(w.weekday);
      case 'HH': return pad(w.hour, 2);
      case 'H': return String(w.hour);
      case 'hh': return pad(h12, 2);
      case 'h': return String(h12);
      case 'kk': return pad(w.hour || 24, 2);
      case 'k': return String(w.hour || 24);
      case 'mm': return pad(w.minute, 2);
      case 'm': return String(w.minute);
      case 'ss': return pad(w.second, 2);
      case 's': return String(w.second);
      case 'SSS': return pad(ms, 3);
      case 'SS': return pad(Math.floor(ms / 10), 2);
      case 'S': return String(Math.floor(ms / 100));
      case 'A': return w.hour < 12 ? 'AM' : 'PM';
      case 'a': return w.hour < 12 ? 'am' : 'pm';
      case 'ZZ': return off('');
      case 'Z': return off(':');
      case 'X': return String(Math.floor(d.getTime() / 1000));
      case 'x': return String(d.getTime());
      default: return t.slice(1, -1); // [literal]
    }
  });
}
