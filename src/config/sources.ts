/**
 * Resolution of `copy:` sources against the build context (the build file's directory).
 *
 * Rules:
 * - a pattern is relative to the context; absolute patterns and `..` that leave the
 *   context are rejected;
 * - glob patterns (`*`, `?`, `[`, `**`) expand with Node's fs.promises.glob relative to the
 *   context (dot files are not matched by `*`, as in shells); the matches are sorted; a glob
 *   that matches nothing is a problem;
 * - a plain path must exist;
 * - every match must stay inside the context: its parent directories may not pass through
 *   a symlink that leads outside, and a match that is itself a symlink must point inside
 *   (symlinks inside the context are fine: they are copied as symlinks).
 *
 * Only the matches themselves are checked; symlinks deeper inside a copied directory are
 * copied as symlinks and never followed, so they cannot leak host files.
 */
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import type { CopySource } from './model.js';

export interface SourceProblem {
  message: string;
  hint: string;
}

export interface ResolvedSource {
  /** Set when there are no problems. */
  source?: CopySource;
  problems: SourceProblem[];
}

const GLOB_CHARS = /[*?[]/;

export function isGlobPattern(pattern: string): boolean {
  return GLOB_CHARS.test(pattern);
}

function inside(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
}

function errCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

/**
 * Resolves one copy source. `context` must be an absolute directory. `realContext` (the
 * context with symlinks resolved) may be passed to save a realpath call per source.
 */
export async function resolveCopySource(context: string, pattern: string, realContext?: string): Promise<ResolvedSource> {
  const problems: SourceProblem[] = [];
  const fail = (message: string, hint: string): ResolvedSource => ({ problems: [{ message, hint }] });

  if (pattern.trim() === '') return fail('the copy source is empty', "give a path relative to the build file's directory");
  if (path.isAbsolute(pattern) || /^[A-Za-z]:[\\/]/.test(pattern)) {
    return fail(
      `copy source "${pattern}" is an absolute path`,
      `sources are relative to the build file's directory (${context}); write the path relative to it`,
    );
  }
  const norm = path.posix.normalize(pattern);
  if (norm === '..' || norm.startsWith('../')) {
    return fail(
      `copy source "${pattern}" leads outside the build context (${context})`,
      "only files under the build file's directory can be copied; move the build file up or the files in",
    );
  }
  const rc = realContext ?? (await fs.realpath(context));
  const isGlob = isGlobPattern(norm);

  let rels: string[];
  if (isGlob) {
    const found = new Set<string>();
    for await (const m of fs.glob(norm, { cwd: context })) found.add(m);
    rels = [...found].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (rels.length === 0) {
      return fail(
        `copy source "${pattern}" matches nothing in ${context}`,
        'check the pattern and that the files are built before this step (dot files need an explicit . in the pattern)',
      );
    }
  } else {
    rels = [norm];
  }

  const matches: string[] = [];
  for (const rel of rels) {
    const abs = path.resolve(context, rel);
    const shown = isGlob ? `"${rel}" (matched by "${pattern}")` : `"${pattern}"`;
    if (!inside(abs, path.resolve(context))) {
      problems.push({
        message: `copy source ${shown} leads outside the build context`,
        hint: "copy only files under the build file's directory",
      });
      continue;
    }
    let st: Stats;
    try {
      st = await fs.lstat(abs);
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOENT' && rel.includes('\uFFFD')) {
        // Node decodes a name that is not UTF-8 with U+FFFD, a name that does not exist.
        problems.push({
          message: `copy source ${shown}: a file name in ${path.dirname(abs)} is not valid UTF-8 (it reads as "${path.basename(rel)}")`,
          hint: 'rename the file to a UTF-8 name (for example with convmv or mv), or leave it out of the copy',
        });
      } else if (code === 'ENOENT' || code === 'ENOTDIR') {
        problems.push({
          message: `copy source ${shown} does not exist`,
          hint: `paths are relative to the build file's directory (${context}); build the file before running oci-build if it is a build output`,
        });
      } else {
        problems.push({ message: `copy source ${shown} cannot be read: ${(e as Error).message}`, hint: 'check the file permissions' });
      }
      continue;
    }
    if (abs !== path.resolve(context)) {
      const realDir = await fs.realpath(path.dirname(abs));
      if (!inside(realDir, rc)) {
        problems.push({
          message: `copy source ${shown} is reached through a symlink that leads outside the build context (to ${realDir})`,
          hint: 'copy the files into the build context instead of linking to them',
        });
        continue;
      }
      if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = await fs.realpath(abs);
        } catch {
          // Dangling link: judge where it points by its text.
          target = path.resolve(realDir, await fs.readlink(abs));
        }
        if (!inside(target, rc)) {
          problems.push({
            message: `copy source ${shown} is a symlink to ${target}, outside the build context`,
            hint: 'copy the target into the build context, or replace the link with the file itself',
          });
          continue;
        }
      }
    }
    if (!st.isFile() && !st.isDirectory() && !st.isSymbolicLink()) {
      problems.push({
        message: `copy source ${shown} is not a regular file, directory or symlink`,
        hint: 'copy only files, directories and symlinks',
      });
      continue;
    }
    matches.push(abs);
  }
  if (problems.length) return { problems };
  return { source: { pattern, matches, isGlob }, problems };
}
