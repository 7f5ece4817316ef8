/**
 * Shell-style globs to regular expressions, one implementation for the dialects the build uses:
 * `copy: from:` sources in an image (the build file), Dockerfile COPY/ADD sources (Go's
 * filepath.Match per segment), .dockerignore patterns (moby's patternmatcher, with `**`), and
 * the pattern forms of Dockerfile variable expansion (`${v#pat}`, where `*` matches `/` too).
 * In every dialect `[!...]` and `[^...]` negate a class, and a `]` right after `[` (or `[!`) is
 * the class's first member, as in Go's filepath.Match and POSIX shells.
 */
export interface GlobDialect {
  /** `\x` outside a class matches x itself (otherwise a backslash is a literal character). */
  escapes?: boolean;
  /** `*` and `?` match `/` too (a pattern over a whole string, not one path segment). */
  crossSlash?: boolean;
  /** `**` matches any number of path segments, `**\/` none at all included. */
  doubleStar?: boolean;
  /** Inside a class a backslash escapes the next character (otherwise it is a member itself). */
  classEscapes?: boolean;
}

/** Characters a literal pattern character must be escaped for in a regular expression. */
const SPECIAL = /[.*+?^${}()|[\]\\/-]/g;

/** The regular expression source (not anchored) for one glob in a dialect. */
export function globSource(glob: string, d: GlobDialect = {}): string {
  const one = d.crossSlash ? '[\\s\\S]' : '[^/]';
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && d.doubleStar && glob[i + 1] === '*') {
      i++;
      if (glob[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += `${one}*`;
    else if (c === '?') re += one;
    else if (c === '\\' && d.escapes && i + 1 < glob.length) re += glob[++i]!.replace(SPECIAL, '\\$&');
    else if (c === '[') {
      const end = classEnd(glob, i, d);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let cls = glob.slice(i + 1, end);
      const negate = cls.startsWith('!') || cls.startsWith('^');
      if (negate) cls = cls.slice(1);
      if (!d.classEscapes) cls = cls.replace(/\\/g, '\\\\');
      // A leading `]` is a member; a regular expression needs it escaped.
      if (cls.startsWith(']')) cls = `\\${cls}`;
      re += `[${negate ? '^' : ''}${cls}]`;
      i = end;
    } else re += c.replace(SPECIAL, '\\$&');
  }
  return re;
}

/** The `]` closing the class opened at `open`, or -1 when there is none (then `[` is literal). */
function classEnd(glob: string, open: number, d: GlobDialect): number {
  let i = open + 1;
  if (glob[i] === '!' || glob[i] === '^') i++;
  if (glob[i] === ']') i++;
  for (; i < glob.length; i++) {
    if (d.classEscapes && glob[i] === '\\') i++;
    else if (glob[i] === ']') return i;
  }
  return -1;
}

/** The whole-string regular expression for one glob in a dialect. */
export function globRegex(glob: string, d: GlobDialect = {}): RegExp {
  return new RegExp(`^${globSource(glob, d)}$`);
}
