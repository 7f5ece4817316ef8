import { constants, lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import type { CopyStep, DirStep, Step } from '../config/model.js';
import type { LayerEntry } from '../layer/types.js';
import { openSource } from '../layer/source.js';
import { parsePasswd } from '../image/users.js';
import { archiveEntries, archiveKind } from './archive.js';
import { comparePaths } from '../layer/tarwriter.js';
import { ancestors, normalize, type FsView } from './fsview.js';
import { copyFromImage } from '../run/copyfrom.js';
import { describeCommand } from '../run/runstep.js';
import { statChange, type StatSig } from '../cache/file-hasher.js';
import { sigFields, walkedSources, walkedStat } from './walked.js';

const { S_IFMT, S_IFDIR, S_IFLNK, S_IFREG } = constants;

export interface Owner {
  uid: number;
  gid: number;
}

export interface StepContext {
  /** The build context (absolute); no source may lead outside it. */
  context: string;
  /** The platform being built (os/arch[/variant]): picks per-platform copy sources. */
  platform: string;
  /** The file system as it stands before this step. */
  fs: FsView;
  /** Resolves an `owner:` value against the image's /etc/passwd and /etc/group. */
  resolveOwner(owner: string): Promise<Owner>;
  /** For `copy` with `from:`: the read-only root file system of that variant (same platform). */
  variantRoot?(variant: string): Promise<string>;
  /** Things skipped on purpose (debug level). */
  note?(message: string): void;
}

export class StepError extends Error {
  constructor(
    readonly step: Step,
    message: string,
  ) {
    super(`${step.pos.file}:${step.pos.line}: ${message}`);
    this.name = 'StepError';
  }
}

const ROOT: Owner = { uid: 0, gid: 0 };

/**
 * A Dockerfile USER as an owner spec: a uid alone takes the group of the passwd entry with that
 * uid, else 0, as Docker runs it (a build file's uid alone means gid = uid).
 */
export function dockerUserSpec(user: string, passwd: string | undefined): string {
  const spec = user.trim();
  if (!/^\d+$/.test(spec)) return spec;
  const entry = passwd ? parsePasswd(passwd).find((u) => u.uid === Number(spec)) : undefined;
  return `${spec}:${entry ? entry.gid : 0}`;
}

/** A short description of a step, used for the layer's history entry and the log. */
export function describeStep(step: Step): string {
  if (step.kind === 'file') return `file ${step.path}`;
  if (step.kind === 'dir') return `dir ${step.path}`;
  if (step.kind === 'run') return `run ${describeCommand(step)}`;
  return `copy ${step.from !== undefined ? `--from=${step.from} ` : ''}${step.sources.map((s) => s.pattern).join(' ')} ${step.to}`;
}

/** Entries of a copy or file step (run: steps are executed by the builder, src/run). */
export async function stepEntries(step: Step, ctx: StepContext): Promise<LayerEntry[]> {
  if (step.kind === 'run') throw new StepError(step, 'run: steps have no static entries');
  const owner = step.owner ? await ctx.resolveOwner(step.owner) : ROOT;
  if (step.kind === 'dir') return dirEntries(step, ctx.fs, owner);
  const out = new Map<string, LayerEntry>();
  const add = (e: LayerEntry) => {
    out.set(e.path, e);
  };
  let explicitDir: string | undefined;
  if (step.kind === 'file') {
    const content = Buffer.from(step.content, 'utf8');
    add({
      path: normalize(step.path),
      type: 'file',
      mode: step.mode ?? 0o644,
      uid: owner.uid,
      gid: owner.gid,
      size: content.length,
      open: () => Readable.from([content]),
    });
  } else if (step.from !== undefined) {
    if (!ctx.variantRoot) throw new StepError(step, `copy from ${step.from}: no root file system available`);
    const root = await ctx.variantRoot(step.from);
    explicitDir = copyFromImage(step, {
      root,
      add,
      ...(step.owner ? { owner } : {}),
      exists: (p) => ctx.fs.has(p),
      ...(ctx.note ? { note: ctx.note } : {}),
      fail: (m) => {
        throw new StepError(step, m);
      },
    });
  } else {
    explicitDir = await copyInto(step, ctx, owner, add);
  }
  addMissingParents(out, ctx.fs, owner, explicitDir, step.kind === 'copy' && step.dockerRules === true);
  return [...out.values()];
}

/** Adds the copy's entries; returns the destination directory when the copy targets one. */
async function copyInto(step: CopyStep, ctx: StepContext, owner: Owner, add: (e: LayerEntry) => void): Promise<string | undefined> {
  const intoDir =
    step.to.endsWith('/') ||
    step.sources.length > 1 ||
    step.sources.some((s) => s.isGlob) ||
    (step.dockerRules === true && ctx.fs.type(step.to) === 'dir');
  let destDir: string | undefined = intoDir ? normalize(step.to) : undefined;
  const sources = step.platformSources?.[ctx.platform] ?? step.sources;
  if (sources.some((s) => s.perPlatform)) throw new StepError(step, `copy sources for ${ctx.platform} were not resolved`);
  const linked = new Linker(add);
  // COPY --exclude: the front end listed the paths its patterns leave out.
  const excluded = step.excluded?.length ? new Set(step.excluded) : undefined;
  const skip = excluded && ((host: string) => excluded.has(host));
  for (const source of sources) {
    // COPY --parents: each match keeps its parent directories under the destination.
    const to = source.under !== undefined ? `${normalize(`${step.to}/${source.under}`)}/` : step.to;
    const into = intoDir || source.under !== undefined;
    for (const match of source.matches) {
      if (skip?.(match)) continue;
      // `d/` names the directory a symlink `d` points to (sources.ts checked it stays inside).
      const st = await lstat(match);
      const kind = step.extract && st.isFile() ? await archiveKind(match) : undefined;
      if (kind) {
        const dir = normalize(to);
        destDir = dir;
        const unpacked = await archiveEntries(match, kind, dir, step.owner ? owner : undefined, (m) => {
          throw new StepError(step, m);
        });
        // Unlike a copied directory, the archive's directories set existing ones' owner and mode.
        for (const e of unpacked) add(e);
        continue;
      }
      const followed =
        st.isSymbolicLink() && source.pattern.endsWith('/') && (await stat(match).catch(() => undefined))?.isDirectory() === true;
      if (followed || st.isDirectory()) {
        // As with Docker's COPY, a directory's contents go into the destination.
        const dir = normalize(source.under !== undefined ? `${to}/${basename(match)}` : to);
        destDir = source.under !== undefined ? normalize(step.to) : dir;
        const top = followed ? await realpath(match) : match;
        await walk(step, ctx, top, dir, owner, linked.add, skip && ((h) => skip(join(match, relative(top, h)))));
      } else {
        const dest = into ? normalize(`${to}/${basename(match)}`) : normalize(to);
        await addNode(step, ctx, match, dest, owner, linked.add, true);
      }
    }
  }
  linked.finish();
  return destDir;
}

type AddEntry = (e: LayerEntry, inode?: string) => void;

/**
 * Files of the copy that share an inode (hardlinks in the build context) stay hardlinks, as
 * buildah and BuildKit write them: the first path in tar order holds the content, the others
 * link to it, so the layer is the same whatever order the files were found in.
 */
class Linker {
  private readonly last = new Map<string, { e: LayerEntry; inode?: string }>();

  constructor(private readonly out: (e: LayerEntry) => void) {}

  readonly add: AddEntry = (e, inode) => {
    this.last.set(e.path, inode ? { e, inode } : { e });
    this.out(e);
  };

  finish(): void {
    const groups = new Map<string, LayerEntry[]>();
    for (const { e, inode } of this.last.values()) {
      if (!inode) continue;
      const g = groups.get(inode) ?? [];
      g.push(e);
      groups.set(inode, g);
    }
    for (const g of groups.values()) {
      if (g.length < 2) continue;
      g.sort((a, b) => comparePaths(a.path, b.path));
      for (const e of g.slice(1)) this.out({ path: e.path, type: 'hardlink', mode: e.mode, uid: e.uid, gid: e.gid, linkname: g[0]!.path });
    }
  }
}

async function walk(
  step: CopyStep,
  ctx: StepContext,
  hostDir: string,
  imageDir: string,
  owner: Owner,
  add: AddEntry,
  skip?: (host: string) => boolean,
): Promise<void> {
  // Synchronous, as the stats below: on cached inodes each call takes microseconds, a trip
  // through the thread pool (busy compressing, or on a shared machine) far longer, and a
  // node_modules tree has 100,000 of them.
  const names =
    walkedSources.takeListing(hostDir) ??
    readdirSync(hostDir, { encoding: 'buffer' })
      .map((raw) => utf8Name(step, ctx, hostDir, raw))
      .sort();
  for (const name of names) {
    const host = join(hostDir, name);
    if (skip?.(host)) continue;
    // A directory entry's name has no slash and is never "." or "..": already normalized.
    const dest = imageDir === '/' ? `/${name}` : `${imageDir}/${name}`;
    const isDir = await addNode(step, ctx, host, dest, owner, add, false);
    if (isDir) await walk(step, ctx, host, dest, owner, add, skip);
  }
}

/** Adds one host path; returns true when it is a directory to descend into. */
async function addNode(
  step: CopyStep,
  ctx: StepContext,
  host: string,
  dest: string,
  owner: Owner,
  add: AddEntry,
  topLevel: boolean,
): Promise<boolean> {
  const { sig, nlink } = walkedSources.takeStat(host) ?? walkedStat(lstatSync(host, { bigint: true }));
  const { size, mode: stMode, devIno } = sigFields(sig);
  const type = stMode & S_IFMT;
  // Git keeps only the executable bit, and a checkout's umask decides the rest; normalizing
  // to 0755/0644 keeps digests identical machine after machine. `mode:` overrides for files.
  const perm = step.dockerRules ? stMode & 0o7777 : type === S_IFDIR || (stMode & 0o111) !== 0 ? 0o755 : 0o644;
  if (type === S_IFLNK) {
    const target = readlinkSync(host);
    const resolved = target.startsWith('/') ? target : resolve(dirname(host), target);
    if (target.startsWith('/') || !inside(ctx.context, resolved)) {
      throw new StepError(
        step,
        `symlink ${relative(ctx.context, host)} -> ${target} leads outside the build context ${ctx.context}; make it a relative link to a path inside the context, or copy its target instead`,
      );
    }
    add({ path: dest, type: 'symlink', mode: 0o777, uid: owner.uid, gid: owner.gid, linkname: target });
    return false;
  }
  if (type === S_IFDIR) {
    // A directory that already exists in the image keeps its owner, mode and type (it may be a symlink).
    // Docker's --chmod applies to the copied directories too (the build file's mode: to files only).
    const dirMode = step.dockerRules && step.mode !== undefined ? step.mode : perm;
    if (!ctx.fs.has(dest)) add({ path: dest, type: 'dir', mode: dirMode, uid: owner.uid, gid: owner.gid });
    return true;
  }
  if (type === S_IFREG) {
    const mode = step.mode ?? perm;
    add(
      {
        path: dest,
        type: 'file',
        mode,
        uid: owner.uid,
        gid: owner.gid,
        size,
        hostPath: host,
        hostStat: sig,
        readPath: host,
        open: () => openSource(host, size),
        changedSince: () => rewritten(ctx, host, sig),
      },
      nlink > 1 ? devIno : undefined,
    );
    return false;
  }
  const where = topLevel ? '' : ` (in the copied directory ${relative(ctx.context, dirname(host)) || '.'})`;
  throw new StepError(
    step,
    `${relative(ctx.context, host) || host}${where} is a special file (socket, FIFO or device) that cannot go into a layer; remove it from the copy`,
  );
}

/** The directory and its missing parents, all with the step's owner (Docker's WORKDIR after USER). */
function dirEntries(step: DirStep, fs: FsView, owner: Owner): LayerEntry[] {
  const dir = normalize(step.path);
  return [...ancestors(dir), dir]
    .filter((d) => d !== '/' && !fs.has(d))
    .map((d) => ({ path: d, type: 'dir' as const, mode: 0o755, uid: owner.uid, gid: owner.gid }));
}

/**
 * A directory entry's name as a string. Image paths are strings everywhere (the model, the
 * layer cache keys, pax path records, which POSIX defines as UTF-8), so a name that is not
 * valid UTF-8 is refused rather than copied under a different, mangled name.
 */
function utf8Name(step: CopyStep, ctx: StepContext, dir: string, raw: Buffer): string {
  const name = raw.toString('utf8');
  if (Buffer.from(name, 'utf8').equals(raw)) return name;
  const shown = [...raw]
    .map((b) => (b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`))
    .join('');
  throw new StepError(
    step,
    `${relative(ctx.context, dir) || '.'} (in the build context ${ctx.context}) has a file name that is not valid UTF-8: "${shown}"; rename it (for example with convmv or mv) or leave it out of the copy`,
  );
}

/**
 * Checked after the layer writer read the file: a same-size rewrite in place passes the size
 * check but would leave a mix of old and new bytes in the layer.
 */
function rewritten(ctx: StepContext, host: string, before: StatSig): string | undefined {
  let after: BigIntStats | undefined;
  try {
    after = lstatSync(host, { bigint: true });
  } catch {
    after = undefined;
  }
  const moved = statChange(before, after);
  return (
    moved &&
    `${relative(ctx.context, host) || host} in the build context was written to while it was read: ${moved}; build again once nothing writes to it`
  );
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep));
}

/**
 * Creates entries for parent directories that exist neither in the image so far nor in
 * this layer. Existing ones are left out so the base image's owner, mode or symlink stays.
 * The copy's own destination directory takes the step's owner, as Docker's COPY --chown does
 * (with Docker's rules, every directory the copy creates does).
 */
function addMissingParents(out: Map<string, LayerEntry>, fs: FsView, owner: Owner, explicitDir: string | undefined, ownAll = false): void {
  const needed = new Set<string>();
  // Upwards from each path, stopping at a directory already needed (its ancestors are too):
  // a copied tree of 100,000 files costs one step per file, not one per file and level.
  for (const p of out.keys()) {
    for (let i = p.lastIndexOf('/'); i > 0; i = p.lastIndexOf('/', i - 1)) {
      const dir = p.slice(0, i);
      if (needed.has(dir)) break;
      needed.add(dir);
    }
  }
  if (explicitDir && explicitDir !== '/') {
    for (const a of ancestors(explicitDir)) needed.add(a);
    needed.add(explicitDir);
  }
  for (const dir of needed) {
    if (out.has(dir) || fs.has(dir)) continue;
    const o = dir === explicitDir || ownAll ? owner : ROOT;
    out.set(dir, { path: dir, type: 'dir', mode: 0o755, uid: o.uid, gid: o.gid });
  }
}
