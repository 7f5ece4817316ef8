import { chownSync, lstatSync, mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { RunStep } from '../config/model.js';
import { TEMP_ROOTFS_HINT } from '../errors/io.js';
import { formatBytes, redactLines, secretLines } from '../log.js';
import type { ContainerConfig } from '../oci/types.js';
import { parseGroup, parsePasswd, resolveOwner } from '../image/users.js';
import { requireRoot } from './privilege.js';
import { RootResolver, segmentsOf } from './rootpath.js';
import { resolveIsolation, runInSandbox, type IsolationChoice } from './sandbox.js';
import { diffSnapshots, takeSnapshotAsync, type Changes, type Snapshot } from './snapshot.js';
import { placeMounts, type StepMount } from './mounts.js';

/**
 * One `run:` step on a working rootfs: resolve the command, user, environment and working
 * directory the way a Dockerfile RUN does, prepare the mount points, snapshot, run the command in
 * the sandbox, snapshot again and return what changed (the layer's entries).
 */

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_SHELL = ['/bin/sh', '-c'];
const MAX_ID_FILE = 4 << 20;
let bindSeq = 0;

export class RunStepError extends Error {
  constructor(
    readonly step: RunStep,
    readonly code: number,
    readonly tail: string[],
    what: string,
    /** Why, when known from outside the command (its file system was full). */
    reason = '',
  ) {
    super(
      `${step.pos.file}:${step.pos.line}: run: ${what} failed with exit code ${code}${reason ? `: ${reason}` : ''}${tail.length ? `; last ${tail.length} line(s) of its output:\n${tail.map((l) => `  | ${l}`).join('\n')}` : ' (no output)'}`,
    );
    this.name = 'RunStepError';
  }
}

export interface RunStepContext {
  /** The working rootfs (the image so far). */
  rootfs: string;
  /** Runtime config of the image the variant starts from (Env, User, WorkingDir, Shell). */
  config: ContainerConfig | undefined;
  /** The variant's `env` (applies to its run: steps too). */
  variantEnv: Record<string, string>;
  /** The build's SOURCE_DATE_EPOCH, passed on to the command (tools honor it: reproducible output). */
  sourceDateEpoch?: number;
  /** Temporary directory for the resolv.conf/hosts copies. */
  tmpDir: string;
  onLine?: (line: string) => void;
  note?: (message: string) => void;
  /** How to isolate the command (default: runc when installed, else the chroot sandbox). */
  isolation?: IsolationChoice;
  /** Gets the one line saying which isolation run: steps get, once per build process. */
  announce?: (message: string) => void;
  /**
   * The rootfs as the previous run: step left it (its result's `snapshot`), when nothing has
   * changed it since: saves walking the tree again.
   */
  before?: Snapshot;
  /** RUN --mount: host paths and tmpfs mounted for this command only (not in the layer). */
  mounts?: StepMount[];
  /** Environment for this command only, never recorded (secrets given as env=). */
  hiddenEnv?: Record<string, string>;
  /** Values replaced by *** in the output lines and the error's tail (secrets). */
  redact?: string[];
}

let announced = false;

export interface RunStepResult extends Changes {
  argv: string[];
  uid: number;
  gid: number;
  /** /etc/passwd or /etc/group changed (owner names must be read again). */
  idsChanged: boolean;
  /** The rootfs after the step, for the next step's `before`. */
  snapshot: Snapshot;
}

/** Short text of the command, for history and logs. */
export function describeCommand(step: RunStep): string {
  const text = typeof step.command === 'string' ? step.command : JSON.stringify(step.command);
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}

function readIdFile(r: RootResolver, p: string): string | undefined {
  const f = r.existing(p);
  if (!f || !f.stats.isFile() || f.stats.size > MAX_ID_FILE) return undefined;
  return readFileSync(f.host, 'utf8');
}

/** Reads /etc/passwd and /etc/group of a rootfs (symlinks followed inside it). */
export function readIdFiles(rootfs: string): { passwd?: string; group?: string } {
  const r = new RootResolver(rootfs);
  return { passwd: readIdFile(r, '/etc/passwd'), group: readIdFile(r, '/etc/group') };
}

function mergeEnv(...layers: (string[] | Record<string, string>)[]): string[] {
  const map = new Map<string, string>();
  for (const l of layers) {
    const pairs = Array.isArray(l)
      ? l.map((e) => {
          const i = e.indexOf('=');
          return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
        })
      : Object.entries(l);
    for (const [k, v] of pairs) if (k) map.set(k!, v!);
  }
  return [...map].map(([k, v]) => `${k}=${v}`);
}

function lstatMaybe(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Less free than this after a failed command: it most likely failed because the disk is full. */
const NEARLY_FULL = 1 << 20;

/**
 * The command's writes go to the temporary root file system in the cache directory: when it
 * fails on a full disk, say which directory and what to do (the command's own message says
 * only "No space left on device").
 */
function fullDisk(rootfs: string, tail: string[]): string {
  let free: number | undefined;
  try {
    const s = statfsSync(rootfs);
    free = s.bavail * s.bsize;
  } catch {
    /* the message below still holds when the command said so */
  }
  const said = tail.some((l) => /no space left on device|ENOSPC|disk quota exceeded/i.test(l));
  if (!said && (free === undefined || free >= NEARLY_FULL)) return '';
  return `no space left on the device holding the temporary root file system ${rootfs}${free !== undefined ? ` (${formatBytes(free)} free)` : ''}; free space there, or ${TEMP_ROOTFS_HINT}`;
}

export async function runStep(step: RunStep, ctx: RunStepContext): Promise<RunStepResult> {
  requireRoot('run: steps');
  let isolation;
  try {
    isolation = resolveIsolation(ctx.isolation);
  } catch (err) {
    throw new Error(`${step.pos.file}:${step.pos.line}: run: ${(err as Error).message}`);
  }
  if (!announced) {
    announced = true;
    ctx.announce?.(isolation.describe);
  }
  const cfg = ctx.config ?? {};
  const r = new RootResolver(ctx.rootfs);
  const shell = step.shell ?? (Array.isArray(cfg.Shell) && cfg.Shell.length ? (cfg.Shell as string[]) : DEFAULT_SHELL);
  const argv = typeof step.command === 'string' ? [...shell, step.command] : step.command;

  // User: as `owner:` resolves (reader.ts resolveOwner), against the image's current files.
  const ids = readIdFiles(ctx.rootfs);
  const userSpec = step.user ?? (cfg.User || '0');
  let owner: { uid: number; gid: number };
  try {
    owner = resolveOwner(userSpec, ids.passwd, ids.group);
  } catch (err) {
    throw new Error(`${step.pos.file}:${step.pos.line}: run: user: ${(err as Error).message.replace(/^owner /, '')}`);
  }
  const pw = ids.passwd ? parsePasswd(ids.passwd).find((u) => u.uid === owner.uid) : undefined;
  const groups = new Set<number>([owner.gid]);
  if (pw && ids.group) for (const g of parseGroup(ids.group)) if (g.members.includes(pw.name)) groups.add(g.gid);

  const epoch: Record<string, string> = ctx.sourceDateEpoch !== undefined ? { SOURCE_DATE_EPOCH: String(ctx.sourceDateEpoch) } : {};
  const env = mergeEnv(cfg.Env ?? [], epoch, ctx.variantEnv, step.env, ctx.hiddenEnv ?? {});
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(`PATH=${DEFAULT_PATH}`);
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${pw?.home || (owner.uid === 0 ? '/root' : '/')}`);

  // Before anything is created in the rootfs: the working directory is part of the layer.
  const before = ctx.before ?? (await takeSnapshotAsync(ctx.rootfs));

  // Working directory: created when missing (as Docker's WORKDIR), owned by the step's user.
  const workdir = step.workdir ?? (cfg.WorkingDir || '/');
  {
    const stack: string[] = [];
    for (const seg of segmentsOf(workdir)) {
      stack.push(seg);
      const host = r.resolve(stack, { followLast: true });
      if (host === undefined) throw new Error(`${step.pos.file}:${step.pos.line}: run: workdir ${workdir}: a parent is missing`);
      const st = lstatMaybe(host);
      if (!st) {
        mkdirSync(host, { mode: 0o755 });
        chownSync(host, owner.uid, owner.gid);
      } else if (!st.isDirectory()) {
        throw new Error(`${step.pos.file}:${step.pos.line}: run: workdir ${workdir}: /${stack.join('/')} is not a directory in the image`);
      }
    }
  }

  // Mount points: real directories (never symlinks, which could point anywhere on the host).
  const placeholders: string[] = [];
  for (const d of ['proc', 'sys', 'dev']) {
    const host = join(ctx.rootfs, d);
    const st = lstatMaybe(host);
    if (!st) {
      mkdirSync(host, { mode: 0o755 });
      placeholders.push(host);
      continue;
    }
    if (!st.isDirectory())
      throw new Error(
        `${step.pos.file}:${step.pos.line}: run: the image's /${d} is not a directory (${st.isSymbolicLink() ? 'a symlink' : 'a file'}); run: steps mount over it`,
      );
  }
  // The host's resolver and hosts, as read-only copies over the image's files (not in the layer).
  let resolvConf = '';
  let hosts = '';
  const etc = lstatMaybe(join(ctx.rootfs, 'etc'));
  if (etc?.isDirectory()) {
    const bind = (name: string, content: string): string => {
      const target = join(ctx.rootfs, 'etc', name);
      const st = lstatMaybe(target);
      if (st && !st.isFile()) {
        ctx.note?.(`run: the image's /etc/${name} is not a regular file; it is left as it is`);
        return '';
      }
      if (!st) {
        writeFileSync(target, '', { mode: 0o644 });
        placeholders.push(target);
      }
      const src = join(ctx.tmpDir, `${name}-${++bindSeq}`);
      writeFileSync(src, content, { mode: 0o644 });
      return src;
    };
    const hostFile = (p: string, fallback: string) => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return fallback;
      }
    };
    if (step.network) resolvConf = bind('resolv.conf', hostFile('/etc/resolv.conf', ''));
    hosts = bind('hosts', hostFile('/etc/hosts', '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'));
  }

  let placed: ReturnType<typeof placeMounts>;
  try {
    placed = placeMounts(ctx.rootfs, ctx.mounts ?? []);
  } catch (err) {
    for (const p of placeholders.reverse()) rmSync(p, { recursive: true, force: true });
    throw new Error(`${step.pos.file}:${step.pos.line}: run: --mount: ${(err as Error).message}`);
  }
  // Each line of each secret, longest first (a multi-line key is printed a line at a time).
  const secrets = secretLines(ctx.redact ?? []);
  const hide = (l: string) => redactLines(l, secrets);
  const onLine = ctx.onLine;
  let result;
  try {
    result = await runInSandbox({
      rootfs: ctx.rootfs,
      argv,
      env,
      uid: owner.uid,
      gid: owner.gid,
      groups: [...groups].sort((a, b) => a - b),
      workdir,
      network: step.network,
      resolvConf,
      hosts,
      isolation,
      tmpDir: ctx.tmpDir,
      mounts: placed.mounts,
      ...(onLine ? { onLine: (l: string) => onLine(hide(l)) } : {}),
    });
    result.tail = result.tail.map(hide);
  } finally {
    placed.remove();
    for (const p of placeholders.reverse()) rmSync(p, { recursive: true, force: true });
  }
  if (result.code !== 0 && isolation.kind === 'runc' && result.tail.some((l) => l.includes('runc run failed'))) {
    // runc itself could not start the container (no cgroups, a kernel without seccomp, ...).
    throw new RunStepError(
      step,
      result.code,
      result.tail,
      `"${describeCommand(step)}" under runc (runc could not start it, see its error below; --isolation chroot or the isolation: chroot input runs steps without runc)`,
    );
  }
  if (result.code !== 0)
    throw new RunStepError(step, result.code, result.tail, `"${describeCommand(step)}"`, fullDisk(ctx.rootfs, result.tail));
  const after = await takeSnapshotAsync(ctx.rootfs);
  const changes = diffSnapshots(ctx.rootfs, before, after);
  for (const p of changes.skipped) ctx.note?.(`run: ${p} is a socket, FIFO or device node; it is not put in the layer`);
  const idsChanged = [...changes.entries.map((e) => e.path), ...changes.deleted].some(
    (p) => p === '/etc/passwd' || p === '/etc/group' || p === '/etc',
  );
  return { ...changes, argv, uid: owner.uid, gid: owner.gid, idsChanged, snapshot: after };
}
