/**
 * Splits a Dockerfile into instructions, as BuildKit's parser does: parser directives at the
 * top (`# escape=`, `# syntax=`, `# check=`), comment lines dropped (also inside a continued
 * instruction), line continuations with the escape character, empty continuation lines
 * skipped, and heredoc bodies (`<<EOF`, `<<-EOF`, `<<"EOF"`) taken after RUN/COPY/ADD lines.
 * Nothing is expanded here: see words.ts and expand.ts.
 */

export interface Position {
  line: number;
  column: number;
}

export interface Heredoc {
  /** The terminator word, without quotes. */
  name: string;
  /** The body, each line ending in "\n" (the terminator line left out). */
  content: string;
  /** `<<-`: leading tabs were removed from the body and the terminator. */
  chomp: boolean;
  /** The word was quoted: no variable expansion in the body. */
  quoted: boolean;
}

export interface RawInstruction {
  /** Upper-cased keyword (RUN, COPY, ...). */
  keyword: string;
  /** Everything after the keyword, continuations joined, leading blanks removed. */
  rest: string;
  /** Where the keyword starts. */
  pos: Position;
  heredocs: Heredoc[];
}

export interface Directives {
  escape: '\\' | '`';
  syntax?: string;
  check?: string;
}

export interface LexResult {
  directives: Directives;
  instructions: RawInstruction[];
  /** Problems with a position (unterminated heredoc, bad escape directive...). */
  problems: { pos: Position; message: string; hint?: string }[];
}

const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/;
const HEREDOC_INSTRUCTIONS = new Set(['RUN', 'COPY', 'ADD']);
/** `<<` then optional `-`, then a word, optionally in single or double quotes. */
const HEREDOC = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;

function readDirectives(lines: string[], problems: LexResult['problems']): { directives: Directives; next: number } {
  const directives: Directives = { escape: '\\' };
  const seen = new Set<string>();
  let i = 0;
  for (; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!.trim());
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (seen.has(key)) break; // a repeated directive is an ordinary comment
    seen.add(key);
    const value = m[2]!;
    if (key === 'escape') {
      if (value !== '\\' && value !== '`')
        problems.push({
          pos: { line: i + 1, column: 1 },
          message: `invalid escape directive "${value}"`,
          hint: 'use # escape=\\ or # escape=`',
        });
      else directives.escape = value;
    } else if (key === 'syntax') directives.syntax = value;
    else if (key === 'check') directives.check = value;
    // Unknown directives are comments (BuildKit ignores them too).
  }
  return { directives, next: i };
}

/** The heredocs a line starts (only outside quotes would be exact; BuildKit also scans the raw line). */
export function heredocNames(line: string): { name: string; chomp: boolean; quoted: boolean }[] {
  const out: { name: string; chomp: boolean; quoted: boolean }[] = [];
  for (const m of line.matchAll(HEREDOC)) out.push({ chomp: m[1] === '-', quoted: m[2] !== '', name: m[3]! });
  return out;
}

/** True when the line (after trailing blanks) ends in an unescaped escape character. */
function continues(line: string, escape: string): boolean {
  const t = line.replace(/[ \t\r]+$/, '');
  if (!t.endsWith(escape)) return false;
  let n = 0;
  for (let j = t.length - 1; j >= 0 && t[j] === escape; j--) n++;
  return n % 2 === 1;
}

function isComment(line: string): boolean {
  return /^\s*#/.test(line);
}

export function lex(text: string): LexResult {
  const problems: LexResult['problems'] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const { directives, next } = readDirectives(lines, problems);
  const esc = directives.escape;
  const instructions: RawInstruction[] = [];
  let i = next;
  while (i < lines.length) {
    const first = lines[i]!;
    if (first.trim() === '' || isComment(first)) {
      i++;
      continue;
    }
    const column = first.length - first.trimStart().length + 1;
    const pos = { line: i + 1, column };
    let joined = '';
    let line = first.trimStart();
    // Continuations: the escape character and the newline go; comment and empty lines in between are dropped.
    while (continues(line, esc)) {
      const t = line.replace(/[ \t\r]+$/, '');
      joined += t.slice(0, -1);
      i++;
      while (i < lines.length && (isComment(lines[i]!) || lines[i]!.trim() === '')) i++;
      if (i >= lines.length) {
        line = '';
        break;
      }
      line = lines[i]!;
    }
    joined += line.replace(/\r$/, '');
    i++;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(joined.trimStart());
    if (!m) continue;
    const keyword = m[1]!.toUpperCase();
    const rest = m[2]!.replace(/\s+$/, '');
    const heredocs: Heredoc[] = [];
    if (HEREDOC_INSTRUCTIONS.has(keyword)) {
      for (const h of heredocNames(rest)) {
        const body: string[] = [];
        let closed = false;
        for (; i < lines.length; i++) {
          const raw = lines[i]!.replace(/\r$/, '');
          const l = h.chomp ? raw.replace(/^\t+/, '') : raw;
          if (l === h.name) {
            closed = true;
            i++;
            break;
          }
          body.push(`${l}\n`);
        }
        if (!closed)
          problems.push({ pos, message: `heredoc <<${h.name} is not terminated`, hint: `end it with a line that is exactly ${h.name}` });
        heredocs.push({ ...h, content: body.join('') });
      }
    }
    instructions.push({ keyword, rest, pos, heredocs });
  }
  return { directives, instructions, problems };
}
