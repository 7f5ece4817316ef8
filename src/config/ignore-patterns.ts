/**
 * `.dockerignore` patterns with Docker's rules (also COPY --exclude's): one pattern a line, `#`
 * comments, `!` re-includes, `**` for any number of directories, a leading `/` or `./` ignored;
 * a pattern also matches what is under a directory it matches; the last matching pattern decides.
 * Here (not in dockerfile/) because the builder applies --exclude to another stage's files.
 */
import { globRegex } from './glob.js';

export interface IgnorePattern {
  negate: boolean;
  re: RegExp;
  text: string;
}

export function parseDockerignore(text: string): IgnorePattern[] {
  const out: IgnorePattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    if (negate) line = line.slice(1).trim();
    line = cleanPattern(line);
    if (!line) continue;
    out.push({ negate, re: patternRegex(line), text: raw.trim() });
  }
  return out;
}

/** As Go's filepath.Clean of a relative pattern: no leading /, no ./, no doubled or trailing slashes. */
function cleanPattern(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return parts.join('/');
}

function patternRegex(p: string): RegExp {
  return globRegex(p, { escapes: true, doubleStar: true, classEscapes: true });
}

/** True when the context-relative path (no leading /) is excluded: it or a parent matches, last match wins. */
export function isIgnored(rel: string, patterns: readonly IgnorePattern[]): boolean {
  const segs = rel.split('/');
  const prefixes = segs.map((_, i) => segs.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const p of patterns) {
    if (prefixes.some((x) => p.re.test(x))) ignored = !p.negate;
  }
  return ignored;
}
