import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { chrootMountLines } from './mounts.js';
import { DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS, type StepProcess } from './spec.js';

/**
 * The fallback where no OCI runtime is installed: util-linux only, hardened to what runc gives
 * except seccomp (util-linux 2.38's setpriv cannot load a filter):
 *
 *   setpriv --pdeathsig KILL                            dies with the build, even on SIGKILL
 *     unshare --mount --pid --fork --kill-child [--net]  (its child dies with it: --kill-child)
 *       sh -c SETUP                                      host shell, pid 1 of the namespace:
 *         the rootfs bound on itself nodev, /proc with READONLY_PATHS read-only and
 *         MASKED_PATHS hidden, a nodev tmpfs /dev with the default devices bound in, /sys
 *         read-only, resolv.conf/hosts read-only; then a read-only staging tmpfs holding the
 *         rootfs and only the host files the next programs need (bound read-only), and
 *         pivot_root into it: the host's root is unmounted from the namespace (umount needs a
 *         /proc there, unmounted right after), so a chroot escape inside the step ends in the
 *         staging tmpfs, never on the host
 *         exec env -i ENV… setpriv --regid G --groups … --bounding-set Docker's --inh-caps -all --nnp
 *           unshare --root /rootfs --wd W [--setuid U] -- CMD…
 */

// -f: the lists below are split on spaces and must never be globbed.
const SETUP = `set -euf
R=$1 S=$2 RESOLV=$3 HOSTS=$4 NET=$5 HELPERS=$6 RO=$7 MASK=$8 MOUNTS=$9
shift 9
umask 022
mount --bind "$R" "$R"
mount -o remount,bind,nodev "$R"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
for p in $RO; do
  [ -e "$R$p" ] || continue
  mount --bind "$R$p" "$R$p"; mount -o remount,bind,ro,nosuid,nodev,noexec "$R$p"
done
for p in $MASK; do
  if [ -d "$R$p" ]; then mount -t tmpfs -o ro,nosuid,nodev,noexec,size=0 masked "$R$p"
  elif [ -e "$R$p" ]; then mount --bind /dev/null "$R$p"; fi
done
mount -t tmpfs -o nosuid,nodev,noexec,mode=0755,size=16m oci-build-dev "$R/dev"
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
TAB=$(printf '\t')
if [ -n "$MOUNTS" ]; then
  printf '%s\n' "$MOUNTS" | while IFS=$TAB read -r kind src dst rw size; do
    if [ "$kind" = tmpfs ]; then
      opts=nosuid,nodev,mode=1777; [ "$size" = - ] || opts="$opts,size=$size"
      mount -t tmpfs -o "$opts" tmpfs "$dst"
    else
      mount --rbind "$src" "$dst"; mount -o "remount,bind,$rw,nosuid,nodev" "$dst"
    fi
  done
fi
if [ "$NET" = none ] && command -v ip >/dev/null 2>&1; then ip link set lo up 2>/dev/null || true; fi
mount -t tmpfs -o mode=0755,size=1m oci-build-stage "$S"
mkdir "$S/rootfs" "$S/.old" "$S/proc"
mount --rbind "$R" "$S/rootfs"
mount -t proc -o nosuid,nodev,noexec proc "$S/proc"
for f in $HELPERS; do
  mkdir -p "$S\${f%/*}"; : > "$S$f"
  mount --bind "$f" "$S$f"; mount -o remount,bind,ro,nosuid,nodev "$S$f"
done
mount -o remount,ro "$S"
cd "$S"
pivot_root . .old
umount -l /.old
umount -l /proc
cd /
exec "$@"
`;

function hostBinary(name: string): string {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    const p = `${dir}/${name}`;
    if (existsSync(p)) return realpathSync(p);
  }
  throw new Error(
    `run: steps need ${name} (util-linux/coreutils) on the build machine; it was not found in /usr/bin, /bin, /usr/sbin or /sbin`,
  );
}

let helperCache: string[] | undefined;
/** The programs run after pivot_root (umount, env, setpriv, unshare), their shared libraries and loader (from ldd), and ld.so.cache. */
function helperFiles(programs: string[]): string[] {
  if (helperCache) return helperCache;
  const files = new Set<string>(programs);
  for (const prog of programs) {
    const r = spawnSync('ldd', [prog], { encoding: 'utf8', timeout: 10_000 });
    for (const m of (r.stdout ?? '').matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) if (existsSync(m[1]!)) files.add(m[1]!);
  }
  if (existsSync('/etc/ld.so.cache')) files.add('/etc/ld.so.cache');
  for (const f of files)
    if (/\s/.test(f)) throw new Error(`run: the host file ${JSON.stringify(f)} has a space in its name; the chroot sandbox cannot bind it`);
  helperCache = [...files];
  return helperCache;
}

const capName = (c: string) => c.replace(/^CAP_/, '').toLowerCase();

/** Starts the step; `stage` is an empty directory for the staging tmpfs (removed by the caller). */
export function startChroot(p: StepProcess, stage: string): { child: ChildProcess; done: () => void } {
  const [unshare, setpriv, env, umount] = [hostBinary('unshare'), hostBinary('setpriv'), hostBinary('env'), hostBinary('umount')];
  const helpers = helperFiles([env, setpriv, unshare, umount]);
  mkdirSync(stage, { mode: 0o700 });
  const inner = [
    env,
    '-i',
    ...p.env,
    setpriv,
    '--regid',
    String(p.gid),
    ...(p.groups.length ? ['--groups', p.groups.join(',')] : ['--clear-groups']),
    '--bounding-set',
    `-all,${DEFAULT_CAPABILITIES.map((c) => `+${capName(c)}`).join(',')}`,
    '--inh-caps',
    '-all',
    '--no-new-privs',
    unshare,
    '--root',
    '/rootfs',
    '--wd',
    p.workdir,
    ...(p.uid !== 0 ? ['--setuid', String(p.uid)] : []),
    '--',
    ...p.argv,
  ];
  const args = [
    '--pdeathsig',
    'KILL',
    '--',
    unshare,
    '--mount',
    '--pid',
    '--fork',
    '--kill-child',
    '--propagation',
    'private',
    ...(p.network ? [] : ['--net']),
    '--',
    '/bin/sh',
    '-c',
    SETUP,
    'oci-build-sandbox',
    p.rootfs,
    stage,
    p.resolvConf,
    p.hosts,
    p.network ? 'host' : 'none',
    helpers.join(' '),
    READONLY_PATHS.join(' '),
    MASKED_PATHS.join(' '),
    chrootMountLines(p.mounts ?? []),
    ...inner,
  ];
  const child = spawn(setpriv, args, {
    detached: true, // its own process group, killed as a whole on interrupt
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
  });
  return { child, done: () => {} };
}
