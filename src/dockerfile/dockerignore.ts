/**
 * `.dockerignore` with Docker's rules: one pattern a line, `#` comments, `!` re-includes, `**`
 * for any number of directories, a leading `/` or `./` ignored; a pattern also excludes what is
 * under a directory it matches; the last matching pattern decides. The context is applied
 * before anything reads it: the build sees a copy (hard links where possible) of only the files
 * that are kept.
 */
import { existsSync } from 'node:fs';
import { copyFile, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, chmod } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { isIgnored, parseDockerignore } from '../config/ignore-patterns.js';

export { isIgnored, parseDockerignore, type IgnorePattern } from '../config/ignore-patterns.js';

/** The ignore file for a Dockerfile: `<name>.dockerignore` next to it wins over the context's `.dockerignore`. */
export function ignoreFileFor(dockerfile: string, context: string): string | undefined {
  const own = join(dirname(dockerfile), `${basename(dockerfile)}.dockerignore`);
  if (existsSync(own)) return own;
  const ctx = join(context, '.dockerignore');
  return existsSync(ctx) ? ctx : undefined;
}

export interface FilteredContext {
  dir: string;
  kept: number;
  dropped: number;
  dispose(): Promise<void>;
}

/** A copy of the context without the ignored paths (files hard-linked when the file system allows). */
export async function filterContext(context: string, ignoreFile: string): Promise<FilteredContext> {
  const patterns = parseDockerignore(await readFile(ignoreFile, 'utf8'));
  const dir = await mkdtemp(join(tmpdir(), 'oci-build-context-'));
  const hasExceptions = patterns.some((p) => p.negate);
  let kept = 0;
  let dropped = 0;
  const walk = async (rel: string): Promise<boolean> => {
    let any = false;
    for (const name of (await readdir(join(context, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const src = join(context, r);
      const dst = join(dir, r);
      const st = await lstat(src);
      const ignored = isIgnored(r, patterns);
      if (st.isDirectory()) {
        // An ignored directory is entered only when an exception may bring something inside back.
        if (ignored && !hasExceptions) {
          dropped++;
          continue;
        }
        await mkdir(dst, { mode: 0o700 });
        const inner = await walk(r);
        if (ignored && !inner) {
          await rm(dst, { recursive: true });
          dropped++;
          continue;
        }
        await chmod(dst, st.mode & 0o7777);
        any = true;
        continue;
      }
      if (ignored) {
        dropped++;
        continue;
      }
      if (st.isSymbolicLink()) await symlink(await readlink(src), dst);
      else if (st.isFile()) await link(src, dst).catch(() => copyFile(src, dst));
      else {
        dropped++;
        continue;
      }
      kept++;
      any = true;
    }
    return any;
  };
  try {
    await walk('');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return { dir, kept, dropped, dispose: () => rm(dir, { recursive: true, force: true }) };
}
