import { PackageURL } from 'packageurl-js';
import { parseStanzas, type FoundPackage } from './packages.js';

/** node_modules/<name>/package.json or node_modules/@scope/<name>/package.json, at any depth. */
export const NODE_MANIFEST = /\/node_modules\/(?:@[^/]+\/)?[^/@.][^/]*\/package\.json$/;
/** An installed Python distribution's metadata (site-packages/<name>-<version>.dist-info/METADATA). */
export const PYTHON_METADATA = /\/[^/]+\.dist-info\/METADATA$/;

function licenseOf(v: unknown): string | undefined {
  if (typeof v === 'string' && v.trim()) return v.trim();
  // The old form: { "type": "MIT" } (or a list of them).
  if (v && typeof v === 'object' && !Array.isArray(v) && typeof (v as { type?: unknown }).type === 'string')
    return (v as { type: string }).type;
  return undefined;
}

/** A package.json in node_modules; undefined for one without a name and version (a nested fixture, a workspace stub). */
export function parseNodePackage(path: string, text: string): FoundPackage | undefined {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { name, version } = doc;
  if (typeof name !== 'string' || typeof version !== 'string' || !name || !version) return undefined;
  const scoped = /^(@[^/]+)\/(.+)$/.exec(name);
  const purl = new PackageURL('npm', scoped ? scoped[1]! : undefined, scoped ? scoped[2]! : name, version, undefined, undefined).toString();
  const license = licenseOf(doc.license);
  return { ecosystem: 'npm', name, version, purl, ...(license ? { license } : {}), foundIn: path };
}

/** PEP 503 name normalization, which the pypi purl type requires. */
function normalizePythonName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** The header of a core-metadata file (Name, Version, License / License-Expression). */
export function parsePythonMetadata(path: string, text: string): FoundPackage | undefined {
  // The header ends at the first blank line; the rest is the long description.
  const header = parseStanzas(text.split(/\r?\n\r?\n/, 1)[0] ?? '')[0];
  const name = header?.get('Name');
  const version = header?.get('Version');
  if (!header || !name || !version) return undefined;
  const license =
    header.get('License-Expression') ??
    (header.get('License') && header.get('License') !== 'UNKNOWN' && !header.get('License')!.includes('\n')
      ? header.get('License')
      : undefined);
  return {
    ecosystem: 'pypi',
    name,
    version,
    purl: new PackageURL('pypi', undefined, normalizePythonName(name), version, undefined, undefined).toString(),
    ...(license ? { license } : {}),
    foundIn: path,
  };
}
