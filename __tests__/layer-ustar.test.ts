import { describe, expect, it } from 'vitest';
import { Header } from 'tar';
import { writeUstarHeader, type UstarFields } from '../src/layer/ustar.js';

const TAR_TYPE = { file: 'File', dir: 'Directory', symlink: 'SymbolicLink', hardlink: 'Link' } as const;

/** The header node-tar encodes for the same fields (what the layer writer used for every entry). */
function nodeTar(f: UstarFields): { block: Buffer; needPax: boolean } {
  const h = new Header({
    path: f.path,
    mode: f.mode,
    uid: f.uid,
    gid: f.gid,
    size: f.size,
    mtime: new Date(f.mtimeSec * 1000),
    type: TAR_TYPE[f.type],
    uname: '',
    gname: '',
    devmaj: 0,
    devmin: 0,
    ...(f.linkpath !== undefined ? { linkpath: f.linkpath } : {}),
  });
  const needPax = h.encode();
  return { block: h.block!, needPax };
}

/** A deterministic pseudo-random sequence (the cases are the same on every run). */
function rng(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % n;
  };
}

describe('writeUstarHeader', () => {
  it('writes the bytes node-tar writes, for every entry it accepts', () => {
    const r = rng(7);
    const chars = 'abcdefghijklmnopqrstuvwxyz0123456789._-@/ ';
    const name = (len: number) => Array.from({ length: len }, () => chars[r(chars.length)]).join('');
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const type = (['file', 'dir', 'symlink', 'hardlink'] as const)[r(4)]!;
      const f: UstarFields = {
        path: name(1 + r(110)) + (type === 'dir' ? '/' : ''),
        type,
        mode: [0o644, 0o755, 0o4755, 0o1777, 0o7777, 0][r(6)]!,
        uid: [0, 1000, 65534, 0o7777777, 0o10000000][r(5)]!,
        gid: [0, 1000, 2 ** 21 - 1, 2 ** 21][r(4)]!,
        size: type === 'file' ? [0, 1, 511, 512, 4096, 0o77777777777, 2 ** 33][r(7)]! : 0,
        mtimeSec: [0, 1, 1700000000, 0o77777777777][r(4)]!,
        ...(type === 'symlink' || type === 'hardlink' ? { linkpath: name(1 + r(110)) } : {}),
      };
      const ours = Buffer.alloc(512);
      const ref = nodeTar(f);
      if (writeUstarHeader(ours, 0, f)) {
        accepted++;
        expect(ref.needPax, JSON.stringify(f)).toBe(false);
        expect(ours.toString('hex'), JSON.stringify(f)).toBe(ref.block.toString('hex'));
      } else {
        // Refused: a long or split name, or a number too big for its field.
        const long = Buffer.byteLength(f.path) >= 100 || (f.linkpath?.length ?? 0) >= 100;
        expect(long || ref.needPax, JSON.stringify(f)).toBe(true);
      }
    }
    expect(accepted).toBeGreaterThan(500);
  });

  it('refuses non-ASCII names (node-tar writes them with a pax record)', () => {
    const f: UstarFields = { path: 'caf\u00e9', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtimeSec: 0 };
    expect(writeUstarHeader(Buffer.alloc(512), 0, f)).toBe(false);
  });

  it('writes at an offset inside a larger buffer', () => {
    const f: UstarFields = { path: 'app/x.js', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 9, mtimeSec: 0 };
    const big = Buffer.alloc(2048);
    expect(writeUstarHeader(big, 1024, f)).toBe(true);
    expect(big.subarray(1024, 1536).equals(nodeTar(f).block)).toBe(true);
    expect(big.subarray(0, 1024).every((b) => b === 0)).toBe(true);
  });
});
