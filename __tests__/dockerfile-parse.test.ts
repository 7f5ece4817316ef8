import { describe, it, expect } from 'vitest';
import { lex } from '../src/dockerfile/lexer.js';
import { expandHeredoc, expandWord, splitWords } from '../src/dockerfile/expand.js';
import { parseInstruction } from '../src/dockerfile/instructions.js';

/** The Dockerfile lexer, BuildKit's word expansion rules and instruction forms. */

describe('lexer', () => {
  it('drops comments, joins continuations, skips empty and comment lines inside them, keeps positions', () => {
    const r = lex(
      [
        '# syntax=docker/dockerfile:1',
        '# a comment',
        'FROM busybox AS Build',
        '',
        '  RUN echo a \\',
        '# inside',
        '',
        '    && echo b',
        'env A=1',
      ].join('\n'),
    );
    expect(r.directives).toEqual({ escape: '\\', syntax: 'docker/dockerfile:1' });
    expect(r.instructions.map((i) => [i.keyword, i.rest, i.pos.line, i.pos.column])).toEqual([
      ['FROM', 'busybox AS Build', 3, 1],
      ['RUN', 'echo a     && echo b', 5, 3],
      ['ENV', 'A=1', 9, 1],
    ]);
  });

  it('honours # escape=` (Windows style) and only at the top', () => {
    const r = lex('# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo');
    expect(r.directives.escape).toBe('`');
    expect(r.instructions[1]!.rest).toBe('dir c:\\   && echo');
    const late = lex('FROM x\n# escape=`\nRUN a `\nRUN b');
    expect(late.directives.escape).toBe('\\');
    expect(late.instructions.map((i) => i.keyword)).toEqual(['FROM', 'RUN', 'RUN']);
  });

  it('reads heredocs after RUN/COPY: several, <<- tab stripping, quoted names', () => {
    const r = lex('FROM x\nRUN <<EOF\necho $A\nEOF\nCOPY <<-"A" <<B /dst/\n\tone\n\tA\ntwo\nB\nRUN true');
    const [, run, copy, last] = r.instructions;
    expect(run!.heredocs).toEqual([{ name: 'EOF', content: 'echo $A\n', chomp: false, quoted: false }]);
    expect(copy!.heredocs).toEqual([
      { name: 'A', content: 'one\n', chomp: true, quoted: true },
      { name: 'B', content: 'two\n', chomp: false, quoted: false },
    ]);
    expect(last!.pos.line).toBe(10);
    expect(r.problems).toEqual([]);
    expect(lex('FROM x\nRUN <<EOF\nnever ends').problems[0]).toMatchObject({
      pos: { line: 2, column: 1 },
      message: expect.stringContaining('<<EOF'),
    });
  });
});

describe('expansion (BuildKit rules)', () => {
  const env: Record<string, string> = { A: 'a', E: '', P: '/usr/local/bin/tool.tar.gz', S: 'x y' };
  const look = (n: string) => env[n];
  const cases: [string, string][] = [
    ['$A', 'a'],
    ['${A}', 'a'],
    ['$A$A', 'aa'],
    ['${A}b', 'ab'],
    ['$UNSET.', '.'],
    ['$', '$'],
    ['a$-b', 'a$-b'],
    ['${E:-d}', 'd'],
    ['${E-d}', ''],
    ['${U-d}', 'd'],
    ['${A:-d}', 'a'],
    ['${A:+set}', 'set'],
    ['${E:+set}', ''],
    ['${E+set}', 'set'],
    ['${U+set}', ''],
    ['${U:-$A-x}', 'a-x'],
    ['${U:-"q w"}', 'q w'],
    ['${P#*/}', 'usr/local/bin/tool.tar.gz'],
    ['${P##*/}', 'tool.tar.gz'],
    ['${P%.*}', '/usr/local/bin/tool.tar'],
    ['${P%%.*}', '/usr/local/bin/tool'],
    ['${P/local/LOCAL}', '/usr/LOCAL/bin/tool.tar.gz'],
    ['${P//o/0}', '/usr/l0cal/bin/t00l.tar.gz'],
    ["'$A'", '$A'],
    ['"$A"', 'a'],
    ['"\\$A"', '$A'],
    ['\\$A', '$A'],
    ['"a\\b"', 'a\\b'],
    ['a\\ b', 'a b'],
    ['"${S}"', 'x y'],
  ];
  it.each(cases)('%s -> %s', (word, want) => {
    expect(expandWord(word, look)).toBe(want);
  });

  it('with ` as the escape character, \\ is literal', () => {
    expect(expandWord('c:\\dir`$A', look, '`')).toBe('c:\\dir$A');
  });

  it('fails on ${V:?} when unset, on bad substitutions and open quotes', () => {
    expect(() => expandWord('${U:?needs U}', look)).toThrow(/U: needs U/);
    expect(() => expandWord('${A:x}', look)).toThrow(/unsupported modifier/);
    expect(() => expandWord('${}', look)).toThrow(/bad substitution/);
    expect(() => expandWord('"open', look)).toThrow(/double-quote/);
    expect(() => expandWord('${A', look)).toThrow(/\}/);
  });

  it('heredoc bodies expand variables only; quotes and other escapes stay', () => {
    expect(expandHeredoc('say "$A" \'${A}\' \\$A \\n\n', look)).toBe('say "a" \'a\' $A \\n\n');
  });

  it('splits words on unquoted blanks, keeping quotes for expansion', () => {
    expect(splitWords('A="x y" B=z\\ w  C')).toEqual(['A="x y"', 'B=z\\ w', 'C']);
  });
});

describe('instructions', () => {
  const one = (text: string) => {
    const r = lex(`FROM x\n${text}`);
    return parseInstruction(r.instructions[1]!, r.directives.escape);
  };
  it('tells exec form from shell form, takes flags off', () => {
    expect(one('RUN ["echo", "a b"]')).toMatchObject({ command: { exec: ['echo', 'a b'] } });
    expect(one('RUN [not json')).toMatchObject({ command: { shell: '[not json' } });
    expect(one('RUN --network=none  echo  hi')).toMatchObject({
      flags: [{ name: 'network', value: 'none' }],
      command: { shell: 'echo  hi' },
    });
    expect(one('COPY --chown=1:2 --link a b /d/')).toMatchObject({
      flags: [{ name: 'chown', value: '1:2' }, { name: 'link' }],
      sources: ['a', 'b'],
      dest: '/d/',
    });
    expect(one('COPY ["a b", "/d/"]')).toMatchObject({ sources: ['a b'], dest: '/d/' });
  });
  it('ENV and LABEL: name=value pairs and the legacy one-pair form', () => {
    expect(one('ENV A=1 B="two words"')).toMatchObject({
      pairs: [
        { key: 'A', value: '1' },
        { key: 'B', value: '"two words"' },
      ],
    });
    expect(one('ENV A two words')).toMatchObject({ pairs: [{ key: 'A', value: 'two words' }] });
  });
  it('reports unknown flags, instructions and bad forms with the position', () => {
    expect(() => one('COPY --frm=a b c')).toThrow(/unknown flag --frm/);
    expect(() => one('FORM x')).toThrow(/unknown instruction FORM/);
    expect(() => one('SHELL /bin/bash')).toThrow(/JSON list/);
    let err: unknown;
    try {
      one('  COPY onlyone');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ pos: { line: 2, column: 3 }, instruction: 'COPY' });
  });
});
