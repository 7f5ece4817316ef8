import { describe, it, expect } from 'vitest';
import { randomBytes } from 'node:crypto';
import { MarkerSearch, Region } from '../src/attest/sbom/regions.js';
import { GO_BUILDINFO_MAGIC } from '../src/attest/sbom/gobuild.js';

/** Streams `file` in chunks of `size` through a search and a region, as executables.ts does. */
function stream(file: Buffer, size: number, region: Region): number[] {
  const search = new MarkerSearch(GO_BUILDINFO_MAGIC);
  for (let at = 0; at < file.length; at += size) {
    const chunk = file.subarray(at, at + size);
    search.feed(chunk, at);
    region.feed(chunk, at);
  }
  return search.found;
}

describe('reading regions of a streamed file', () => {
  const file = randomBytes(10_000);
  GO_BUILDINFO_MAGIC.copy(file, 100);
  GO_BUILDINFO_MAGIC.copy(file, 4090); // across the 4096 boundary of the first chunking
  GO_BUILDINFO_MAGIC.copy(file, 9000);

  it.each([1 << 12, 777, 100_000])('finds every marker and copies the region exactly, in chunks of %i bytes', (size) => {
    const region = new Region(4000, 3000);
    expect(stream(file, size, region)).toEqual([100, 4090, 9000]);
    expect(region.done).toBe(true);
    expect(region.buf.equals(file.subarray(4000, 7000))).toBe(true);
  });

  it('a region past the end of the stream is not done', () => {
    const region = new Region(9500, 1000);
    stream(file, 4096, region);
    expect(region.done).toBe(false);
  });
});
