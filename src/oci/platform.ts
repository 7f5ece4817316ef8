import type { Platform } from './types.js';

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', x64: 'amd64' };

/** Normalize as containerd does: arm64 means arm64/v8, arm means arm/v7, amd64 has no variant. */
export function normalizePlatform(p: Platform): Platform {
  const architecture = ARCH_ALIASES[p.architecture] ?? p.architecture;
  let variant = p.variant || undefined;
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  if (architecture === 'arm' && !variant) variant = 'v7';
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return { ...p, os: p.os, architecture, ...(variant ? { variant } : { variant: undefined }) };
}

export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[a-z0-9_.-]+$/.test(x))) {
    throw new Error(`invalid platform "${s}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  return normalizePlatform({ os: parts[0]!, architecture: parts[1]!, variant: parts[2] });
}

export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return [n.os, n.architecture, n.variant].filter(Boolean).join('/');
}

export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const a = normalizePlatform(want);
  const b = normalizePlatform(have);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/** The platform of the machine we run on, as an OCI platform. */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return normalizePlatform({ os: 'linux', architecture: arch[process.arch] ?? process.arch });
}

/** The platform object written in descriptors: always the same keys in the same order. */
export function descriptorPlatform(p: Platform): Platform {
  const n = normalizePlatform(p);
  return { architecture: n.architecture, os: n.os, ...(n.variant ? { variant: n.variant } : {}) };
}
