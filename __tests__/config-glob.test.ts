// src/config/glob.ts: the one glob-to-regex for the four dialects (copy: from: in an image,
// Dockerfile COPY sources, .dockerignore, ${v#pattern}), with the cases each used to handle itself.
import { describe, expect, it } from 'vitest';
import { globRegex, globSource, type GlobDialect } from '../src/config/glob.js';

const COPY_FROM: GlobDialect = {};
const DOCKERFILE_COPY: GlobDialect = { escapes: true };
const DOCKERIGNORE: GlobDialect = { escapes: true, doubleStar: true, classEscapes: true };
const EXPANSION: GlobDialect = { crossSlash: true };

/** [pattern, matches, does not match] */
type Case = [string, string[], string[]];

function check(d: GlobDialect, cases: Case[]) {
  for (const [glob, yes, no] of cases) {
    const re = globRegex(glob, d);
    for (const s of yes) expect(re.test(s), `${glob} should match ${s}`).toBe(true);
    for (const s of no) expect(re.test(s), `${glob} should not match ${s}`).toBe(false);
  }
}

/** What every dialect agrees on. */
const COMMON: Case[] = [
  ['*.txt', ['a.txt', '.txt', 'x.y.txt'], ['a.txt.bak', 'a_txt']],
  ['a?c', ['abc', 'a.c'], ['ac', 'abbc']],
  ['[!a]x', ['bx', ']x'], ['ax', 'x']],
  ['[^a]x', ['bx'], ['ax']],
  ['[a-c]', ['a', 'b', 'c'], ['d', '-']],
  // A `]` right after `[` (or `[!`) is a member, as in Go and POSIX shells.
  ['[]a]', [']', 'a'], ['[]a]', 'b']],
  ['[!]a]', ['b'], [']', 'a']],
  // No closing `]`: the `[` is literal.
  ['[ab', ['[ab'], ['a', 'b']],
  // Regex characters are literal.
  ['a+b.(c)|{d}$^', ['a+b.(c)|{d}$^'], ['aab.(c)|{d}$^', 'a+bx(c)|{d}$^']],
];

describe('globRegex', () => {
  it('copy: from: in an image (one segment, backslash literal)', () => {
    check(COPY_FROM, [...COMMON, ['*', ['a', ''], ['a/b']], ['a\\*', ['a\\', 'a\\bc'], ['a*']], ['[\\]', ['\\'], ['x']]]);
  });

  it("Dockerfile COPY sources (Go's filepath.Match per segment: backslash escapes outside classes)", () => {
    check(DOCKERFILE_COPY, [
      ...COMMON,
      ['*', ['a'], ['a/b']],
      ['a\\*', ['a*'], ['a\\', 'ab']],
      ['\\[x]', ['[x]'], ['x']],
      ['[\\x]', ['\\', 'x'], ['y']],
    ]);
  });

  it('.dockerignore (`**` spans segments, backslash escapes in classes too)', () => {
    check(DOCKERIGNORE, [
      ...COMMON,
      ['*', ['a'], ['a/b']],
      ['**/*.go', ['a.go', 'x/a.go', 'x/y/a.go'], ['a.go/x', 'a.c']],
      ['a/**', ['a/b', 'a/b/c'], ['b/a/c']],
      ['a/**/b', ['a/b', 'a/x/b', 'a/x/y/b'], ['a/xb']],
      ['[\\]]', [']'], ['\\', '\\]']],
      ['a\\?', ['a?'], ['ab']],
    ]);
  });

  it('${v#pattern} expansion (`*` and `?` match `/` too; a source, not anchored)', () => {
    check(EXPANSION, [...COMMON, ['*/', ['a/b/', '/'], ['a/b']], ['a?c', ['a/c'], []], ['a\\*', ['a\\b'], ['a*']]]);
    expect(new RegExp(globSource('b*', EXPANSION)).test('abc')).toBe(true);
  });
});
