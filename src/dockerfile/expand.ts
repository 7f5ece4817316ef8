/**
 * Word processing with BuildKit's shell-lexer rules (the Dockerfile frontend 1.x), used for every
 * instruction the frontend expands (FROM, ARG, ENV, LABEL, WORKDIR, USER, COPY/ADD, EXPOSE,
 * VOLUME, STOPSIGNAL, and flags). RUN/CMD/ENTRYPOINT are never expanded here: the shell does it.
 *
 * - the escape character outside quotes makes the next character literal;
 * - '...' is literal; inside "..." only `\"`, `\$` and `\\` (with the escape character) are
 *   escapes, any other escape character stays as it is;
 * - `$NAME`, `${NAME}`; `${NAME:-word}` `${NAME-word}` `${NAME:+word}` `${NAME+word}`
 *   `${NAME:?msg}` `${NAME?msg}`; `${NAME#glob}` `${NAME##glob}` `${NAME%glob}` `${NAME%%glob}`
 *   `${NAME/glob/repl}` `${NAME//glob/repl}`; the word is itself expanded;
 * - an unset variable expands to the empty string; a `$` not followed by a name is literal.
 */
import { globSource } from '../config/glob.js';

export type Lookup = (name: string) => string | undefined;

export class ExpandError extends Error {}

class Scanner {
  i = 0;
  constructor(
    readonly s: string,
    readonly esc: string,
    readonly env: Lookup,
  ) {}
  peek(o = 0): string | undefined {
    return this.s[this.i + o];
  }
  next(): string | undefined {
    return this.s[this.i++];
  }
}

/** Expands one word: quotes removed, escapes applied, variables substituted. */
export function expandWord(word: string, env: Lookup, escape = '\\'): string {
  const sc = new Scanner(word, escape, env);
  return processUntil(sc, undefined);
}

/**
 * A heredoc body (COPY <<EOF without quotes): only variables are expanded; quotes stay, and the
 * escape character stays too unless it escapes a `$`.
 */
export function expandHeredoc(body: string, env: Lookup, escape = '\\'): string {
  let out = '';
  const sc = new Scanner(body, escape, env);
  for (;;) {
    const ch = sc.next();
    if (ch === undefined) return out;
    if (ch === escape && sc.peek() === '$') {
      out += sc.next();
      continue;
    }
    out += ch === '$' ? dollar(sc) : ch;
  }
}

/**
 * Reads until `stop` (not consumed... it is consumed when found) or the end. Inside a ${...}
 * word the stop is `}` (or `/` for the pattern of a replacement).
 */
function processUntil(sc: Scanner, stop: string | undefined): string {
  let out = '';
  for (;;) {
    const ch = sc.peek();
    if (ch === undefined) {
      if (stop !== undefined) throw new ExpandError(`missing '${stop === '}' ? '}' : stop}' in a variable substitution`);
      return out;
    }
    if (stop !== undefined && stop.includes(ch)) return out;
    sc.next();
    if (ch === sc.esc) {
      const n = sc.next();
      if (n !== undefined) out += n;
    } else if (ch === "'") {
      const end = sc.s.indexOf("'", sc.i);
      if (end < 0) throw new ExpandError('unexpected end of statement while looking for matching single-quote');
      out += sc.s.slice(sc.i, end);
      sc.i = end + 1;
    } else if (ch === '"') {
      out += doubleQuoted(sc);
    } else if (ch === '$') {
      out += dollar(sc);
    } else {
      out += ch;
    }
  }
}

function doubleQuoted(sc: Scanner): string {
  let out = '';
  for (;;) {
    const ch = sc.next();
    if (ch === undefined) throw new ExpandError('unexpected end of statement while looking for matching double-quote');
    if (ch === '"') return out;
    if (ch === '$') {
      out += dollar(sc);
      continue;
    }
    if (ch === sc.esc) {
      const n = sc.peek();
      if (n === '"' || n === '$' || n === sc.esc) {
        out += n;
        sc.next();
        continue;
      }
    }
    out += ch;
  }
}

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/** After a `$`. */
function dollar(sc: Scanner): string {
  const ch = sc.peek();
  if (ch === '{') {
    sc.next();
    return braced(sc);
  }
  if (ch !== undefined && NAME_START.test(ch)) {
    let name = '';
    while (sc.peek() !== undefined && NAME_CHAR.test(sc.peek()!)) name += sc.next();
    return sc.env(name) ?? '';
  }
  if (ch !== undefined && /[0-9]/.test(ch)) {
    sc.next();
    return sc.env(ch) ?? '';
  }
  return '$';
}

function braced(sc: Scanner): string {
  let name = '';
  while (sc.peek() !== undefined && NAME_CHAR.test(sc.peek()!)) name += sc.next();
  if (!name)
    throw new ExpandError(`bad substitution: \${${sc.s.slice(sc.i, sc.s.indexOf('}', sc.i) >= 0 ? sc.s.indexOf('}', sc.i) : undefined)}}`);
  const value = sc.env(name);
  const op = sc.next();
  if (op === undefined) throw new ExpandError(`missing '}' after \${${name}`);
  if (op === '}') return value ?? '';
  const word = (): string => {
    const w = processUntil(sc, '}');
    sc.next();
    return w;
  };
  let colon = false;
  let mod = op;
  if (op === ':') {
    colon = true;
    mod = sc.next() ?? '';
  }
  const unset = value === undefined || (colon && value === '');
  switch (mod) {
    case '-': {
      const w = word();
      return unset ? w : value!;
    }
    case '+': {
      const w = word();
      return unset ? '' : w;
    }
    case '?': {
      const w = word();
      if (unset) throw new ExpandError(`${name}: ${w || 'is not allowed to be unset'}`);
      return value!;
    }
  }
  if (colon) throw new ExpandError(`unsupported modifier (:${mod}) in substitution \${${name}:${mod}...}`);
  if (mod === '#' || mod === '%') {
    const longest = sc.peek() === mod;
    if (longest) sc.next();
    const re = globToRegex(word());
    return mod === '#' ? trimPrefix(value ?? '', re, longest) : trimSuffix(value ?? '', re, longest);
  }
  if (mod === '/') {
    const all = sc.peek() === '/';
    if (all) sc.next();
    const pattern = processUntil(sc, '/}');
    let repl = '';
    if (sc.next() === '/') repl = word();
    return replace(value ?? '', globToRegex(pattern), repl, all);
  }
  throw new ExpandError(`unsupported modifier (${mod}) in substitution \${${name}${mod}...}`);
}

/** A shell glob (`*`, `?`, `[...]`; `*` matches `/` too) as a regular expression source (not anchored, no flags). */
function globToRegex(glob: string): string {
  return globSource(glob, { crossSlash: true });
}

function matches(re: string, s: string): boolean {
  return new RegExp(`^(?:${re})$`).test(s);
}

function trimPrefix(v: string, re: string, longest: boolean): string {
  for (let n = longest ? v.length : 0; longest ? n >= 0 : n <= v.length; n += longest ? -1 : 1) {
    if (matches(re, v.slice(0, n))) return v.slice(n);
  }
  return v;
}

function trimSuffix(v: string, re: string, longest: boolean): string {
  for (let n = longest ? 0 : v.length; longest ? n <= v.length : n >= 0; n += longest ? 1 : -1) {
    if (matches(re, v.slice(n))) return v.slice(0, n);
  }
  return v;
}

/** The first (or every) longest match of the pattern, replaced. An empty pattern changes nothing. */
function replace(v: string, re: string, repl: string, all: boolean): string {
  if (re === '') return v;
  let out = '';
  let i = 0;
  while (i <= v.length) {
    let end = -1;
    for (let j = v.length; j > i; j--)
      if (matches(re, v.slice(i, j))) {
        end = j;
        break;
      }
    if (end < 0) {
      if (i < v.length) out += v[i];
      i++;
      continue;
    }
    out += repl;
    i = end;
    if (!all) return out + v.slice(i);
  }
  return out;
}

/**
 * Splits an instruction's text into words on unquoted blanks, as BuildKit's parser does before
 * expansion: quotes and escapes are kept in the words (expandWord removes them).
 */
export function splitWords(text: string, escape = '\\'): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote === undefined && /\s/.test(ch)) {
      if (inWord) {
        words.push(cur);
        cur = '';
        inWord = false;
      }
      continue;
    }
    inWord = true;
    cur += ch;
    if (ch === escape && quote !== "'" && i + 1 < text.length) {
      cur += text[++i];
      continue;
    }
    if (quote === undefined && (ch === '"' || ch === "'")) quote = ch;
    else if (ch === quote) quote = undefined;
  }
  if (inWord) words.push(cur);
  return words;
}
