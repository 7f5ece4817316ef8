import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Cleanup of what `run:` steps leave on the host when the build is interrupted: sandbox process
 * groups are killed, mounts under our temporary directories are lazily unmounted (the sandbox
 * mounts inside its own mount namespace, so there should be none), then the temporary root file
 * systems are removed. Handlers run on SIGINT, SIGTERM and process exit, synchronously.
 *
 * A SIGKILL runs no handler: the runtime's own watcher removes the container (runc.ts), and the
 * next build removes what is left (removeStale): temporary root file systems and containers are
 * named after the build process that owns them (pid and start time), and only those whose owner
 * is gone are removed, so builds sharing a cache directory leave each other's alone.
 */

const processGroups = new Set<number>();
/** Containers to remove on interrupt: the function removes one (runc delete -f). */
const containers = new Map<string, () => void>();
const directories = new Set<string>();
let installed = false;

function unmountUnder(dir: string): void {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return;
  }
  const points = mounts
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' ') ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of points) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}

/** Kills sandbox processes, unmounts and removes every registered directory. Idempotent. */
export function cleanupNow(): void {
  // Containers first: their processes may not be in our process groups (runc's init is not).
  for (const remove of containers.values()) {
    try {
      remove();
    } catch {
      /* best effort */
    }
  }
  containers.clear();
  for (const pgid of processGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  processGroups.clear();
  for (const dir of directories) {
    unmountUnder(dir);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  directories.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  process.stderr.write(`oci-build: ${signal}: stopping run: steps and removing temporary root file systems\n`);
  cleanupNow();
  uninstallWhenIdle();
  // Die of the same signal, as the default handler would have.
  process.kill(process.pid, signal);
}

// The handlers are there only while something is tracked: otherwise signals keep their defaults.
function install(): void {
  if (installed) return;
  installed = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanupNow);
}

function uninstallWhenIdle(): void {
  if (!installed || processGroups.size || directories.size || containers.size) return;
  installed = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', cleanupNow);
}

export function trackProcessGroup(pgid: number): () => void {
  install();
  processGroups.add(pgid);
  return () => {
    processGroups.delete(pgid);
    uninstallWhenIdle();
  };
}

export function trackDirectory(dir: string): () => void {
  install();
  directories.add(dir);
  return () => {
    directories.delete(dir);
    uninstallWhenIdle();
  };
}

export function trackContainer(id: string, remove: () => void): () => void {
  install();
  containers.set(id, remove);
  return () => {
    containers.delete(id);
    uninstallWhenIdle();
  };
}

/** Start time of a process (clock ticks after boot, /proc/PID/stat field 22); undefined when gone. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** `PID-STARTTIME` of this process: names what it owns, unambiguously even after a pid is reused. */
export function ownerTag(): string {
  return `${process.pid}-${startTime(process.pid) ?? '0'}`;
}

/**
 * Whether the owner a name starts with (`PID-STARTTIME-…`, or `PID-…` as older builds named it)
 * is a live process. Unknown forms count as alive: only what is provably abandoned is removed.
 */
export function ownerAlive(rest: string): boolean {
  const tagged = /^(\d+)-(\d+)-[0-9a-f]+$/.exec(rest);
  const m = tagged ?? /^(\d+)-[0-9a-f]{8}$/.exec(rest);
  if (!m) return true;
  const start = startTime(Number(m[1]));
  if (start === undefined) return false;
  return tagged ? start === tagged[2] : true;
}

/**
 * Removes the temporary root file systems (`rootfs-OWNER-…`) in `parent` whose build is gone,
 * after `before` (which removes that build's leftover containers). Returns what was removed.
 */
export function removeStale(parent: string, before: () => void = () => {}): string[] {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const stale = names.filter((n) => n.startsWith('rootfs-') && !ownerAlive(n.slice('rootfs-'.length)));
  if (!stale.length) return [];
  before();
  for (const n of stale) {
    const dir = join(parent, n);
    unmountUnder(dir);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort: next build again */
    }
  }
  return stale;
}
