import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import type { RunMount, RunStep } from '../config/model.js';
import type { StepMount } from '../run/mounts.js';
import { RootResolver, segmentsOf } from '../run/rootpath.js';
import { lock, tryLock } from './cache-lock.js';
import { secretLines } from '../log.js';

/**
 * RUN --mount for the builder: what each mount is on the host (a persistent cache directory, a
 * secret written to a private file, a stage's or the context's files, a tmpfs) and what of it
 * goes into the step's cache key. As BuildKit: a cache mount's content and a secret's value are
 * never part of the key (a changed secret does not rebuild); a bind's content is.
 */

const run = promisify(execFile);
let seq = 0;

export interface MountHost {
  /** The build's work directory (cache mounts live in its run-cache/, saved with the Actions cache). */
  workDir: string;
  /** Private scratch space (removed with the build). */
  tmpDir: string;
  /** The build context (binds without from=). */
  context: string;
  /** Secret values by id. */
  secrets: ReadonlyMap<string, Buffer>;
  /** The final root file system of a variant of this build. */
  variantRoot(name: string): Promise<string>;
  /** The diffIDs of a variant's layers (what a bind from it is keyed by). */
  variantLayers(name: string): Promise<string[]>;
  /** Hears what the user should know (a locked cache mount waits for another build). */
  note?: (message: string) => void;
}

export interface PreparedMounts {
  mounts: StepMount[];
  hiddenEnv: Record<string, string>;
  redact: string[];
  release(): void;
}

/** `sharing=locked` waits here (and for cache-lock.ts's file); `private` takes a fresh directory when the cache is in use. */
const locks = new Map<string, Promise<void>>();
const inUse = new Map<string, number>();

export function cacheMountDir(workDir: string, id: string): string {
  return join(workDir, 'run-cache', createHash('sha256').update(id).digest('hex').slice(0, 32));
}

async function copyTree(from: string, to: string): Promise<void> {
  await run('cp', ['-a', '--reflink=auto', `${from}/.`, `${to}/`]);
}

/** A path of the build context or a stage, resolved inside it (symlinks never lead out). */
function sourceIn(root: string, source: string, inImage: boolean, what: string): string {
  if (inImage) {
    const host = new RootResolver(root).resolve(segmentsOf(source), { followLast: true });
    if (!host) throw new Error(`${what}: ${source} does not exist there`);
    return host;
  }
  const host = join(root, source);
  if (!existsSync(host)) throw new Error(`${what}: ${source} is not in the build context`);
  const real = realpathSync(host);
  const top = realpathSync(root);
  if (real !== top && !real.startsWith(top + sep)) throw new Error(`${what}: ${source} leads outside the build context`);
  return real;
}

export async function prepareMounts(step: RunStep, h: MountHost): Promise<PreparedMounts> {
  const mounts: StepMount[] = [];
  const hiddenEnv: Record<string, string> = {};
  const redact: string[] = [];
  const cleanup: (() => void)[] = [];
  const release = () => {
    for (const c of cleanup.reverse()) c();
    cleanup.length = 0;
  };
  const at = `${step.pos.file}:${step.pos.line}: RUN --mount`;
  try {
    for (const m of step.mounts ?? []) {
      if (m.type === 'tmpfs') mounts.push({ target: m.target, kind: 'tmpfs', readonly: false, ...(m.size ? { size: m.size } : {}) });
      else if (m.type === 'secret') {
        const value = h.secrets.get(m.id);
        if (value === undefined) {
          if (m.required) throw new Error(`${at}: the required secret "${m.id}" was not given (pass --secret id=${m.id},src=FILE)`);
          continue; // BuildKit: an optional secret that is not given is simply not mounted
        }
        redact.push(...secretLines([value]));
        if (m.env) hiddenEnv[m.env] = value.toString('utf8');
        if (m.target) {
          const file = join(h.tmpDir, `secret-${process.pid}-${++seq}`);
          writeFileSync(file, value, { mode: 0o600 });
          chmodSync(file, m.mode);
          chownSync(file, m.uid, m.gid);
          cleanup.push(() => rmSync(file, { force: true }));
          mounts.push({ target: m.target, kind: 'bind', source: file, file: true, readonly: true });
        }
      } else if (m.type === 'bind') {
        const root = m.from !== undefined ? await h.variantRoot(m.from) : h.context;
        let source = sourceIn(root, m.source, m.from !== undefined, `${at} type=bind ${m.from ? `from=${m.from}` : '(context)'}`);
        const isFile = lstatSync(source).isFile();
        if (m.rw) {
          // Writes are discarded: the command gets a copy.
          const copy = join(h.tmpDir, `bind-${process.pid}-${++seq}`);
          if (isFile) await run('cp', ['-a', '--reflink=auto', source, copy]);
          else {
            mkdirSync(copy, { mode: 0o755 });
            await copyTree(source, copy);
          }
          cleanup.push(() => rmSync(copy, { recursive: true, force: true }));
          source = copy;
        }
        mounts.push({ target: m.target, kind: 'bind', source, file: isFile, readonly: !m.rw });
      } else mounts.push(await cacheMount(m, h, cleanup, at));
    }
  } catch (err) {
    release();
    throw err;
  }
  return { mounts, hiddenEnv, redact, release };
}

async function cacheMount(m: Extract<RunMount, { type: 'cache' }>, h: MountHost, cleanup: (() => void)[], at: string): Promise<StepMount> {
  let dir = cacheMountDir(h.workDir, m.id);
  if (m.sharing === 'locked') {
    for (let held = locks.get(dir); held; held = locks.get(dir)) await held;
    let unlock!: () => void;
    locks.set(dir, new Promise<void>((r) => (unlock = r)));
    const mine = dir;
    cleanup.push(() => {
      locks.delete(mine);
      unlock();
    });
    // Other builds sharing the cache directory: their locked and private steps hold its lock file.
    cleanup.push(
      await lock(dir, (owner) =>
        h.note?.(`${at} type=cache,id=${m.id},sharing=locked: in use by another build (pid ${owner.split('-')[0]}); waiting`),
      ),
    );
  } else if (m.sharing === 'private') {
    // In use by another step (here, or a locked or private one of another build): this one gets
    // its own, empty, directory (BuildKit makes a new instance); otherwise it holds the lock.
    const release = (inUse.get(dir) ?? 0) > 0 ? undefined : tryLock(dir);
    if (release) cleanup.push(release);
    else {
      dir = join(h.tmpDir, `cache-${process.pid}-${++seq}`);
      const mine = dir;
      cleanup.push(() => rmSync(mine, { recursive: true, force: true }));
    }
  }
  const key = dir;
  inUse.set(key, (inUse.get(key) ?? 0) + 1);
  cleanup.push(() => inUse.set(key, (inUse.get(key) ?? 1) - 1));
  if (!existsSync(dir)) {
    const fresh = `${dir}.new-${process.pid}-${++seq}`;
    mkdirSync(fresh, { recursive: true, mode: 0o755 });
    if (m.from !== undefined)
      await copyTree(sourceIn(await h.variantRoot(m.from), m.source, true, `RUN --mount type=cache from=${m.from}`), fresh);
    chmodSync(fresh, m.mode);
    chownSync(fresh, m.uid, m.gid);
    try {
      await run('mv', ['-T', fresh, dir]);
    } catch {
      rmSync(fresh, { recursive: true, force: true }); // another build made it first
    }
  }
  return { target: m.target, kind: 'bind', source: dir, readonly: m.readonly };
}

/** A directory tree's identity: paths, types, modes, owners, link targets and file contents. */
async function treeDigest(top: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (p: string): Promise<void> => {
    const st = lstatSync(p);
    h.update(`${relative(top, p)}\0${st.mode}\0${st.uid}:${st.gid}\0`);
    if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else if (st.isFile()) {
      for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
    } else if (st.isDirectory()) for (const n of readdirSync(p).sort()) await walk(join(p, n));
    h.update('\n');
  };
  await walk(top);
  return `sha256:${h.digest('hex')}`;
}

/** What the mounts add to the step's cache key: their options, and a bind's content; never a secret's value or a cache's content. */
export async function mountKeyParts(step: RunStep, h: Pick<MountHost, 'context' | 'variantLayers'>): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const m of step.mounts ?? []) {
    if (m.type !== 'bind') {
      out.push(m);
      continue;
    }
    const content =
      m.from !== undefined
        ? { layers: await h.variantLayers(m.from) }
        : { context: await treeDigest(sourceIn(h.context, m.source, false, `${step.pos.file}:${step.pos.line}: RUN --mount type=bind`)) };
    out.push({ ...m, ...content });
  }
  return out;
}
