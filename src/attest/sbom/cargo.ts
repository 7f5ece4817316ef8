/**
 * Rust binaries built with cargo-auditable carry their dependency tree in an ELF section named
 * `.dep-v0`: zlib-compressed JSON, `{"packages":[{"name","version","source","kind"?,"root"?}]}`.
 */
import { inflateSync } from 'node:zlib';
import { PackageURL } from 'packageurl-js';
import type { FoundPackage } from './packages.js';

export const DEP_V0_SECTION = '.dep-v0';
/** Inflated JSON larger than this is refused (a real tree of a few thousand crates is far smaller). */
const MAX_JSON = 16 << 20;

interface AuditablePackage {
  name?: unknown;
  version?: unknown;
  source?: unknown;
  kind?: unknown;
}

/** The crates of a `.dep-v0` section's bytes; undefined when they are not cargo-auditable data. */
export function parseCargoAuditable(binaryPath: string, section: Buffer): FoundPackage[] | undefined {
  let doc: { packages?: AuditablePackage[] };
  try {
    doc = JSON.parse(inflateSync(section, { maxOutputLength: MAX_JSON }).toString('utf8')) as typeof doc;
  } catch {
    return undefined;
  }
  if (!Array.isArray(doc.packages)) return undefined;
  const out: FoundPackage[] = [];
  for (const p of doc.packages) {
    if (typeof p.name !== 'string' || typeof p.version !== 'string') continue;
    // Build-time crates (build scripts, proc macros) are not in the binary.
    if (p.kind === 'build') continue;
    // Only crates.io names are registry names; a local or git crate keeps its name without a repository claim.
    out.push({
      ecosystem: 'cargo',
      name: p.name,
      version: p.version,
      purl: new PackageURL('cargo', undefined, p.name, p.version, undefined, undefined).toString(),
      foundIn: binaryPath,
    });
  }
  return out;
}
