import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { trackProcessGroup } from './cleanup.js';

/**
 * Runs one command inside a root file system, isolated the way a container build step is, with
 * util-linux and no daemon:
 *
 *   unshare --mount --pid --fork --kill-child [--net]      new mount and PID namespaces (and network)
 *     sh -c SETUP                                          host shell, pid 1 of the new namespace:
 *       mount proc, a tmpfs /dev with null/zero/full/random/urandom/tty bound from the host,
 *       /dev/shm, /dev/pts, sysfs read-only, and read-only copies of the host's resolv.conf and
 *       hosts over the image's (the mounts live and die with the namespace; nothing is mounted
 *       on the host and nothing mounted ends up in the layer)
 *       exec env -i ENV... setpriv --regid G --groups …    exactly the step's environment and groups
 *         unshare --root R --wd W [--setuid U] -- CMD…     chroot, cd, drop to the user, exec
 *
 * When the command exits, the PID namespace's init is gone and the kernel kills whatever it
 * left running (daemons started by package scripts). The sandbox is its own process group, so
 * an interrupted build kills it (cleanup.ts).
 */

export interface SandboxSpec {
  rootfs: string;
  argv: string[];
  /** KEY=VALUE, exactly the environment the command gets. */
  env: string[];
  uid: number;
  gid: number;
  /** Supplementary groups. */
  groups: number[];
  /** Absolute path inside the rootfs; must exist. */
  workdir: string;
  network: boolean;
  /** Host files bound read-only over the image's /etc/resolv.conf and /etc/hosts ('' to skip). */
  resolvConf: string;
  hosts: string;
  /** Each output line (stdout and stderr), as it comes. */
  onLine?: (line: string) => void;
}

export interface SandboxResult {
  code: number;
  /** The last lines of output (stdout and stderr interleaved). */
  tail: string[];
}

const TAIL_LINES = 20;
const MAX_LINE = 2000;

const SETUP = `set -eu
R=$1 RESOLV=$2 HOSTS=$3 NET=$4
shift 4
umask 022
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t tmpfs -o nosuid,noexec,mode=0755,size=16m oci-build-dev "$R/dev"
for n in null zero full random urandom tty; do
  : > "$R/dev/$n"
  mount --bind "/dev/$n" "$R/dev/$n"
done
mkdir -m 1777 "$R/dev/shm"
mkdir -m 0755 "$R/dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts" 2>/dev/null || true
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys" 2>/dev/null || true
if [ -n "$RESOLV" ]; then mount --bind "$RESOLV" "$R/etc/resolv.conf"; mount -o remount,bind,ro "$R/etc/resolv.conf"; fi
if [ -n "$HOSTS" ]; then mount --bind "$HOSTS" "$R/etc/hosts"; mount -o remount,bind,ro "$R/etc/hosts"; fi
if [ "$NET" = none ] && command -v ip >/dev/null 2>&1; then ip link set lo up 2>/dev/null || true; fi
exec "$@"
`;

function hostBinary(name: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    const p = `${dir}/${name}`;
    if (existsSync(p)) return p;
  }
  throw new Error(`run: steps need ${name} (util-linux/coreutils) on the build machine; it was not found in /usr/bin, /bin, /usr/sbin or /sbin`);
}

export function runInSandbox(spec: SandboxSpec): Promise<SandboxResult> {
  const unshare = hostBinary('unshare');
  const setpriv = hostBinary('setpriv');
  const env = hostBinary('env');
  const inner = [
    env, '-i', ...spec.env,
    setpriv, '--regid', String(spec.gid), ...(spec.groups.length ? ['--groups', spec.groups.join(',')] : ['--clear-groups']),
    unshare, '--root', spec.rootfs, '--wd', spec.workdir, ...(spec.uid !== 0 ? ['--setuid', String(spec.uid)] : []),
    '--', ...spec.argv,
  ];
  const args = [
    '--mount', '--pid', '--fork', '--kill-child', '--propagation', 'private', ...(spec.network ? [] : ['--net']),
    '--', '/bin/sh', '-c', SETUP, 'oci-build-sandbox', spec.rootfs, spec.resolvConf, spec.hosts, spec.network ? 'host' : 'none',
    ...inner,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(unshare, args, {
      detached: true, // its own process group, killed as a whole on interrupt
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
    });
    const untrack = child.pid !== undefined ? trackProcessGroup(child.pid) : () => {};
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
        end: () => { if (rest) line(rest.slice(rest.lastIndexOf('\r') + 1)); rest = ''; },
      };
    };
    const out = splitter();
    const err = splitter();
    child.stdout.on('data', out.data);
    child.stderr.on('data', err.data);
    child.on('error', (e) => { untrack(); reject(e); });
    child.on('close', (code, signal) => {
      untrack();
      out.end();
      err.end();
      const signo = signal ? { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGSEGV: 11, SIGABRT: 6 }[signal as string] ?? 1 : 0;
      resolve({ code: code ?? 128 + signo, tail });
    });
  });
}
