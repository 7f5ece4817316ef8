import { spawn, spawnSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { VariantSpec } from '../config/model.js';
import type { Logger } from '../log.js';
import { platformSpecs } from '../config/per-platform.js';

/**
 * `run:` steps (and `copy: from:`, which reads an extracted root file system) need root: mount
 * and PID namespaces, chroot, and files owned by any user. As root they run directly. Otherwise,
 * when this user has passwordless sudo (GitHub-hosted runners do), the whole command is run again
 * as root through `sudo -n` — the same entry point with the same arguments and environment — and
 * what it created (cache, digest map, outputs) is given back to this user afterwards. Without
 * sudo the build stops before any work with what is needed.
 */

export const ELEVATED_ENV = 'OCI_BUILD_ELEVATED';

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

const NEED = 'run oci-build as root, or give this user passwordless sudo (sudo -n true must succeed), as GitHub-hosted runners do';

export function requireRoot(what: string): void {
  if (!isRoot()) throw new Error(`${what} need root (mount and PID namespaces, chroot, files of any owner): ${NEED}`);
}

/** Why a build needs root: the variants with run: or copy: from: steps. */
export function rootReasons(variants: readonly VariantSpec[]): string[] {
  const out: string[] = [];
  for (const v of variants) {
    const kinds = new Set<string>();
    for (const s of platformSpecs(v).flatMap((spec) => spec.steps)) {
      if (s.kind === 'run') kinds.add('run:');
      if (s.kind === 'copy' && s.from !== undefined) kinds.add('copy: from:');
    }
    if (kinds.size) out.push(`${v.name} (${[...kinds].join(', ')})`);
  }
  return out;
}

function sudoWorks(): boolean {
  const r = spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore', timeout: 15_000 });
  return r.status === 0;
}

/**
 * Thrown when the build has run, as root, in a child process (sudo): this process has nothing
 * left to do but end with the child's exit code. The entry points (cli.ts, action.ts) do that;
 * nothing inside the pipeline ends the process.
 */
export class RanAsRoot extends Error {
  constructor(readonly exitCode: number) {
    super(`the build ran as root through sudo and exited with ${exitCode}`);
    this.name = 'RanAsRoot';
  }
}

/**
 * Returns when this process may build `variants` (root, or nothing needs root). Otherwise
 * re-runs the command as root with sudo and throws RanAsRoot with its exit code, or throws an
 * error when sudo is not available. `created` are the paths the run writes (handed back afterwards).
 */
export async function elevateIfNeeded(variants: readonly VariantSpec[], created: (string | undefined)[], logger: Logger): Promise<void> {
  const reasons = rootReasons(variants);
  if (!reasons.length || isRoot()) return;
  const what = `variant(s) ${reasons.join(', ')}`;
  if (process.env[ELEVATED_ENV]) throw new Error(`${what}: still not root after sudo; ${NEED}`);
  if (!sudoWorks())
    throw new Error(
      `${what} need root (mount and PID namespaces, chroot, files of any owner), and this is uid ${process.getuid?.()} without passwordless sudo: ${NEED}`,
    );
  const script = process.argv[1];
  if (!script) throw new Error(`${what} need root: ${NEED}`);
  logger.info(`${what} need root: running this build again as root with sudo -n`);
  const env = [
    `${ELEVATED_ENV}=1`,
    `HOME=${process.env.HOME ?? homedir()}`,
    `DOCKER_CONFIG=${process.env.DOCKER_CONFIG ?? join(process.env.HOME ?? homedir(), '.docker')}`,
    `PATH=${process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
  ];
  const args = ['-n', '-E', '--', '/usr/bin/env', ...env, process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const code = await new Promise<number>((done) => {
    const child = spawn('sudo', args, { stdio: 'inherit' });
    // sudo relays these to the command (which runs as root and cannot be signalled from here).
    const relay = (sig: NodeJS.Signals) => {
      child.kill(sig);
    };
    process.on('SIGINT', relay);
    process.on('SIGTERM', relay);
    child.on('error', () => done(1));
    child.on('close', (c, sig) => {
      process.off('SIGINT', relay);
      process.off('SIGTERM', relay);
      done(c ?? (sig === 'SIGINT' ? 130 : 143));
    });
  });
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  const paths = [...new Set(created.filter((p): p is string => !!p).map((p) => resolve(p)))].filter((p) => p !== '/');
  if (uid !== undefined && gid !== undefined && paths.length) {
    // Only what root created (root:root) changes owner; -h: symlinks themselves, never their targets.
    spawnSync('sudo', ['-n', 'chown', '-R', '-h', '--from=0:0', `${uid}:${gid}`, '--', ...paths], { stdio: 'ignore' });
  }
  throw new RanAsRoot(code);
}
