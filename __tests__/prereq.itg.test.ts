import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, cli, ROOT } from './helpers/cli.js';
import { run } from './helpers/exec.js';

/** Issue 15: problems known at the start stop the build before any work, each with its fix. */

let ctx: string;
/** The error line (the log has a validate: line before it). */
const lastLine = (s: string) => s.trimEnd().split('\n').at(-1);

const buildFile = `version: 1
variants:
  app:
    base: scratch
    steps:
      - copy: data/
        to: /data/
`;

beforeAll(() => {
  ctx = mkdtempSync(join(tmpdir(), 'oci-build-prereq-'));
  chmodSync(ctx, 0o755);
  mkdirSync(join(ctx, 'data/sub'), { recursive: true });
  writeFileSync(join(ctx, 'data/a.txt'), 'a\n');
  writeFileSync(join(ctx, 'data/sub/big.bin'), randomBytes(3 << 20));
  writeFileSync(join(ctx, 'oci-build.yml'), buildFile);
});

afterAll(() => {
  if (ctx) rmSync(ctx, { recursive: true, force: true });
});

describe('prerequisite checks', () => {
  it('names the first source file this user cannot read, before building', async () => {
    writeFileSync(join(ctx, 'data/sub/secret.key'), 'k\n');
    chmodSync(join(ctx, 'data/sub/secret.key'), 0o600);
    const cache = join(ctx, 'nobody-cache');
    mkdirSync(cache);
    chownSync(cache, 65534, 65534);
    try {
      // As an unprivileged user: root reads everything.
      const r = await run(
        'setpriv',
        [
          '--reuid=65534',
          '--regid=65534',
          '--clear-groups',
          process.execPath,
          CLI,
          'build',
          '--config',
          join(ctx, 'oci-build.yml'),
          '--cache-dir',
          cache,
        ],
        { cwd: ROOT, allowFail: true, env: { PATH: process.env.PATH, HOME: cache } },
      );
      expect(r.code).toBe(2);
      // The build file line, the step, the path and the fix (the same message as a read failing later).
      expect(lastLine(r.stderr)).toMatch(/^oci-build: .*oci-build\.yml:\d+: variant app: copy /);
      expect(lastLine(r.stderr)).toContain(`cannot read ${join(ctx, 'data/sub/secret.key')}: permission denied (EACCES)`);
      expect(lastLine(r.stderr)).toContain('chmod a+r');
      expect(r.stdout).toBe('');
    } finally {
      rmSync(join(ctx, 'data/sub/secret.key'));
    }
  });

  it('stops when the cache directory has too little free disk for the new layers', async () => {
    const small = join(ctx, 'small');
    mkdirSync(small);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    try {
      const r = await cli(['build', '--config', join(ctx, 'oci-build.yml'), '--cache-dir', join(small, 'cache')]);
      expect(r.code).toBe(1);
      expect(lastLine(r.stderr)).toMatch(
        new RegExp(
          `^oci-build: not enough free disk for the layer cache \\(base layers and new layers\\): ${small} has 1\\.0 MiB free, the build needs about 3\\.0 MiB \\(fix: `,
        ),
      );
      // Nothing was written before the check.
      expect((await run('find', [small, '-mindepth', '1'])).stdout).toBe('');
    } finally {
      await run('umount', [small]);
    }
  });

  it('builds when both are fine', async () => {
    const r = await cli([
      'build',
      '--config',
      join(ctx, 'oci-build.yml'),
      '--cache-dir',
      join(ctx, 'cache'),
      '--output',
      `oci:${join(ctx, 'layout')}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).app.digest).toMatch(/^sha256:/);
  });
});
