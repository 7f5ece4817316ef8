/**
 * Packages found in an image's final file system, one shape for every ecosystem. The readers in
 * this folder only parse package databases; finding and reading the files is scan.ts's job.
 */
export type Ecosystem = 'deb' | 'apk' | 'rpm' | 'npm' | 'pypi' | 'golang' | 'cargo';

export interface FoundPackage {
  ecosystem: Ecosystem;
  name: string;
  version: string;
  /** Package URL (purl spec), e.g. pkg:deb/debian/jq@1.6-2.1?arch=amd64&distro=debian-12. */
  purl: string;
  /** Declared license (SPDX id or expression, or free text), when the database names one. */
  license?: string;
  /** Where in the image the package was recorded (the database file). */
  foundIn: string;
}

/** The distribution, from /etc/os-release (ID, VERSION_ID): the purl namespace of OS packages. */
export interface OsRelease {
  id: string;
  versionId?: string;
  name?: string;
}

export function parseOsRelease(text: string): OsRelease | undefined {
  const fields = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(raw.trim());
    if (!m) continue;
    fields.set(m[1]!, m[2]!.replace(/^(["'])(.*)\1$/, '$2'));
  }
  const id = fields.get('ID');
  if (!id) return undefined;
  return {
    id: id.toLowerCase(),
    ...(fields.get('VERSION_ID') ? { versionId: fields.get('VERSION_ID')! } : {}),
    ...(fields.get('PRETTY_NAME') ? { name: fields.get('PRETTY_NAME')! } : {}),
  };
}

/** The `distro` purl qualifier: debian-12, alpine-3.20. */
export function distroQualifier(os: OsRelease | undefined): string | undefined {
  return os?.versionId ? `${os.id}-${os.versionId}` : undefined;
}

/** Splits RFC 822-style stanzas (dpkg status, METADATA headers); continuation lines join the field. */
export function parseStanzas(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const block of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of block.split('\n')) {
      if (/^[ \t]/.test(line)) {
        if (last) fields.set(last, `${fields.get(last)}\n${line.trim()}`);
        continue;
      }
      const i = line.indexOf(':');
      if (i <= 0) continue;
      last = line.slice(0, i).trim();
      // A repeated header (METADATA's Classifier) keeps the first value: we only read single ones.
      if (!fields.has(last)) fields.set(last, line.slice(i + 1).trim());
    }
    if (fields.size) out.push(fields);
  }
  return out;
}
