/**
 * Raw instructions (lexer.ts) into typed ones: flags taken off, JSON (exec) form told apart from
 * the shell form, ENV/LABEL/ARG split into name/value words. Values stay unexpanded: which
 * variables are visible depends on the stage (convert.ts).
 */
import type { Heredoc, Position, RawInstruction } from './lexer.js';
import { splitWords } from './expand.js';

export interface Flag {
  name: string;
  value: string | undefined;
}

/** A command in exec form (a JSON list) or shell form (the text as written). */
export type CommandForm = { exec: string[] } | { shell: string };

export interface Pair {
  key: string;
  value: string;
}

export type Instruction = { pos: Position; flags: Flag[]; text: string } & (
  | { keyword: 'FROM'; image: string; stage?: string }
  | { keyword: 'ARG'; args: { name: string; value?: string }[] }
  | { keyword: 'ENV' | 'LABEL'; pairs: Pair[] }
  | { keyword: 'MAINTAINER' | 'WORKDIR' | 'USER' | 'STOPSIGNAL'; value: string }
  | { keyword: 'RUN' | 'CMD' | 'ENTRYPOINT'; command: CommandForm; heredocs: Heredoc[] }
  | { keyword: 'SHELL'; exec: string[] }
  | { keyword: 'COPY' | 'ADD'; sources: string[]; dest: string; heredocs: Heredoc[] }
  | { keyword: 'EXPOSE'; words: string[] }
  | { keyword: 'VOLUME'; paths: string[]; json: boolean }
  | { keyword: 'HEALTHCHECK' | 'ONBUILD'; rest: string }
);

export class InstructionError extends Error {
  constructor(
    readonly pos: Position,
    readonly instruction: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const FLAGS: Record<string, string[]> = {
  FROM: ['platform'],
  RUN: ['mount', 'network', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link', 'parents', 'exclude'],
  ADD: ['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};

/** Takes the leading `--name[=value]` words off; the remaining text keeps its spacing. */
export function takeFlags(rest: string, escape: string): { flags: Flag[]; remaining: string } {
  const flags: Flag[] = [];
  let s = rest;
  for (;;) {
    const t = s.replace(/^\s+/, '');
    if (!t.startsWith('--')) return { flags, remaining: t };
    const word = splitWords(t, escape)[0]!;
    const eq = word.indexOf('=');
    flags.push(eq < 0 ? { name: word.slice(2), value: undefined } : { name: word.slice(2, eq), value: word.slice(eq + 1) });
    s = t.slice(word.length);
  }
}

export function jsonList(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
}

function pairs(keyword: string, text: string, escape: string, pos: Position): Pair[] {
  const words = splitWords(text, escape);
  if (words.length === 0) throw new InstructionError(pos, keyword, `${keyword} needs at least one argument`);
  if (!words[0]!.includes('=')) {
    // The legacy form `ENV name value with spaces`: one pair, the rest of the line is the value.
    const value = text.replace(/^\s*\S+\s*/, '');
    if (keyword === 'ENV' && value === '') throw new InstructionError(pos, keyword, 'ENV must have two arguments', 'write ENV NAME=value');
    return [{ key: words[0]!, value }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0)
      throw new InstructionError(
        pos,
        keyword,
        `${keyword} ${eq === 0 ? 'names can not be blank' : `syntax error: can't find = in "${w}"`}`,
        'write NAME=value (quote values with spaces)',
      );
    return { key: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

export function parseInstruction(raw: RawInstruction, escape: string): Instruction {
  const { keyword, pos } = raw;
  const allowed = FLAGS[keyword];
  const { flags, remaining } = allowed ? takeFlags(raw.rest, escape) : { flags: [], remaining: raw.rest };
  for (const f of flags) {
    if (!allowed!.includes(f.name))
      throw new InstructionError(pos, keyword, `unknown flag --${f.name}`, `${keyword} takes ${allowed!.map((n) => `--${n}`).join(', ')}`);
  }
  const text = remaining;
  const base = { pos, flags, text };
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new InstructionError(pos, keyword, `${keyword} ${what}`);
  };
  switch (keyword) {
    case 'FROM': {
      const w = splitWords(text, escape);
      need(w.length === 1 || (w.length === 3 && w[1]!.toLowerCase() === 'as'), 'takes an image and optionally AS name');
      return { ...base, keyword, image: w[0]!, ...(w[2] ? { stage: w[2] } : {}) };
    }
    case 'ARG': {
      const w = splitWords(text, escape);
      need(w.length > 0, 'needs a name');
      return {
        ...base,
        keyword,
        args: w.map((x) => {
          const eq = x.indexOf('=');
          return eq < 0 ? { name: x } : { name: x.slice(0, eq), value: x.slice(eq + 1) };
        }),
      };
    }
    case 'ENV':
    case 'LABEL':
      return { ...base, keyword, pairs: pairs(keyword, text, escape, pos) };
    case 'MAINTAINER':
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
      need(text !== '', 'needs an argument');
      return { ...base, keyword, value: text };
    case 'RUN':
    case 'CMD':
    case 'ENTRYPOINT': {
      const exec = jsonList(text);
      if (keyword === 'RUN') need(text !== '', 'needs a command');
      return { ...base, keyword, command: exec ? { exec } : { shell: text }, heredocs: raw.heredocs };
    }
    case 'SHELL': {
      const exec = jsonList(text);
      need(exec !== undefined && exec.length > 0, 'must be a JSON list, e.g. SHELL ["/bin/bash", "-c"]');
      return { ...base, keyword, exec: exec! };
    }
    case 'COPY':
    case 'ADD': {
      const list = jsonList(text) ?? splitWords(text, escape);
      need(list.length >= 2, 'needs at least one source and a destination');
      return { ...base, keyword, sources: list.slice(0, -1), dest: list[list.length - 1]!, heredocs: raw.heredocs };
    }
    case 'EXPOSE':
      return { ...base, keyword, words: splitWords(text, escape) };
    case 'VOLUME': {
      const exec = jsonList(text);
      return { ...base, keyword, paths: exec ?? splitWords(text, escape), json: exec !== undefined };
    }
    case 'HEALTHCHECK':
    case 'ONBUILD':
      return { ...base, keyword, rest: text };
    default:
      throw new InstructionError(
        pos,
        keyword,
        `unknown instruction ${keyword}`,
        'check the spelling (FROM, RUN, COPY, ADD, ENV, ARG, ...)',
      );
  }
}
