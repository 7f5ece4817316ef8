import { readFile, rm } from 'node:fs/promises';
import { isDigest } from '../oci/digest.js';
import { isObject, writeAtomic } from './atomic.js';

/**
 * The file hasher's records on disk (`<dir>/files.idx`): what each source file's sha256 was
 * when it had a given stat. Line-oriented and grouped by directory, so a no-op rebuild of a
 * node_modules tree reads one file of some 15 MB and parses each directory's block only when a
 * file of it is probed; files.json (one JSON object, its predecessor) took twice the bytes and
 * a full parse into 100,000 objects before the first lookup.
 *
 *   oci-build file hashes 2
 *   /abs/dir<TAB><bytes of the block that follows>
 *   <name><TAB><stat signature><TAB><sha256 hex><TAB><last used, ms since the epoch>
 *   ...
 *
 * Directory lines start with '/', record lines never do (a name has no '/'). Names and
 * directories with a tab, newline, carriage return or '%' in them are %-escaped.
 */

const MAGIC = 'oci-build file hashes 2\n';
const LF = 0x0a;
const HEX64 = /^[0-9a-f]{64}$/;
const SIG = /^\d+:\d+:\d+:\d+:\d+:\d+$/;

/** One record: the file's stat signature, its content hash (hex) and when a build last used it. */
export interface IndexRecord {
  sig: string;
  hex: string;
  usedAt: number;
}

function escapeField(s: string): string {
  return /[%\t\n\r]/.test(s) ? s.replace(/[%\t\n\r]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`) : s;
}

function unescapeField(s: string): string {
  return s.includes('%') ? s.replace(/%([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))) : s;
}

/** An absolute path as its directory and name. */
export function splitPath(abs: string): [string, string] {
  const i = abs.lastIndexOf('/');
  return [i === 0 ? '/' : abs.slice(0, i), abs.slice(i + 1)];
}

/**
 * The records of one index file, each directory's block parsed on first use. Only the
 * directory lines are read at load (one per directory, each saying how long its block is).
 */
export class FileIndex {
  private readonly blocks = new Map<string, { start: number; end: number; parsed?: Map<string, IndexRecord> }>();

  private constructor(private readonly buf: Buffer) {
    let pos = MAGIC.length;
    while (pos < buf.length) {
      const nl = buf.indexOf(LF, pos);
      if (nl < 0 || buf[pos] !== 0x2f) break; // cut short or not a directory line: keep what came before
      const line = buf.toString('utf8', pos, nl);
      const tab = line.lastIndexOf('\t');
      const len = Number(line.slice(tab + 1));
      if (tab < 0 || !Number.isSafeInteger(len) || len < 0 || nl + 1 + len > buf.length) break;
      this.blocks.set(unescapeField(line.slice(0, tab)), { start: nl + 1, end: nl + 1 + len });
      pos = nl + 1 + len;
    }
  }

  static empty(): FileIndex {
    return new FileIndex(Buffer.from(MAGIC));
  }

  /** The index in `file`: empty when it is missing or not this format (a later build rewrites it). */
  static async read(file: string): Promise<FileIndex | undefined> {
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch {
      return undefined;
    }
    return buf.subarray(0, MAGIC.length).toString('latin1') === MAGIC ? new FileIndex(buf) : FileIndex.empty();
  }

  get(abs: string): IndexRecord | undefined {
    const [dir, name] = splitPath(abs);
    return this.dir(dir)?.get(name);
  }

  /** Every record, by absolute path (for a save that merges). */
  *entries(): Generator<[string, IndexRecord]> {
    for (const d of this.blocks.keys()) {
      const prefix = d === '/' ? '/' : `${d}/`;
      for (const [name, rec] of this.dir(d)!) yield [`${prefix}${name}`, rec];
    }
  }

  private dir(dir: string): Map<string, IndexRecord> | undefined {
    const b = this.blocks.get(dir);
    if (!b) return undefined;
    if (!b.parsed) {
      b.parsed = new Map();
      for (const line of this.buf.toString('utf8', b.start, b.end).split('\n')) {
        const f = line.split('\t');
        // A malformed line is skipped: its file is hashed again, and the next save drops it.
        if (f.length !== 4 || !SIG.test(f[1]!) || !HEX64.test(f[2]!)) continue;
        const usedAt = Number(f[3]);
        if (Number.isFinite(usedAt)) b.parsed.set(unescapeField(f[0]!), { sig: f[1]!, hex: f[2]!, usedAt });
      }
    }
    return b.parsed;
  }
}

/** Writes records (absolute path -> record) as an index file, directories and names in order. */
export async function writeIndex(file: string, records: Iterable<[string, IndexRecord]>): Promise<void> {
  const byDir = new Map<string, [string, IndexRecord][]>();
  for (const [abs, rec] of records) {
    const [dir, name] = splitPath(abs);
    const list = byDir.get(dir);
    if (list) list.push([name, rec]);
    else byDir.set(dir, [[name, rec]]);
  }
  const parts: string[] = [MAGIC];
  for (const dir of [...byDir.keys()].sort()) {
    const list = byDir.get(dir)!.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const block = list.map(([name, r]) => `${escapeField(name)}\t${r.sig}\t${r.hex}\t${r.usedAt}\n`).join('');
    parts.push(`${escapeField(dir)}\t${Buffer.byteLength(block)}\n`, block);
  }
  await writeAtomic(file, parts.join(''));
}

/**
 * The records of a files.json from before files.idx (format 1), so an upgrade keeps its
 * hashes; undefined when there is none. Removed once the index is written.
 */
export async function readLegacyRecords(file: string): Promise<Map<string, IndexRecord> | undefined> {
  let v: unknown;
  try {
    v = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined; // missing or unreadable: start over
  }
  const out = new Map<string, IndexRecord>();
  if (!isObject(v) || v.version !== 1 || !isObject(v.files)) return out;
  for (const [k, r] of Object.entries(v.files)) {
    if (!isObject(r) || typeof r.hash !== 'string' || !isDigest(r.hash) || typeof r.usedAt !== 'number') continue;
    const sig = `${r.size}:${r.mtimeNs}:${r.ctimeNs}:${r.ino}:${r.dev}:${r.mode}`;
    if (SIG.test(sig)) out.set(k, { sig, hex: r.hash.slice('sha256:'.length), usedAt: r.usedAt });
  }
  return out;
}

export async function removeLegacy(file: string): Promise<void> {
  await rm(file, { force: true });
}
