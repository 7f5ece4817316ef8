/**
 * Finds the packages of an image's final file system. Layers are applied in order with OCI
 * whiteout semantics by the layer reader, which streams every layer and buffers only the files
 * asked for: here the package databases and language-package manifests, which are small.
 * `packagesOfTree` reads a tree the caller built in its one pass over the layers (inventory.ts
 * builds it once per base and continues from a snapshot).
 */
import type { FsTree, PathInfo } from '../../layer/fstree.js';
import type { LayerSource } from '../../layer/reader.js';
import { APK_INSTALLED, parseApkInstalled } from './apk.js';
import { DPKG_STATUS, parseDpkgStatus } from './dpkg.js';
import { NODE_MANIFEST, PYTHON_METADATA, parseNodePackage, parsePythonMetadata } from './lang.js';
import { parseOsRelease, type FoundPackage, type OsRelease } from './packages.js';
import { RPMDB_SQLITE } from './rpm.js';

export type { LayerSource };

const OS_RELEASE = ['/etc/os-release', '/usr/lib/os-release'];
/** The package databases and os-release, read wherever they are. */
const FIXED_FILES = [...OS_RELEASE, DPKG_STATUS, APK_INSTALLED];
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

/** A regular file worth looking into for Go build info or cargo-auditable data. */
export function isExecutableCandidate(mode: number, size: number): boolean {
  return (mode & 0o111) !== 0 && size >= MIN_EXECUTABLE_SIZE;
}

/** The final file system's files too big to buffer that hold package records. */
export interface BigFiles {
  executables: Set<string>;
  rpmdb?: string;
  notes: string[];
}

/** Unbuffered files a tree snapshot must keep so that `bigFilesOf` finds them after a reload. */
export function keepForBigFiles(path: string, info: PathInfo): boolean {
  return isExecutableCandidate(info.mode, info.size ?? 0) || RPMDB_SQLITE.includes(path) || RPM_BERKELEY_DB.includes(path);
}

export function bigFilesOf(paths: Iterable<[string, PathInfo]>): BigFiles {
  const executables = new Set<string>();
  const files = new Set<string>();
  for (const [path, info] of paths) {
    if (info.type !== 'file') continue;
    files.add(path);
    if (executables.size < MAX_EXECUTABLES && isExecutableCandidate(info.mode, info.size ?? 0)) executables.add(path);
  }
  const rpmdb = RPMDB_SQLITE.find((p) => files.has(p));
  const berkeley = RPM_BERKELEY_DB.find((p) => files.has(p));
  const notes =
    berkeley && !rpmdb ? [`rpm packages not listed: ${berkeley} is a BerkeleyDB rpm database, which is not read (rpmdb.sqlite is)`] : [];
  return { executables, ...(rpmdb ? { rpmdb } : {}), notes };
}

/** `found` with more packages and notes (one entry per purl, sorted). */
export function withPackages(found: ImagePackages, more: readonly FoundPackage[], notes: readonly string[]): ImagePackages {
  const all = [...(found.notes ?? []), ...notes];
  return { ...found, packages: dedupe([...found.packages, ...more]), ...(all.length ? { notes: all } : {}) };
}

const text = (b: Buffer | null | undefined): string | undefined => (b ? b.toString('utf8') : undefined);
const isManifest = (path: string) => NODE_MANIFEST.test(path) || PYTHON_METADATA.test(path);

/** What a one-pass scan must buffer: the fixed files, and every manifest small enough to be read. */
export function sbomWants(path: string, size: number): boolean {
  return FIXED_FILES.includes(path) || (size <= MAX_LANGUAGE_FILE_SIZE && isManifest(path));
}

/** The language manifests to read, in path order, as the final file system lists them. */
function manifestPaths(paths: Iterable<[string, PathInfo]>): string[] {
  const out: string[] = [];
  for (const [path, info] of paths) {
    if (info.type !== 'file' || (info.size ?? 0) > MAX_LANGUAGE_FILE_SIZE) continue;
    if (isManifest(path)) out.push(path);
    if (out.length >= MAX_LANGUAGE_FILES) break;
  }
  return out;
}

/** Packages from the fixed files' and the manifests' final contents (null or undefined: absent). */
function packagesOf(fixed: (path: string) => Buffer | null | undefined, manifests: Map<string, Buffer | null>): ImagePackages {
  const osText = OS_RELEASE.map((p) => text(fixed(p))).find((t) => t !== undefined);
  const os = osText ? parseOsRelease(osText) : undefined;
  const packages: FoundPackage[] = [];
  const dpkg = text(fixed(DPKG_STATUS));
  if (dpkg) packages.push(...parseDpkgStatus(dpkg, os));
  const apk = text(fixed(APK_INSTALLED));
  if (apk) packages.push(...parseApkInstalled(apk, os));
  for (const [path, content] of manifests) {
    const t = text(content);
    if (t === undefined) continue;
    const found = NODE_MANIFEST.test(path) ? parseNodePackage(path, t) : parsePythonMetadata(path, t);
    if (found) packages.push(found);
  }
  return { ...(os ? { os } : {}), packages: dedupe(packages) };
}

/**
 * The packages of a tree built with `sbomWants`. A database or manifest that is a link to a file
 * the pass did not keep (rare: the wanted paths are the usual places of each) is not read again:
 * a note names it, and the document says it is incomplete rather than look complete.
 */
export function packagesOfTree(tree: FsTree): ImagePackages {
  const notes: string[] = [];
  const read = (path: string): Buffer | null => {
    const r = tree.resolveFile(path);
    if ('content' in r) return r.content;
    notes.push(`${path} not read: it is a link to ${r.need}, a file the scan does not keep`);
    return null;
  };
  const fixed = new Map(FIXED_FILES.map((p) => [p, read(p)]));
  const manifests = new Map(manifestPaths(tree.list()).map((p) => [p, read(p)]));
  return withPackages(
    packagesOf((p) => fixed.get(p), manifests),
    [],
    notes,
  );
}

/** One entry per purl (the same npm package installed in two places is one component), sorted for stable output. */
function dedupe(packages: FoundPackage[]): FoundPackage[] {
  const byPurl = new Map<string, FoundPackage>();
  for (const p of packages) if (!byPurl.has(p.purl)) byPurl.set(p.purl, p);
  return [...byPurl.values()].sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : 0));
}
