import { describe, it, expect, afterEach } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync, readdirSync, chmodSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filterContext, ignoreFileFor, isIgnored, parseDockerignore } from '../src/dockerfile/dockerignore.js';

/** .dockerignore with Docker's rules, and the filtered context the build reads. */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('.dockerignore patterns', () => {
  const p = parseDockerignore('# comment\n\n/build\n./tmp/\n**/*.log\n!keep/**/*.log\nnode_modules\n*/cache\ndocs/[a-c]*.md\n');
  it.each([
    ['build', true],
    ['build/x/y', true],
    ['tmp/a', true],
    ['a.log', true],
    ['deep/er/b.log', true],
    ['keep/a.log', false],
    ['keep/x/y/a.log', false],
    ['node_modules/m/index.js', true],
    ['src/node_modules', false],
    ['pkg/cache/f', true],
    ['pkg/sub/cache', false],
    ['docs/a1.md', true],
    ['docs/d1.md', false],
    ['src/main.ts', false],
  ])('%s ignored: %s', (path, want) => {
    expect(isIgnored(path, p)).toBe(want);
  });
  it('the last matching pattern wins', () => {
    expect(isIgnored('x.txt', parseDockerignore('*.txt\n!x.txt\n'))).toBe(false);
    expect(isIgnored('x.txt', parseDockerignore('!x.txt\n*.txt\n'))).toBe(true);
  });
});

describe('filtered context', () => {
  it('keeps only what the patterns let through, with modes; <Dockerfile>.dockerignore wins over .dockerignore', async () => {
    const ctx = mkdtempSync(join(tmpdir(), 'oci-build-ign-'));
    dirs.push(ctx);
    for (const d of ['secret', 'logs/deep', 'app']) mkdirSync(join(ctx, d), { recursive: true });
    for (const f of ['secret/key', 'logs/a.log', 'logs/deep/keep.log', 'app/main', 'top']) writeFileSync(join(ctx, f), f);
    chmodSync(join(ctx, 'app/main'), 0o4755);
    writeFileSync(join(ctx, '.dockerignore'), 'top\n');
    writeFileSync(join(ctx, 'Dockerfile.dockerignore'), 'secret\nlogs\n!logs/deep/keep.log\n');
    const file = ignoreFileFor(join(ctx, 'Dockerfile'), ctx)!;
    expect(file).toBe(join(ctx, 'Dockerfile.dockerignore'));
    const f = await filterContext(ctx, file);
    try {
      expect(readdirSync(f.dir).sort()).toEqual(['.dockerignore', 'Dockerfile.dockerignore', 'app', 'logs', 'top']);
      expect(existsSync(join(f.dir, 'logs/a.log'))).toBe(false);
      expect(existsSync(join(f.dir, 'logs/deep/keep.log'))).toBe(true);
      expect(statSync(join(f.dir, 'app/main')).mode & 0o7777).toBe(0o4755);
    } finally {
      await f.dispose();
    }
    expect(existsSync(f.dir)).toBe(false);
  });
});
