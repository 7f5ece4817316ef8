import { describe, it, expect } from 'vitest';
import { IoError, outputError, stepIoError, systemError } from '../src/errors/io.js';

const sys = (code: string, syscall: string, path?: string) =>
  Object.assign(new Error(`${code}: ${syscall}${path ? ` '${path}'` : ''}`), { code, syscall, ...(path ? { path } : {}) });

describe('I/O error messages', () => {
  it('an error already described by its step is not described again by a later one', () => {
    const first = stepIoError(sys('ENOSPC', 'write', '/c/blobs/x'), 'b.yml:7', 'variant app: copy a /a', 'cache', '/c');
    expect(first).toBeInstanceOf(IoError);
    expect(stepIoError(first, 'b.yml:9', 'variant app: run make', 'temporary root file system', '/c')).toBe(first);
    expect(outputError(first, 'oci:/o', '/o', true)).toBe(first);
  });

  it("finds the system error behind a reader's wrapping", () => {
    const inner = sys('ENOSPC', 'write');
    expect(systemError(new Error('base layer 1 of 1: no space', { cause: inner }))).toBe(inner);
    expect(systemError(new Error('plain'))).toBeUndefined();
  });
});
