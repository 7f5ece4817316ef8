/**
 * The rpm database where it is readable without rpm: `rpmdb.sqlite` (Fedora 33+, RHEL/UBI 9,
 * /var/lib/rpm or /usr/lib/sysimage/rpm). Its Packages table holds one rpm header blob per
 * package; the header format is read here. Node's built-in `node:sqlite` opens the database
 * (Node 22.13+, unflagged; Node 24 as the action runs). The legacy BerkeleyDB `Packages`
 * (RHEL 8 and older) and SUSE's ndb `Packages.db` are not read.
 */
import { PackageURL } from 'packageurl-js';
import { distroQualifier, type FoundPackage, type OsRelease } from './packages.js';

export const RPMDB_SQLITE = ['/var/lib/rpm/rpmdb.sqlite', '/usr/lib/sysimage/rpm/rpmdb.sqlite'];

const TAG = { name: 1000, version: 1001, release: 1002, epoch: 1003, license: 1014, arch: 1022 } as const;
const TYPE_INT32 = 4;
const TYPE_STRING = 6;
const TYPE_I18NSTRING = 9;

/** Tag -> value of an rpm header blob (index count, data length, 16-byte index entries, data), for the tags we read. */
export function parseRpmHeader(blob: Buffer): Map<number, string | number> {
  const out = new Map<number, string | number>();
  if (blob.length < 8) return out;
  const il = blob.readUInt32BE(0);
  const dl = blob.readUInt32BE(4);
  const data = 8 + il * 16;
  if (il > 100_000 || data + dl > blob.length) return out;
  const wanted = new Set<number>(Object.values(TAG));
  for (let i = 0; i < il; i++) {
    const e = 8 + i * 16;
    const tag = blob.readUInt32BE(e);
    const type = blob.readUInt32BE(e + 4);
    const off = blob.readInt32BE(e + 8);
    if (!wanted.has(tag) || off < 0 || off >= dl) continue;
    const at = data + off;
    if (type === TYPE_INT32 && at + 4 <= data + dl) out.set(tag, blob.readUInt32BE(at));
    else if (type === TYPE_STRING || type === TYPE_I18NSTRING) {
      const end = blob.indexOf(0, at);
      if (end > 0 && end <= data + dl) out.set(tag, blob.subarray(at, end).toString('utf8'));
    }
  }
  return out;
}

export function rpmPackage(h: Map<number, string | number>, os: OsRelease | undefined, foundIn: string): FoundPackage | undefined {
  const name = h.get(TAG.name);
  const version = h.get(TAG.version);
  const release = h.get(TAG.release);
  // gpg-pubkey "packages" are imported signing keys, not software.
  if (typeof name !== 'string' || typeof version !== 'string' || name === 'gpg-pubkey') return undefined;
  const full = typeof release === 'string' ? `${version}-${release}` : version;
  const arch = h.get(TAG.arch);
  const epoch = h.get(TAG.epoch);
  const distro = distroQualifier(os);
  const qualifiers: Record<string, string> = {
    ...(typeof arch === 'string' ? { arch } : {}),
    ...(typeof epoch === 'number' && epoch > 0 ? { epoch: String(epoch) } : {}),
    ...(distro ? { distro } : {}),
  };
  const license = h.get(TAG.license);
  return {
    ecosystem: 'rpm',
    name,
    version: typeof epoch === 'number' && epoch > 0 ? `${epoch}:${full}` : full,
    purl: new PackageURL('rpm', os?.id, name, full, Object.keys(qualifiers).length ? qualifiers : undefined, undefined).toString(),
    ...(typeof license === 'string' && license ? { license } : {}),
    foundIn,
  };
}

/**
 * The packages of an rpmdb.sqlite copied out of the image to `file` (a scratch copy: sqlite may
 * write its -shm beside it). Throws with the reason when this Node has no usable node:sqlite.
 */
export async function readRpmSqlite(file: string, os: OsRelease | undefined, foundIn: string): Promise<FoundPackage[]> {
  let sqlite: typeof import('node:sqlite');
  try {
    sqlite = await import('node:sqlite');
  } catch {
    throw new Error(`node:sqlite is not available in Node ${process.versions.node} (it needs Node 22.13 or later)`);
  }
  const db = new sqlite.DatabaseSync(file);
  try {
    const out: FoundPackage[] = [];
    for (const row of db.prepare('SELECT blob FROM Packages').iterate()) {
      const blob = (row as { blob?: Uint8Array }).blob;
      if (!blob) continue;
      const p = rpmPackage(parseRpmHeader(Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength)), os, foundIn);
      if (p) out.push(p);
    }
    return out;
  } finally {
    db.close();
  }
}
