import { describe, expect, it } from 'vitest';
import { comparePaths } from '../src/layer/tarwriter.js';

/** The order's definition: UTF-8 bytes with '/' as 0x00, compared bytewise. */
const key = (p: string) => {
  const b = Buffer.from(p, 'utf8');
  for (let i = 0; i < b.length; i++) if (b[i] === 0x2f) b[i] = 0;
  return b;
};

describe('comparePaths (tar order)', () => {
  it('agrees with the UTF-8 byte order of segment lists, ASCII, prefixes and non-ASCII mixed', () => {
    const alphabet = ['a', 'b', '/', '-', '.', 'é', '中', '😀', 'Z', '~', '\u007f', '\u0080', '\uffff'];
    const paths: string[] = [];
    for (let i = 0; i < 3000; i++) {
      let s = '/';
      for (let j = 0; j < 1 + ((i * 7) % 6); j++) s += alphabet[(i * 31 + j * 17 + (i >> 3)) % alphabet.length];
      paths.push(s);
    }
    let checked = 0;
    for (let i = 0; i < paths.length; i++) {
      for (let j = 0; j < 40; j++) {
        const a = paths[i]!;
        const b = paths[(i * 13 + j) % paths.length]!;
        expect(Math.sign(comparePaths(a, b)), `${a} vs ${b}`).toBe(Math.sign(Buffer.compare(key(a), key(b))));
        checked++;
      }
    }
    expect(checked).toBe(120_000);
    // The cases that matter: a directory before its children, '/' before every other byte.
    expect(comparePaths('/a/b', '/a-b')).toBeLessThan(0);
    expect(comparePaths('/a', '/a/b')).toBeLessThan(0);
    expect(comparePaths('/a/é', '/a/z')).toBeGreaterThan(0);
  });
});
