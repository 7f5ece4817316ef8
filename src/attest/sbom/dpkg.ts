import { PackageURL } from 'packageurl-js';
import { distroQualifier, parseStanzas, type FoundPackage, type OsRelease } from './packages.js';

export const DPKG_STATUS = '/var/lib/dpkg/status';

/**
 * Installed packages of a dpkg status file. Only stanzas whose Status says "installed" count:
 * removed packages keep a stanza ("deinstall ok config-files") until purged.
 */
export function parseDpkgStatus(text: string, os: OsRelease | undefined): FoundPackage[] {
  const out: FoundPackage[] = [];
  const namespace = os?.id ?? 'debian';
  const distro = distroQualifier(os);
  for (const f of parseStanzas(text)) {
    const name = f.get('Package');
    const version = f.get('Version');
    const status = (f.get('Status') ?? '').split(/\s+/);
    if (!name || !version || status[2] !== 'installed') continue;
    const qualifiers: Record<string, string> = {};
    const arch = f.get('Architecture');
    if (arch) qualifiers.arch = arch;
    if (distro) qualifiers.distro = distro;
    // Binary packages built from a differently named source say so (Source: name [(version)]).
    const upstream = /^(\S+)/.exec(f.get('Source') ?? '')?.[1];
    if (upstream && upstream !== name) qualifiers.upstream = upstream;
    out.push({
      ecosystem: 'deb',
      name,
      version,
      purl: new PackageURL('deb', namespace, name, version, qualifiers, undefined).toString(),
      foundIn: DPKG_STATUS,
    });
  }
  return out;
}
