/**
 * Finds the packages of an image's final file system. Layers are applied in order with OCI
 * whiteout semantics by the layer reader (scanLayers), which streams every layer and buffers only
 * the files asked for: here the package databases, which are small.
 *
 * Pass 1 reads the fixed databases (dpkg, apk, os-release) and lists every path; pass 2, only when
 * pass 1 saw language-package manifests, reads those. Layers are opened afresh for each pass.
 */
import { scanLayers, readFilesFromLayers, type LayerSource } from '../../layer/reader.js';
import { APK_INSTALLED, parseApkInstalled } from './apk.js';
import { DPKG_STATUS, parseDpkgStatus } from './dpkg.js';
import { NODE_MANIFEST, PYTHON_METADATA, parseNodePackage, parsePythonMetadata } from './lang.js';
import { parseOsRelease, type FoundPackage, type OsRelease } from './packages.js';
import { scanBigFiles } from './executables.js';
import { RPMDB_SQLITE } from './rpm.js';

export type { LayerSource };

const OS_RELEASE = ['/etc/os-release', '/usr/lib/os-release'];
/** More manifests than this are not read (a pathological image must not make the scan unbounded). */
const MAX_LANGUAGE_FILES = 20_000;
/** Language manifests larger than this are skipped (a real package.json or METADATA header is far smaller). */
const MAX_LANGUAGE_FILE_SIZE = 1 << 20;
/** Executables looked into for Go build info and cargo-auditable data (streamed, never buffered whole). */
const MAX_EXECUTABLES = 20_000;
/** Smaller files are scripts or stubs, not linked programs. */
const MIN_EXECUTABLE_SIZE = 4096;
const RPM_BERKELEY_DB = ['/var/lib/rpm/Packages', '/usr/lib/sysimage/rpm/Packages'];

export interface ImagePackages {
  os?: OsRelease;
  packages: FoundPackage[];
  /** What was found but could not be read (the document says so rather than look complete). */
  notes?: string[];
}

const text = (b: Buffer | null | undefined): string | undefined => (b ? b.toString('utf8') : undefined);

/** The packages of the image whose layers (bottom first, each an uncompressed or compressed tar) are given. */
export async function scanImagePackages(layers: readonly LayerSource[]): Promise<ImagePackages> {
  const first = await scanLayers(layers, { wanted: [...OS_RELEASE, DPKG_STATUS, APK_INSTALLED], listPaths: true });
  const osText = OS_RELEASE.map((p) => text(first.files.get(p))).find((t) => t !== undefined);
  const os = osText ? parseOsRelease(osText) : undefined;
  const packages: FoundPackage[] = [];
  const dpkg = text(first.files.get(DPKG_STATUS));
  if (dpkg) packages.push(...parseDpkgStatus(dpkg, os));
  const apk = text(first.files.get(APK_INSTALLED));
  if (apk) packages.push(...parseApkInstalled(apk, os));

  const candidates: string[] = [];
  const executables = new Set<string>();
  for (const [path, info] of first.paths ?? []) {
    if (info.type === 'file' && info.mode & 0o111 && (info.size ?? 0) >= MIN_EXECUTABLE_SIZE && executables.size < MAX_EXECUTABLES)
      executables.add(path);
    if (info.type !== 'file' || (info.size ?? 0) > MAX_LANGUAGE_FILE_SIZE) continue;
    if (NODE_MANIFEST.test(path) || PYTHON_METADATA.test(path)) candidates.push(path);
    if (candidates.length >= MAX_LANGUAGE_FILES) break;
  }
  if (candidates.length) {
    const files = await readFilesFromLayers(layers, candidates);
    for (const path of candidates) {
      const t = text(files.get(path));
      if (t === undefined) continue;
      const found = NODE_MANIFEST.test(path) ? parseNodePackage(path, t) : parsePythonMetadata(path, t);
      if (found) packages.push(found);
    }
  }
  const notes: string[] = [];
  const rpmdb = RPMDB_SQLITE.find((p) => first.paths?.get(p)?.type === 'file');
  const berkeley = RPM_BERKELEY_DB.find((p) => first.paths?.get(p)?.type === 'file');
  if (berkeley && !rpmdb)
    notes.push(`rpm packages not listed: ${berkeley} is a BerkeleyDB rpm database, which is not read (rpmdb.sqlite is)`);
  if (executables.size || rpmdb) {
    const big = await scanBigFiles(layers, { executables, ...(rpmdb ? { rpmdb } : {}) }, os);
    packages.push(...big.packages);
    notes.push(...big.notes);
  }
  return { ...(os ? { os } : {}), packages: dedupe(packages), ...(notes.length ? { notes } : {}) };
}

/** One entry per purl (the same npm package installed in two places is one component), sorted for stable output. */
function dedupe(packages: FoundPackage[]): FoundPackage[] {
  const byPurl = new Map<string, FoundPackage>();
  for (const p of packages) if (!byPurl.has(p.purl)) byPurl.set(p.purl, p);
  return [...byPurl.values()].sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : 0));
}
