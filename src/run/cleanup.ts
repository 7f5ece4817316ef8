import { readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

/**
 * Cleanup of what `run:` steps leave on the host when the build is interrupted: sandbox process
 * groups are killed, mounts under our temporary directories are lazily unmounted (the sandbox
 * mounts inside its own mount namespace, so there should be none), then the temporary root file
 * systems are removed. Handlers run on SIGINT, SIGTERM and process exit, synchronously.
 */

const processGroups = new Set<number>();
const directories = new Set<string>();
let installed = false;

function unmountUnder(dir: string): void {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return;
  }
  const points = mounts.split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' ') ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of points) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}

/** Kills sandbox processes, unmounts and removes every registered directory. Idempotent. */
export function cleanupNow(): void {
  for (const pgid of processGroups) {
    try { process.kill(-pgid, 'SIGKILL'); } catch { /* already gone */ }
  }
  processGroups.clear();
  for (const dir of directories) {
    unmountUnder(dir);
    try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
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
  if (!installed || processGroups.size || directories.size) return;
  installed = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('exit', cleanupNow);
}

export function trackProcessGroup(pgid: number): () => void {
  install();
  processGroups.add(pgid);
  return () => { processGroups.delete(pgid); uninstallWhenIdle(); };
}

export function trackDirectory(dir: string): () => void {
  install();
  directories.add(dir);
  return () => { directories.delete(dir); uninstallWhenIdle(); };
}
