import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ownerAlive, ownerTag, trackDirectory } from '../run/cleanup.js';

/**
 * A cache mount's lock across processes (builds sharing one --cache-dir): `<dir>.lock` holds its
 * owner's `PID-STARTTIME-NONCE`, written beside it and hard-linked into place (the link fails
 * if the lock exists, and a lock is never seen half written). It is removed when the step is done and
 * on exit or SIGINT/SIGTERM (cleanup.ts); after a SIGKILL the next build finds its owner gone
 * (no such pid, or one with another start time) and takes it over. (Two builds finding the same
 * stale lock at once both remove it and race for the link, which one wins; only a build that
 * takes the lock between another's staleness check and its removal could lose it, and two would
 * hold it at once: a window of microseconds that only a crashed holder opens.)
 */

const POLL_MS = 100;

export function lockPath(dir: string): string {
  return `${dir}.lock`;
}

/** The live owner of a lock, or undefined when it is free (a stale one is removed). */
export function lockOwner(dir: string): string | undefined {
  let owner: string;
  try {
    owner = readFileSync(lockPath(dir), 'utf8').trim();
  } catch {
    return undefined;
  }
  if (ownerAlive(owner)) return owner;
  rmSync(lockPath(dir), { force: true });
  return undefined;
}

/** Takes the lock if it is free; returns its release, or undefined when someone alive holds it. */
export function tryLock(dir: string): (() => void) | undefined {
  const owner = `${ownerTag()}-${randomBytes(4).toString('hex')}`;
  const mine = `${lockPath(dir)}.${owner}`;
  mkdirSync(dirname(dir), { recursive: true });
  writeFileSync(mine, `${owner}\n`, { mode: 0o644 });
  try {
    linkSync(mine, lockPath(dir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return lockOwner(dir) === undefined ? tryLock(dir) : undefined;
  } finally {
    rmSync(mine, { force: true });
  }
  const untrack = trackDirectory(lockPath(dir)); // removed on exit like a temporary directory
  return () => {
    rmSync(lockPath(dir), { force: true });
    untrack();
  };
}

/** Waits until the lock is free, then takes it (`waiting` is called once if it has to wait). */
export async function lock(dir: string, waiting?: (owner: string) => void): Promise<() => void> {
  let told = false;
  for (;;) {
    const release = tryLock(dir);
    if (release) return release;
    if (!told) waiting?.(lockOwner(dir) ?? 'another build');
    told = true;
    await sleep(POLL_MS);
  }
}
