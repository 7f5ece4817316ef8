import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from './exec.js';

/**
 * A private containerd (its own root, state and socket under a temporary directory, the native
 * snapshotter, no CRI) for checking what containerd makes of our images. Needs root.
 */
export interface TestContainerd {
  ctr(args: string[], opts?: { allowFail?: boolean; timeoutMs?: number }): Promise<RunResult>;
  stop(): Promise<void>;
}

export function containerdAvailable(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/bin/containerd') && existsSync('/usr/bin/ctr');
}

export async function startContainerd(): Promise<TestContainerd> {
  const dir = mkdtempSync(join(tmpdir(), 'oci-build-containerd-'));
  const sock = join(dir, 'c.sock');
  writeFileSync(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
      '[grpc]',
      `  address = "${sock}"`,
      '',
    ].join('\n'),
  );
  const log = openSync(join(dir, 'containerd.log'), 'a');
  const proc: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: ['ignore', log, log] });
  const ctr = (args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}) =>
    run('ctr', ['-a', sock, '-n', 'oci-build-test', ...args], opts);
  for (let i = 0; ; i++) {
    if ((await ctr(['version'], { allowFail: true })).code === 0) break;
    if (i > 50) throw new Error(`containerd did not start; see ${dir}/containerd.log`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    ctr,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => {
        if (proc.exitCode !== null) r(undefined);
        else proc.once('exit', r);
      });
      await run('umount', ['-R', join(dir, 'state')], { allowFail: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
