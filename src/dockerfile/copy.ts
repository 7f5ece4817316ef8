/**
 * COPY and ADD into copy/file steps. Context sources are resolved (and checked) here, before any
 * work: a missing file, a source leaving the context, an ADD of a git URL, or a download that
 * fails or does not match --checksum, fails with the instruction's position.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import type { CopySource, SourcePos, Step } from '../config/model.js';
import { globRegex } from '../config/glob.js';
import { isGlobPattern, resolveCopySource } from '../config/sources.js';
import { expandHeredoc, expandWord, type Lookup } from './expand.js';
import { InstructionError, type Instruction } from './instructions.js';
import { download, DownloadError } from './download.js';
import { isIgnored, parseDockerignore } from './dockerignore.js';

export interface CopyContext {
  file: string;
  context: string;
  escape: string;
  lookup: Lookup;
  workdir: string;
  pos: SourcePos;
  /** The variant a `--from` value names (a stage, or an image). */
  fromRef(ref: string): Promise<string>;
}

type CopyInstruction = Extract<Instruction, { keyword: 'COPY' | 'ADD' }>;

const UNSUPPORTED_FLAGS: Record<string, string> = {
  'keep-git-dir': 'clone in a RUN step',
};

/** The destination as an absolute image path; a trailing slash (or `.`) means "into this directory". */
export function destination(dest: string, workdir: string): string {
  const intoDir = dest.endsWith('/') || dest === '.' || dest === '' || dest.endsWith('/.');
  const abs = posix.resolve(workdir, dest);
  return intoDir && abs !== '/' ? `${abs}/` : abs;
}

export async function copySteps(ins: CopyInstruction, ctx: CopyContext): Promise<Step[]> {
  const fail = (message: string, hint?: string): never => {
    throw new InstructionError(ins.pos, ins.keyword, message, hint);
  };
  const word = (w: string) => expandWord(w, ctx.lookup, ctx.escape);
  const flag = (name: string) => {
    const f = ins.flags.find((x) => x.name === name);
    return f ? word(f.value ?? '') : undefined;
  };
  for (const f of ins.flags) if (UNSUPPORTED_FLAGS[f.name]) fail(`--${f.name} is not supported yet`, UNSUPPORTED_FLAGS[f.name]);
  const owner = flag('chown') || undefined;
  const exclude = ins.flags.filter((f) => f.name === 'exclude').map((f) => word(f.value ?? ''));
  if (exclude.some((e) => !e)) fail('--exclude needs a pattern', 'write e.g. --exclude=*.md');
  const parentsFlag = flag('parents');
  if (parentsFlag !== undefined && parentsFlag !== '' && parentsFlag !== 'true' && parentsFlag !== 'false')
    fail(`--parents=${parentsFlag}: expects true or false`);
  const parents = parentsFlag === '' || parentsFlag === 'true';
  const chmod = flag('chmod');
  let mode: number | undefined;
  if (chmod !== undefined) {
    if (!/^[0-7]{3,4}$/.test(chmod)) fail(`--chmod=${chmod}: only octal modes are supported`, 'write e.g. --chmod=0755');
    mode = parseInt(chmod, 8);
  }
  const to = destination(word(ins.dest), ctx.workdir);
  const intoDir = to.endsWith('/');
  const heredocNames = new Set(ins.heredocs.map((h) => h.name));
  const isHeredoc = (s: string) => /^<<-?["']?[A-Za-z_]/.test(s) && heredocNames.has(s.replace(/^<<-?["']?/, '').replace(/["']$/, ''));
  const docs = ins.sources.filter(isHeredoc);
  if (ins.sources.length > 1 && !intoDir)
    fail('with more than one source the destination must be a directory and end with a /', `write ${ins.dest}/`);
  if (docs.length) {
    if (docs.length !== ins.sources.length)
      fail('heredoc and file sources in one instruction are not supported yet', 'split it into two instructions');
    return ins.heredocs.map((h) => ({
      kind: 'file' as const,
      path: intoDir ? posix.join(to, h.name) : to,
      content: h.quoted ? h.content : expandHeredoc(h.content, ctx.lookup, ctx.escape),
      ...(mode !== undefined ? { mode } : {}),
      ...(owner ? { owner } : {}),
      pos: ctx.pos,
    }));
  }
  const sources = ins.sources.map(word);
  const from = flag('from');
  if (from !== undefined) {
    if (ins.keyword === 'ADD') fail('ADD has no --from', 'use COPY --from');
    const variant = await ctx.fromRef(from);
    // Paths in that image: resolved against it when it is built (src/run/copyfrom.ts).
    const patterns = sources.map((s) => fromSource(s, parents));
    return [
      {
        kind: 'copy',
        sources: patterns,
        to,
        from: variant,
        dockerRules: true,
        ...(exclude.length ? { exclude } : {}),
        ...(mode !== undefined ? { mode } : {}),
        ...(owner ? { owner } : {}),
        pos: ctx.pos,
      },
    ];
  }
  const resolved: CopySource[] = [];
  const downloads: CopySource[] = [];
  const problems: string[] = [];
  const checksum = flag('checksum');
  if (checksum !== undefined && !sources.every(isUrl))
    fail('--checksum is for URL sources only', "drop it, or check the file's sum in a RUN step");
  for (const s of sources) {
    if (ins.keyword === 'ADD') addCheck(s, fail);
    if (ins.keyword === 'ADD' && isUrl(s)) {
      try {
        downloads.push(await download(s, checksum));
      } catch (e) {
        if (e instanceof DownloadError) fail(e.message, e.hint);
        throw e;
      }
      continue;
    }
    // Docker reads absolute sources relative to the context's root.
    const rel = posix.normalize(s.replace(/^\/+/, '') || '.');
    const found = isGlobPattern(rel) ? await contextGlob(ctx.context, rel) : [rel];
    if (!found.length) {
      problems.push(`copy source "${s}" matches nothing in the build context`);
      continue;
    }
    const matches: string[] = [];
    for (const m of found) {
      const r = await resolveCopySource(ctx.context, m);
      if (r.source) matches.push(...r.source.matches);
      // The messages speak of a build file's directory; here it is the build context.
      problems.push(
        ...r.problems.map((p) => `${p.message} (fix: ${p.hint})`.replaceAll("the build file's directory", 'the build context')),
      );
    }
    if (parents) resolved.push(...withParents(ctx.context, s, s.replace(/^\/+/, ''), matches));
    else resolved.push({ pattern: s, matches, isGlob: isGlobPattern(rel) });
  }
  if (problems.length) fail(problems.join('; '));
  const excluded = exclude.length ? await excludedPaths(ctx.context, resolved, exclude) : [];
  const step = (sources: CopySource[], extract: boolean): Step => ({
    kind: 'copy',
    sources,
    to,
    dockerRules: true,
    ...(extract ? { extract } : {}),
    ...(exclude.length && sources === resolved ? { excluded } : {}),
    ...(mode !== undefined ? { mode } : {}),
    ...(owner ? { owner } : {}),
    pos: ctx.pos,
  });
  // ADD unpacks local tar archives (the builder tells them by their first bytes), never downloads.
  return [...(resolved.length ? [step(resolved, ins.keyword === 'ADD')] : []), ...(downloads.length ? [step(downloads, false)] : [])];
}

/** Go's filepath.Match for one path segment: `*` and `?` match dot files too, `[^...]` negates. */
function segmentRegex(seg: string): RegExp {
  return globRegex(seg, { escapes: true });
}

/** Context paths (relative, sorted) a glob matches with Docker's rules. */
async function contextGlob(context: string, pattern: string): Promise<string[]> {
  let found = [''];
  for (const seg of pattern.split('/')) {
    const next: string[] = [];
    for (const base of found) {
      if (!isGlobPattern(seg)) {
        next.push(base ? `${base}/${seg}` : seg);
        continue;
      }
      const names = await readdir(join(context, base)).catch(() => [] as string[]);
      const re = segmentRegex(seg);
      for (const n of names.sort()) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
    }
    found = next;
  }
  const exists = await Promise.all(
    found.map((p) =>
      lstat(join(context, p)).then(
        () => true,
        () => false,
      ),
    ),
  );
  return found.filter((_, i) => exists[i]).sort();
}

/**
 * COPY --exclude: the paths under the sources that a pattern matches (.dockerignore syntax),
 * relative to the source (a directory being copied) or to the context; a directory matched is
 * left out with everything under it. Listed here so the builder only skips paths.
 */
async function excludedPaths(context: string, sources: CopySource[], exclude: string[]): Promise<string[]> {
  const patterns = parseDockerignore(exclude.join('\n'));
  const out: string[] = [];
  const hit = (host: string, base: string) =>
    isIgnored(relative(context, host).split(sep).join('/'), patterns) ||
    (host !== base && isIgnored(relative(base, host).split(sep).join('/'), patterns));
  const walk = async (dir: string, base: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name);
      if (hit(p, base)) out.push(p);
      else if ((await lstat(p)).isDirectory()) await walk(p, base);
    }
  };
  for (const m of sources.flatMap((s) => s.matches)) {
    if (hit(m, posix.dirname(m))) out.push(m);
    else if ((await lstat(m)).isDirectory()) await walk(m, m);
  }
  return out;
}

/**
 * COPY --parents: one source per match, each kept under its parent directories relative to the
 * context, or to the `/./` pivot when the pattern has one (`src/./pkg/a` keeps `pkg/a`).
 */
function withParents(context: string, pattern: string, raw: string, matches: string[]): CopySource[] {
  const pivot = raw.indexOf('/./');
  const root = pivot >= 0 ? join(context, raw.slice(0, pivot)) : context;
  const rel = posix.normalize(raw || '.');
  return matches.map((m) => {
    const under = posix.dirname(relative(root, m).split(sep).join('/'));
    return {
      pattern,
      matches: [m],
      isGlob: isGlobPattern(rel),
      ...(relative(root, m) && !relative(root, m).startsWith('..') ? { under } : {}),
    };
  });
}

/** A `--from` source: an absolute image path; with --parents, the directory its parents are kept from. */
function fromSource(s: string, parents: boolean): CopySource {
  const pattern = posix.resolve('/', s) + (s.endsWith('/') && s !== '/' ? '/' : '');
  const source: CopySource = { pattern, matches: [], isGlob: isGlobPattern(s) };
  if (!parents) return source;
  const raw = s.replace(/^\/+/, '');
  const pivot = raw.indexOf('/./');
  return { ...source, parentsOf: pivot >= 0 ? posix.resolve('/', raw.slice(0, pivot)) : '/' };
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

function addCheck(source: string, fail: (m: string, h?: string) => never): void {
  if (/^git@|^git:\/\/|\.git(#.*)?$/.test(source))
    fail(`ADD of a git repository (${source}) is not supported`, 'clone it in a RUN step, or check it out into the context and COPY it');
}
