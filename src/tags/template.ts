/**
 * The small subset of Handlebars that docker/metadata-action's `tags` and `flavor` inputs use:
 * `{{name}}` and `{{name 'arg' key='value'}}`. Names are checked when a line is parsed, so a typo
 * fails with the line instead of silently rendering ''. No HTML escaping (tags are not HTML).
 */

export interface TemplateExpr {
  name: string;
  args: string[];
  /** Per argument: was it quoted? Handlebars reads a bare word (`{{date YYYY}}`) as a variable, not as text. */
  quoted: boolean[];
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
  const quoted: boolean[] = [];
  const hash: Record<string, string> = {};
  for (const t of rest) {
    const eq = t.indexOf('=');
    if (eq > 0 && IDENT.test(t.slice(0, eq))) {
      hash[t.slice(0, eq)] = unquote(t.slice(eq + 1), source);
    } else {
      args.push(unquote(t, source));
      quoted.push(t[0] === "'" || t[0] === '"');
    }
  }
  return { name, args, quoted, hash, source };
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
      const names = Object.keys(allowed)
        .map((n) => `{{${n}}}`)
        .join(', ');
      throw new TemplateError(`${p.source}: unknown expression "${p.name}" here (available: ${names || 'none'})`);
    }
    const [min, max] = typeof spec.args === 'number' ? [spec.args, spec.args] : spec.args;
    if (p.args.length < min || p.args.length > max) {
      const want = min === max ? `${min}` : `${min} to ${max}`;
      throw new TemplateError(
        `${p.source}: ${p.name} takes ${want} quoted argument(s), got ${p.args.length}${p.name.endsWith('date') ? ` (e.g. {{${p.name} 'YYYYMMDD'}})` : ''}`,
      );
    }
    for (const k of Object.keys(p.hash)) {
      if (!spec.hash?.includes(k))
        throw new TemplateError(
          `${p.source}: unknown attribute ${k}= for ${p.name}${spec.hash?.length ? ` (allowed: ${spec.hash.join(', ')})` : ''}`,
        );
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
