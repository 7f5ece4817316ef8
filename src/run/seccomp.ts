/**
 * The seccomp profile of `run:` steps under runc, generated from the list below.
 *
 * Where the list comes from: Docker's default profile (moby's profiles/seccomp) is an allowlist
 * of about 350 syscalls with default EPERM; for a container with Docker's default capability set
 * the syscalls it leaves out are the ones Docker's documentation names as "significant syscalls
 * blocked by the default profile", plus the ones moby gates on CAP_SYS_ADMIN, CAP_SYS_MODULE,
 * CAP_SYS_BOOT, CAP_SYS_TIME, CAP_SYS_PACCT, CAP_SYS_NICE, CAP_SYSLOG or CAP_SYS_RAWIO. We write
 * that complement as a denylist (default allow) instead of copying the allowlist: it is short
 * enough to review here, and every entry says what it protects. Differences from Docker, on
 * purpose:
 *  - syscalls newer than this list are allowed (Docker returns EPERM/ENOSYS for them); the
 *    capability set, no_new_privs and the namespaces still bound what they can do;
 *  - ptrace and process_vm_readv/writev stay allowed as in moby since kernel 4.8 (the kernel
 *    limits them to the step's own processes without CAP_SYS_PTRACE);
 *  - personality is allowed with any argument (moby allows only a few personas).
 * clone with namespace flags fails with EPERM, and clone3 (whose flags seccomp cannot read)
 * fails with ENOSYS so that libc falls back to clone, as in moby since 20.10.
 */

const EPERM = 1;
const ENOSYS = 38;

const DENIED: readonly string[] = [
  // Kernel modules, kexec, reboot, swap, accounting.
  'init_module',
  'finit_module',
  'delete_module',
  'create_module',
  'query_module',
  'get_kernel_syms',
  'kexec_load',
  'kexec_file_load',
  'reboot',
  'swapon',
  'swapoff',
  'acct',
  // Mounts and namespaces: a step gets its file system from us, never from mount(2).
  'mount',
  'umount',
  'umount2',
  'pivot_root',
  'setns',
  'unshare',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'move_mount',
  'open_tree',
  'mount_setattr',
  // Clocks shared with the host.
  'settimeofday',
  'stime',
  'clock_settime',
  'clock_adjtime',
  // The kernel keyring is not namespaced.
  'add_key',
  'request_key',
  'keyctl',
  // Kernel attack surface and host information.
  'bpf',
  'perf_event_open',
  'userfaultfd',
  'lookup_dcookie',
  'kcmp',
  'syslog',
  '_sysctl',
  'sysfs',
  'ustat',
  'uselib',
  'nfsservctl',
  'quotactl',
  'quotactl_fd',
  'fanotify_init',
  // File handles bypass the mount namespace (the "shocker" escape).
  'open_by_handle_at',
  'name_to_handle_at',
  // Raw I/O ports and NUMA placement of memory.
  'iopl',
  'ioperm',
  'vm86',
  'vm86old',
  'mbind',
  'move_pages',
  'set_mempolicy',
  'get_mempolicy',
];

/** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET and NEWTIME. */
const CLONE_NAMESPACES = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080];

interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
}

export interface SeccompProfile {
  defaultAction: string;
  architectures: string[];
  syscalls: SeccompRule[];
}

function architectures(): string[] {
  // The native ABI and its compat ABIs, so a 32-bit binary cannot bypass the list.
  switch (process.arch) {
    case 'x64':
      return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'arm64':
      return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    case 'ppc64':
      return ['SCMP_ARCH_PPC64LE'];
    case 's390x':
      return ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'];
    default:
      return [];
  }
}

export function seccompProfile(): SeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: architectures(),
    syscalls: [
      { names: [...DENIED], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      // One rule per flag (rules on one syscall are ORed): EPERM when (flags & bit) == bit. On
      // s390 the flags are the second argument; everywhere else the first.
      ...CLONE_NAMESPACES.map((bit) => ({
        names: ['clone'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: EPERM,
        args: [{ index: process.arch === 's390x' ? 1 : 0, value: bit, valueTwo: bit, op: 'SCMP_CMP_MASKED_EQ' }],
      })),
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
    ],
  };
}
