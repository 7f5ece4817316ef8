import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ownerAlive, ownerTag, trackContainer } from './cleanup.js';
import { runtimeSpec, type StepProcess } from './spec.js';

/**
 * A `run:` step in runc, the OCI runtime Docker, podman and buildah use: runc pivots into the
 * rootfs and applies the spec of spec.ts (namespaces, capabilities, seccomp, no_new_privs,
 * masked and read-only paths, device rules).
 *
 * runc is started by a small host shell that also watches its stdin, a pipe from the build:
 * when the build ends in any way, SIGKILL included, the pipe closes and the watcher kills and
 * deletes the container (runc's init is not our child and would outlive a killed runc). The
 * container state lives in our own runc root, so leftovers of killed builds are found by name.
 */

export const RUNC_STATE = '/run/oci-build/runc';
const ID_PREFIX = 'oci-build-';
let seq = 0;

// A background list's stdin is /dev/null unless redirected: the watcher reads the pipe as fd 3.
const SUPERVISOR = `RUNC=$1 STATE=$2 ID=$3 BUNDLE=$4
exec 3<&0
( while read -r _; do :; done
  "$RUNC" --root "$STATE" kill "$ID" KILL 2>/dev/null
  "$RUNC" --root "$STATE" delete -f "$ID" 2>/dev/null ) <&3 >/dev/null 2>&1 &
W=$!
"$RUNC" --root "$STATE" run --bundle "$BUNDLE" "$ID" </dev/null 3<&-
C=$?
kill $W 2>/dev/null
exit $C
`;

/** runc on this machine (PATH, then the usual directories), or undefined. */
export function findRunc(): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')),
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/sbin',
    '/usr/bin',
    '/sbin',
    '/bin',
  ];
  for (const d of dirs) {
    const p = join(d, 'runc');
    if (existsSync(p) && spawnSync(p, ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0) return p;
  }
  return undefined;
}

function deleteContainer(runc: string, id: string): void {
  spawnSync(runc, ['--root', RUNC_STATE, 'delete', '-f', id], { stdio: 'ignore', timeout: 30_000 });
}

/** Removes containers of builds that are gone (killed with SIGKILL before their watcher ran). */
export function removeStaleContainers(runc: string): void {
  if (!existsSync(RUNC_STATE)) return;
  const r = spawnSync(runc, ['--root', RUNC_STATE, 'list', '-q'], { encoding: 'utf8', timeout: 30_000 });
  for (const id of (r.stdout ?? '').split('\n').map((l) => l.trim())) {
    if (id.startsWith(ID_PREFIX) && !ownerAlive(id.slice(ID_PREFIX.length))) deleteContainer(runc, id);
  }
}

/**
 * Starts the step; `bundle` is a new private directory for config.json (the caller removes it).
 * The returned child is its own process group; `done` removes the interrupt hook.
 */
export function startRunc(runc: string, p: StepProcess, bundle: string): { child: ChildProcess; done: () => void } {
  const id = `${ID_PREFIX}${ownerTag()}-${++seq}`;
  mkdirSync(bundle, { mode: 0o700 });
  // 0600 in a 0700 directory: the spec holds the step's environment, which may hold secrets.
  // runc wants the rootfs without symlinks on the way.
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(runtimeSpec({ ...p, rootfs: realpathSync(p.rootfs) })), { mode: 0o600 });
  mkdirSync(RUNC_STATE, { recursive: true, mode: 0o700 });
  const child = spawn('/bin/sh', ['-c', SUPERVISOR, 'oci-build-runc', runc, RUNC_STATE, id, bundle], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
  });
  // Interrupts (SIGINT, SIGTERM, exit) remove the container synchronously.
  const untrack = trackContainer(id, () => deleteContainer(runc, id));
  return {
    child,
    done: () => {
      untrack();
      child.stdin?.destroy();
    },
  };
}
