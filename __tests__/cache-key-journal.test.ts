import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyJournal, loadJournal } from '../src/cache/key-journal.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function event(contentHash: string) {
  return {
    variant: 'nm',
    platform: 'linux/amd64',
    step: 0,
    keyParts: { kind: 'copy', entries: [{ path: '/app/a.js', contentHash }] },
    diffId: 'sha256:d1',
    start: { base: 'scratch' },
  };
}

async function build(dir: string, contentHash: string): Promise<{ file: string; mtimeMs: number }> {
  const j = new KeyJournal(dir);
  j.add(event(contentHash));
  await j.save();
  const name = readdirSync(join(dir, 'keys')).find((f) => f.endsWith('.json'))!;
  const file = join(dir, 'keys', name);
  return { file, mtimeMs: statSync(file).mtimeMs };
}

describe('KeyJournal.save', () => {
  it('leaves a record that says the same alone, and rewrites it when a key moved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-journal-'));
    dirs.push(dir);
    const first = await build(dir, 'sha256:aaa');
    // Back-date it, so a rewrite would show in the mtime whatever the clock's resolution.
    utimesSync(first.file, new Date(1000), new Date(1000));
    const again = await build(dir, 'sha256:aaa');
    expect(again.mtimeMs).toBe(1000);
    const changed = await build(dir, 'sha256:bbb');
    expect(changed.mtimeMs).not.toBe(1000);
    const rec = await loadJournal(dir, 'nm', 'linux/amd64');
    expect((rec!.steps['0']!.parts.entries as { contentHash: string }[])[0]!.contentHash).toBe('sha256:bbb');
  });

  it('writes the record again when it is gone, whatever the fingerprint says', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-journal-'));
    dirs.push(dir);
    const first = await build(dir, 'sha256:aaa');
    rmSync(first.file);
    await build(dir, 'sha256:aaa');
    expect((await loadJournal(dir, 'nm', 'linux/amd64'))?.steps['0']?.diffId).toBe('sha256:d1');
  });
});
