import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A temp directory with a build context and a directory outside it:
 *   <root>/ctx/target/release/coop        file
 *   <root>/ctx/assets/{a.txt,b.txt,c.css,.hidden.txt}
 *   <root>/ctx/assets/sub/d.txt
 *   <root>/ctx/link-inside -> assets/a.txt
 *   <root>/ctx/link-out -> ../outside/secret
 *   <root>/ctx/dirlink-out -> ../outside
 *   <root>/ctx/dangling-in -> assets/missing
 *   <root>/outside/secret
 */
export interface TestContext {
  root: string;
  ctx: string;
  outside: string;
  cleanup(): void;
}

export function makeContext(): TestContext {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'oci-build-config-')));
  const ctx = join(root, 'ctx');
  const outside = join(root, 'outside');
  mkdirSync(join(ctx, 'target', 'release'), { recursive: true });
  mkdirSync(join(ctx, 'assets', 'sub'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(ctx, 'target', 'release', 'coop'), '#!/bin/sh\n');
  for (const f of ['a.txt', 'b.txt', 'c.css', '.hidden.txt', 'sub/d.txt']) writeFileSync(join(ctx, 'assets', f), f);
  writeFileSync(join(outside, 'secret'), 'secret');
  symlinkSync('assets/a.txt', join(ctx, 'link-inside'));
  symlinkSync('../outside/secret', join(ctx, 'link-out'));
  symlinkSync('../outside', join(ctx, 'dirlink-out'));
  symlinkSync('assets/missing', join(ctx, 'dangling-in'));
  return { root, ctx, outside, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Joins lines with \n, so that line N of a test YAML is element N-1. */
export function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}
