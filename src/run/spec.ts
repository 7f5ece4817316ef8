import { readFileSync } from 'node:fs';
import { seccompProfile } from './seccomp.js';
import { specMounts, type SandboxMount } from './mounts.js';

/**
 * The OCI runtime spec (config.json) a `run:` step runs with under runc: what Docker gives a
 * container by default (capabilities, masked and read-only /proc paths, seccomp, no_new_privs),
 * with the build step's user, groups, environment and working directory.
 */

/**
 * Docker's default capability set (moby's oci/caps defaults; containerd's and podman's are the
 * same 14 minus/plus a few). CapEff of a root step: 0x00000000a80425fb.
 */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Hidden from the step (a file gets /dev/null, a directory an empty read-only tmpfs). As moby. */
export const MASKED_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** Read-only to the step: the kernel's settings and triggers. As moby. */
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface StepProcess {
  rootfs: string;
  argv: string[];
  env: string[];
  uid: number;
  gid: number;
  groups: number[];
  workdir: string;
  network: boolean;
  resolvConf: string;
  hosts: string;
  /** The step's own mounts (RUN --mount), after the sandbox's. */
  mounts?: readonly SandboxMount[];
}

/** The open-files limit: the build's own hard limit (capped), as soft and hard limit. */
function nofile(): number {
  try {
    const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    const hard = m?.[1] === 'unlimited' ? Infinity : Number(m?.[1]);
    if (Number.isFinite(hard) && hard > 0) return Math.min(hard, 1 << 20);
  } catch {
    /* not Linux /proc */
  }
  return 1024;
}

function bindRo(source: string, destination: string) {
  return { destination, type: 'bind', source, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] };
}

export function runtimeSpec(p: StepProcess): Record<string, unknown> {
  // Docker: a non-root user starts with no effective or permitted capabilities (the bounding
  // set stays, so setuid binaries such as su still work as in Docker).
  const caps = [...DEFAULT_CAPABILITIES];
  const held = p.uid === 0 ? caps : [];
  const mounts: Record<string, unknown>[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
  if (p.resolvConf) mounts.push(bindRo(p.resolvConf, '/etc/resolv.conf'));
  if (p.hosts) mounts.push(bindRo(p.hosts, '/etc/hosts'));
  if (p.mounts) mounts.push(...specMounts(p.mounts));
  const namespaces = [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, ...(p.network ? [] : [{ type: 'network' }])];
  const limit = nofile();
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: p.uid, gid: p.gid, additionalGids: p.groups, umask: 0o022 },
      args: p.argv,
      env: p.env,
      cwd: p.workdir,
      capabilities: { bounding: caps, effective: held, permitted: held, inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: limit, soft: limit }],
      noNewPrivileges: true,
    },
    root: { path: p.rootfs, readonly: false },
    mounts,
    linux: {
      namespaces,
      // Only the default devices (null, zero, full, random, urandom, tty, ptmx) may be opened or
      // made: a step cannot mknod its way to the host's disks.
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      seccomp: seccompProfile(),
    },
  };
}
