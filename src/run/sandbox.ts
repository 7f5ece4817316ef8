import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startChroot } from './chroot.js';
import { removeStale, trackProcessGroup } from './cleanup.js';
import { findRunc, removeStaleContainers, startRunc } from './runc.js';
import type { StepProcess } from './spec.js';

/**
 * Runs one command inside a root file system, isolated as a container build step is, with no
 * daemon, in one of two ways:
 *
 * - `runc` (the default where it is installed): the OCI runtime, with the spec of spec.ts —
 *   pivot_root, PID, mount and IPC namespaces (and network for `network: false`), Docker's
 *   default capabilities, seccomp profile, masked and read-only paths and device rules,
 *   no_new_privs (runc.ts);
 * - `chroot`: util-linux namespaces, pivot_root into a staging root, the same capabilities,
 *   masked and read-only paths and no_new_privs, nodev mounts instead of device rules, and no
 *   seccomp (chroot.ts).
 *
 * Either way the step's processes die with it (PID namespace) and with the build (runc's
 * watcher, or a parent-death signal), and the sandbox is its own process group, so an
 * interrupted build kills it (cleanup.ts).
 */

export type Isolation = 'runc' | 'chroot';
/** What the build asked for: `auto` is runc when installed, else chroot. */
export type IsolationChoice = Isolation | 'auto';

export interface SandboxSpec extends StepProcess {
  isolation: ResolvedIsolation;
  /** A private directory for the runtime's bundle or staging root. */
  tmpDir: string;
  /** Each output line (stdout and stderr), as it comes. */
  onLine?: (line: string) => void;
}

export interface ResolvedIsolation {
  kind: Isolation;
  /** The runc binary, for `runc`. */
  runc?: string;
  /** One line for the build's log saying what isolation run: steps get. */
  describe: string;
}

export interface SandboxResult {
  code: number;
  /** The last lines of output (stdout and stderr interleaved). */
  tail: string[];
}

const TAIL_LINES = 20;
const MAX_LINE = 2000;
const resolved = new Map<IsolationChoice, ResolvedIsolation>();

/**
 * Finds the runtime for `choice` (once per process) and removes containers left by killed
 * builds. `runc` without runc installed is an error saying how to get it or what to use instead.
 */
export function resolveIsolation(choice: IsolationChoice = 'auto'): ResolvedIsolation {
  let r = resolved.get(choice);
  if (r) return r;
  const runc = choice === 'chroot' ? undefined : findRunc();
  if (choice === 'runc' && !runc) {
    throw new Error(
      'isolation runc: runc was not found on PATH or in /usr/sbin, /usr/bin, /sbin, /bin; install it (Debian/Ubuntu: apt-get install runc) or use isolation chroot (util-linux, no seccomp)',
    );
  }
  if (runc) {
    removeStaleContainers(runc);
    r = {
      kind: 'runc',
      runc,
      describe: `run: steps run in ${runc} (pivot_root, Docker's default capabilities and seccomp profile, no_new_privs)`,
    };
  } else {
    r = {
      kind: 'chroot',
      describe:
        choice === 'chroot'
          ? "run: steps run in the chroot sandbox (isolation chroot): pivot_root, Docker's default capabilities, no_new_privs, read-only /proc/sys; no seccomp"
          : "run: no OCI runtime (runc) found: run: steps run in the chroot sandbox (pivot_root, Docker's default capabilities, no_new_privs, read-only /proc/sys; no seccomp); install runc for seccomp and device rules",
    };
  }
  resolved.set(choice, r);
  return r;
}

function collect(child: ChildProcess, spec: SandboxSpec, done: () => void): Promise<SandboxResult> {
  return new Promise((resolve, reject) => {
    const untrack = child.pid !== undefined ? trackProcessGroup(child.pid) : () => {};
    const finish = () => {
      untrack();
      done();
    };
    const tail: string[] = [];
    const line = (l: string) => {
      const s = l.length > MAX_LINE ? `${l.slice(0, MAX_LINE)}…` : l;
      tail.push(s);
      if (tail.length > TAIL_LINES) tail.shift();
      spec.onLine?.(s);
    };
    const splitter = () => {
      let rest = '';
      return {
        data: (d: Buffer) => {
          const parts = (rest + d.toString('utf8')).split(/\r?\n/);
          rest = parts.pop() ?? '';
          // Progress bars redraw with \r: keep the last state of such a line.
          for (const p of parts) line(p.slice(p.lastIndexOf('\r') + 1));
        },
        end: () => {
          if (rest) line(rest.slice(rest.lastIndexOf('\r') + 1));
          rest = '';
        },
      };
    };
    const out = splitter();
    const err = splitter();
    child.stdout?.on('data', out.data);
    child.stderr?.on('data', err.data);
    child.on('error', (e) => {
      finish();
      reject(e);
    });
    child.on('close', (code, signal) => {
      finish();
      out.end();
      err.end();
      const signo = signal ? ({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGSEGV: 11, SIGABRT: 6 }[signal as string] ?? 1) : 0;
      resolve({ code: code ?? 128 + signo, tail });
    });
  });
}

let seq = 0;

export async function runInSandbox(spec: SandboxSpec): Promise<SandboxResult> {
  const dir = join(spec.tmpDir, `sandbox-${process.pid}-${++seq}`);
  try {
    const { child, done } = spec.isolation.kind === 'runc' ? startRunc(spec.isolation.runc!, spec, dir) : startChroot(spec, dir);
    return await collect(child, spec, done);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Removes what killed builds left in `parent` (a cache directory): their containers first (a
 * container still running would hold its rootfs), then their temporary root file systems.
 * Only builds whose process is gone count; returns the names removed.
 */
export function removeLeftovers(parent: string): string[] {
  return removeStale(parent, () => {
    const runc = findRunc();
    if (runc) removeStaleContainers(runc);
  });
}
