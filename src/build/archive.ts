/**
 * A Dockerfile ADD of a local tar archive (plain, gzip, bzip2, xz, zstd): its entries become the
 * layer's, under the destination directory, with the archive's modes, owners and links (a
 * `--chown` owner overrides); its directories (`./` too) set the owner and mode of directories
 * the image has, as Docker's extraction does. The archive is read as hostile input: file contents go to numbered
 * temporary files (never to paths the archive names), `..` entries fail the step, absolute names
 * are made relative; device nodes and FIFOs are left out.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import type { LayerEntry } from '../layer/types.js';
import { openSource } from '../layer/source.js';

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** The archive format by its first bytes; undefined when the file is not an archive. */
export async function archiveKind(path: string): Promise<ArchiveKind | undefined> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(512);
    const { bytesRead } = await fh.read(b, 0, 512, 0);
    const h = b.subarray(0, bytesRead);
    const starts = (...bytes: number[]) => bytes.every((x, i) => h[i] === x);
    if (starts(0x1f, 0x8b)) return 'gzip';
    if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
    if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
    if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
    if (h.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

function decompressed(path: string, kind: ArchiveKind): Readable {
  const raw = createReadStream(path);
  if (kind === 'tar') return raw;
  if (kind === 'gzip') return raw.pipe(zlib.createGunzip());
  if (kind === 'zstd') return raw.pipe(zlib.createZstdDecompress());
  // Node has no bzip2/xz: the system's tool decompresses (present wherever GNU tar is).
  const child = spawn(kind === 'xz' ? 'xz' : 'bzip2', ['-dc', path], { stdio: ['ignore', 'pipe', 'inherit'] });
  child.on('error', (err) => child.stdout.destroy(new Error(`${kind} is needed to read ${path}: ${err.message}`)));
  child.on('exit', (code) => {
    if (code) child.stdout.destroy(new Error(`${kind} -dc ${path} exited with ${code}`));
  });
  return child.stdout;
}

let scratch: string | undefined;
let seq = 0;
function scratchDir(): string {
  if (!scratch) {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-add-'));
    scratch = dir;
    // The layer reads the contents while it is written; they go when the process does.
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return scratch;
}

/** The entries of the archive unpacked into `destDir` (absolute, normalized). */
export async function archiveEntries(
  path: string,
  kind: ArchiveKind,
  destDir: string,
  owner: { uid: number; gid: number } | undefined,
  fail: (m: string) => never,
): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  const writes: Promise<void>[] = [];
  let hostile: string | undefined;
  // Throwing inside the parser's callback would escape the pipeline: remember, skip, fail after.
  const inside = (name: string): string | undefined => {
    const segs = name.split('/').filter((s) => s && s !== '.');
    if (!segs.includes('..')) return posix.join(destDir, ...segs);
    hostile ??= `archive ${path}: entry "${name}" leads outside the destination`;
    return undefined;
  };
  const parser = new Parser({
    strict: true,
    onReadEntry: (e: ReadEntry) => {
      const dest = inside(e.path);
      const link = e.type === 'Link' ? inside(e.linkpath ?? '') : undefined;
      // The root itself (`./` unpacked into /) is never an entry of a layer.
      if (dest === undefined || dest === '/' || (e.type === 'Link' && link === undefined)) {
        e.resume();
        return;
      }
      const ids = owner ?? { uid: e.uid ?? 0, gid: e.gid ?? 0 };
      const mode = (e.mode ?? 0o644) & 0o7777;
      if (e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile') {
        const host = join(scratchDir(), String(++seq));
        const size = e.size ?? 0;
        writes.push(pipeline(e, createWriteStream(host, { mode: 0o600 })));
        out.push({ path: dest, type: 'file', mode, ...ids, size, hostPath: host, open: () => openSource(host, size) });
        return;
      }
      if (e.type === 'Directory') out.push({ path: dest, type: 'dir', mode, ...ids });
      else if (e.type === 'SymbolicLink') out.push({ path: dest, type: 'symlink', mode: 0o777, ...ids, linkname: e.linkpath ?? '' });
      else if (e.type === 'Link') out.push({ path: dest, type: 'hardlink', mode, ...ids, linkname: link! });
      e.resume();
    },
  });
  await pipeline(decompressed(path, kind), parser);
  await Promise.all(writes);
  if (hostile) fail(hostile);
  return out;
}
