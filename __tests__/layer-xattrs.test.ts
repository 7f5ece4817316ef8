import { describe, expect, it } from 'vitest';
import { encodeEntryHeader, paxRecord } from '../src/layer/tarwriter.js';
import { splitPaxXattrs, TarFormatError } from '../src/layer/tarstream.js';
import type { LayerEntry } from '../src/layer/types.js';

/** Issue 12: pax SCHILY.xattr records, written and read by length. */

const MTIME = new Date(0);
const file: LayerEntry = {
  path: '/usr/bin/ping',
  type: 'file',
  mode: 0o755,
  uid: 0,
  gid: 0,
  size: 4,
  open: () => {
    throw new Error('unused');
  },
};

describe('pax records for extended attributes', () => {
  it('a record counts its own length, including the digits', () => {
    expect(paxRecord('k', Buffer.from('v')).toString()).toBe('6 k=v\n');
    const r = paxRecord('SCHILY.xattr.user.x', Buffer.alloc(80, 0x61));
    expect(Number(r.toString('latin1').split(' ')[0])).toBe(r.length);
  });

  it('an entry without attributes (or with none) is encoded exactly as before: one ustar block', () => {
    const plain = encodeEntryHeader(file, MTIME);
    expect(plain.length).toBe(512);
    expect(encodeEntryHeader({ ...file, xattrs: {} }, MTIME).equals(plain)).toBe(true);
  });

  it('attributes add a pax header whose records read back byte for byte, other records untouched', () => {
    const value = Buffer.from([0x0a, 0x00, 0xff, 0x3d]);
    const block = encodeEntryHeader({ ...file, xattrs: { 'user.b': Buffer.from('2'), 'security.capability': value } }, MTIME);
    expect(block.length).toBe(3 * 512);
    const size = parseInt(block.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim(), 8);
    const body = block.subarray(512, 512 + size);
    expect(body.toString('latin1')).toMatch(/^\d+ SCHILY\.xattr\.security\.capability=[\s\S]*\d+ SCHILY\.xattr\.user\.b=2\n$/);
    const split = splitPaxXattrs(Buffer.concat([paxRecord('path', Buffer.from('long/name')), body]));
    expect(split.rest).toBe('18 path=long/name\n');
    expect(split.xattrs).toEqual({ 'security.capability': value, 'user.b': Buffer.from('2') });
  });

  it('a record whose length does not fit is a format error', () => {
    expect(() => splitPaxXattrs(Buffer.from('99 SCHILY.xattr.user.a=1\n'))).toThrow(TarFormatError);
    expect(() => splitPaxXattrs(Buffer.from('x SCHILY.xattr.user.a=1\n'))).toThrow(TarFormatError);
  });
});
