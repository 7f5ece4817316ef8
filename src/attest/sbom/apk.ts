import { PackageURL } from 'packageurl-js';
import { distroQualifier, type FoundPackage, type OsRelease } from './packages.js';

export const APK_INSTALLED = '/lib/apk/db/installed';

/**
 * Packages of apk's installed database: one block per package, one-letter keys
 * (P name, V version, A arch, L license, o origin), blocks separated by blank lines.
 */
export function parseApkInstalled(text: string, os: OsRelease | undefined): FoundPackage[] {
  const out: FoundPackage[] = [];
  const namespace = os?.id ?? 'alpine';
  const distro = distroQualifier(os);
  for (const block of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    for (const line of block.split('\n')) {
      const m = /^([A-Za-z]):(.*)$/.exec(line);
      if (m && !f.has(m[1]!)) f.set(m[1]!, m[2]!);
    }
    const name = f.get('P');
    const version = f.get('V');
    if (!name || !version) continue;
    const qualifiers: Record<string, string> = {};
    if (f.get('A')) qualifiers.arch = f.get('A')!;
    if (distro) qualifiers.distro = distro;
    if (f.get('o') && f.get('o') !== name) qualifiers.upstream = f.get('o')!;
    out.push({
      ecosystem: 'apk',
      name,
      version,
      purl: new PackageURL('apk', namespace, name, version, qualifiers, undefined).toString(),
      ...(f.get('L') ? { license: f.get('L')! } : {}),
      foundIn: APK_INSTALLED,
    });
  }
  return out;
}
