import { readFileSync } from 'node:fs';
import type { Platform } from '../oci/types.js';
import { formatPlatform, hostPlatform } from '../oci/platform.js';

/** QEMU's binfmt_misc entry names, by OCI architecture. */
const QEMU_NAMES: Record<string, string> = {
  amd64: 'qemu-x86_64',
  arm64: 'qemu-aarch64',
  arm: 'qemu-arm',
  '386': 'qemu-i386',
  ppc64le: 'qemu-ppc64le',
  s390x: 'qemu-s390x',
  riscv64: 'qemu-riscv64',
  mips64le: 'qemu-mips64el',
  loong64: 'qemu-loongarch64',
};

/**
 * Whether this machine can execute programs of `platform`: natively, or through an enabled
 * binfmt_misc emulator (as docker/setup-qemu-action registers).
 */
export function canExecute(platform: Platform, binfmtDir = '/proc/sys/fs/binfmt_misc'): { ok: boolean; how: string } {
  const host = hostPlatform();
  if (platform.os !== host.os) return { ok: false, how: 'another OS' };
  if (platform.architecture === host.architecture) return { ok: true, how: 'native' };
  // amd64 hosts run 386 natively, arm64 hosts usually run arm.
  if (host.architecture === 'amd64' && platform.architecture === '386') return { ok: true, how: 'native' };
  const name = QEMU_NAMES[platform.architecture];
  if (!name) return { ok: false, how: 'no emulator known' };
  try {
    const entry = readFileSync(`${binfmtDir}/${name}`, 'utf8');
    if (/^enabled/m.test(entry)) return { ok: true, how: `binfmt_misc ${name}` };
  } catch {
    /* not registered */
  }
  return { ok: false, how: 'no emulator registered' };
}

export function foreignPlatformMessage(platform: Platform): string {
  const p = formatPlatform(platform);
  return (
    `run: steps for ${p} cannot execute on this ${formatPlatform(hostPlatform())} machine: no binfmt_misc emulator is registered for it. ` +
    `Fix: build ${p} on a matching runner (e.g. ubuntu-24.04-arm for linux/arm64) with distribute: true and merge the results (mode: merge), ` +
    'or register QEMU first (docker/setup-qemu-action, or the qemu-user-static package)'
  );
}
