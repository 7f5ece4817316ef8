import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from 'tar';
import { archiveEntries, archiveKind } from '../src/build/archive.js';

/** ADD of a local archive: entries under the destination, hostile names refused. */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const fail = (m: string): never => {
  throw new Error(m);
};

function workDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'oci-build-arch-'));
  dirs.push(d);
  mkdirSync(join(d, 'in/sub'), { recursive: true });
  writeFileSync(join(d, 'in/sub/f'), 'content');
  writeFileSync(join(d, 'outside'), 'x');
  return d;
}

describe('archive entries', () => {
  it("puts entries under the destination with the archive's owners, or --chown's", async () => {
    const d = workDir();
    await create({ file: join(d, 'a.tgz'), gzip: true, cwd: join(d, 'in'), portable: false }, ['sub']);
    expect(await archiveKind(join(d, 'a.tgz'))).toBe('gzip');
    const entries = await archiveEntries(join(d, 'a.tgz'), 'gzip', '/opt/x', undefined, fail);
    expect(entries.map((e) => [e.path, e.type, e.size ?? null])).toEqual([
      ['/opt/x/sub', 'dir', null],
      ['/opt/x/sub/f', 'file', 7],
    ]);
    const chowned = await archiveEntries(join(d, 'a.tgz'), 'gzip', '/opt/x', { uid: 7, gid: 8 }, fail);
    expect(chowned.every((e) => e.uid === 7 && e.gid === 8)).toBe(true);
  });

  it('refuses an entry that leads outside the destination; a file that is no archive is not one', async () => {
    const d = workDir();
    await create({ file: join(d, 'evil.tar'), cwd: join(d, 'in'), preservePaths: true }, ['../outside']);
    await expect(archiveEntries(join(d, 'evil.tar'), 'tar', '/opt/x', undefined, fail)).rejects.toThrow(
      /entry "\.\.\/outside" leads outside the destination/,
    );
    expect(await archiveKind(join(d, 'outside'))).toBeUndefined();
  });
});
