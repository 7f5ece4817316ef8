import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { decompressedChunks } from './decompress.js';
import type { BlobOpener } from '../oci/layer.js';
import { whiteoutOf } from './whiteout.js';
import { readTar, TarFormatError } from './tarstream.js';
import { FsTree, type ChangedPath, type LayerChanges, type PathInfo } from './fstree.js';

export type { PathInfo, PathType } from './fstree.js';

/** Opens one layer blob (compressed or not) as a stream. Called once per pass over the layers. */
export type LayerSource = BlobOpener;

/** Largest wanted file we buffer (passwd/group files are tiny; this guards against odd bases). */
const MAX_WANTED_FILE = 16 << 20;
/** Passes over the layers to chase symlinks/hardlinks of wanted files onto other paths. */
const MAX_PASSES = 4;

/** `./etc/passwd`, `etc/passwd`, `/etc//passwd/` → `/etc/passwd`; '/' for the root. */
export function imagePath(tarName: string): string {
  const p = posix.normalize(`/${tarName}`);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** Parses one layer into its changes, buffering only the content of files `want` selects. */
/** A base layer whose uncompressed content does not hash to the diff_id its config lists. */
export class DiffIdMismatchError extends Error {
  constructor(
    readonly label: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`${label}: its uncompressed content is ${actual}, but the image config lists diff_id ${expected}`);
    this.name = 'DiffIdMismatchError';
  }
}

/**
 * The decompressed chunks, hashed on the way through (the diff_id is the sha256 of the whole
 * uncompressed tar); `rest()` reads what the tar reader left after the end-of-archive blocks.
 */
function hashedChunks(src: Readable): { chunks: AsyncIterable<Buffer>; rest(): Promise<string> } {
  const hash = createHash('sha256');
  const it = decompressedChunks(src);
  const next = async () => {
    const r = await it.next();
    if (!r.done) hash.update(r.value);
    return r;
  };
  // The tar reader may stop early; returning must not end the underlying stream before rest().
  const chunks = { [Symbol.asyncIterator]: () => ({ next, return: async () => ({ done: true as const, value: undefined }) }) };
  return {
    chunks,
    rest: async () => {
      while (!(await next()).done) {
        /* hashed in next() */
      }
      return `sha256:${hash.digest('hex')}`;
    },
  };
}

/**
 * Another reader of the same pass over a layer: it streams the regular files it selects as the
 * tar goes by (not buffered), so a scan that needs more than the tree does not read the layer again.
 */
export interface LayerProbe {
  want(path: string, mode: number, size: number): boolean;
  /** Must read `body` to its end (or not at all). */
  file(path: string, body: AsyncIterable<Buffer>, size: number): Promise<void>;
  /** Called once the whole layer has been read (and its diff_id checked). */
  end?(): Promise<void>;
}

async function readLayerChanges(src: Readable, label: string, want: WantFile, diffId?: string, probe?: LayerProbe): Promise<LayerChanges> {
  const changes: LayerChanges = { records: new Map(), whiteouts: [], opaques: [] };
  const hashed = diffId ? hashedChunks(src) : undefined;
  try {
    for await (const { header, body } of readTar(hashed ? hashed.chunks : decompressedChunks(src))) {
      const path = imagePath(header.name);
      const type = header.type;
      if (path === '/' || type === 'other') continue;
      const whiteout = whiteoutOf(path);
      if (whiteout) {
        if (whiteout.kind === 'opaque') changes.opaques.push(whiteout.dir);
        else if (whiteout.kind === 'delete') changes.whiteouts.push(whiteout.path);
        continue;
      }
      const info: PathInfo = { type, mode: header.mode, uid: header.uid, gid: header.gid };
      if (type === 'symlink') info.linkname = header.linkname;
      if (type === 'hardlink') info.linkname = imagePath(header.linkname);
      if (type === 'file') info.size = header.size;
      const rec: ChangedPath = { info };
      changes.records.delete(path); // keep tar order for a re-added path
      changes.records.set(path, rec);
      if (type !== 'file') continue;
      const probed = probe?.want(path, header.mode, header.size) ?? false;
      if (want(path, header.size)) {
        if (header.size > MAX_WANTED_FILE) throw new Error(`${path} is ${header.size} bytes, too large to read (limit ${MAX_WANTED_FILE})`);
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c);
        rec.content = Buffer.concat(chunks);
        if (probed) await probe!.file(path, Readable.from([rec.content]), header.size);
      } else if (probed) await probe!.file(path, body, header.size);
    }
    if (hashed) {
      const actual = await hashed.rest();
      if (actual !== diffId) throw new DiffIdMismatchError(label, diffId!, actual);
    }
    await probe?.end?.();
  } catch (err) {
    if (err instanceof DiffIdMismatchError) throw err;
    const e = err instanceof Error ? err : new Error(String(err));
    const malformed = e instanceof TarFormatError || /^truncated tar/.test(e.message);
    throw new Error(`${label}: ${malformed ? `not a valid tar (${e.message})` : e.message}`, { cause: e });
  }
  return changes;
}

/** Which regular files a scan buffers, by absolute image path and size. */
export type WantFile = (path: string, size: number) => boolean;

/** Reads one layer blob (compressed or not) and applies it to the tree; `label` names it in errors. */
export async function applyLayer(
  tree: FsTree,
  open: LayerSource,
  label: string,
  want: WantFile,
  diffId?: string,
  probe?: LayerProbe,
): Promise<LayerChanges> {
  let src: Readable;
  try {
    src = await open();
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    throw new Error(`${label}: ${e.message}`, { cause: e });
  }
  const changes = await readLayerChanges(src, label, want, diffId, probe);
  tree.apply(changes);
  return changes;
}

/** The probe of layer `index` in a scan's first pass (undefined: none for that layer). */
export type LayerProbes = (index: number) => Promise<LayerProbe | undefined>;

async function buildTree(
  layers: readonly LayerSource[],
  want: WantFile,
  diffIds?: readonly string[],
  probes?: LayerProbes,
): Promise<FsTree> {
  const tree = new FsTree();
  for (let i = 0; i < layers.length; i++) {
    await applyLayer(tree, layers[i]!, `base layer ${i + 1} of ${layers.length}`, want, diffIds?.[i], await probes?.(i));
  }
  return tree;
}

export interface LayerScan {
  /** Final content of each wanted path (a regular file, symlinks followed); null when absent. */
  files: Map<string, Buffer | null>;
  /** Every path of the final filesystem (when asked for), parents before children. */
  paths?: Map<string, PathInfo>;
}

/**
 * Applies layers (bottom to top) with OCI whiteout semantics and returns what the final
 * filesystem holds: the content of `wanted` files and, with `listPaths`, every path's metadata.
 * Layer content is streamed; only wanted files are buffered. When a wanted file turns out to be a
 * symlink or hardlink to a path that was not read, the layers are read again (a few times at most).
 */
export async function scanLayers(
  layers: readonly LayerSource[],
  opts: {
    wanted?: readonly string[];
    listPaths?: boolean;
    diffIds?: readonly string[];
    /** More files to buffer in the first pass, for `onTree` (another reader's files, read in the same pass). */
    alsoWant?: WantFile;
    /** The first pass's tree, before anything else reads it. */
    onTree?: (tree: FsTree) => Promise<void> | void;
    /** Probes fed by the first pass (another reader's big files, streamed as each layer is read). */
    probes?: LayerProbes;
  } = {},
): Promise<LayerScan> {
  const requested = (opts.wanted ?? []).map((p) => {
    if (!p.startsWith('/')) throw new Error(`wanted path must be absolute: ${p}`);
    return imagePath(p);
  });
  const wanted = new Set(requested);
  const result: LayerScan = { files: new Map() };
  for (let pass = 1; ; pass++) {
    // `diffIds`: each layer is checked against its config's diff_id as it is read (first pass only).
    const first = pass === 1;
    const also = first ? opts.alsoWant : undefined;
    const want: WantFile = also ? (p, size) => wanted.has(p) || also(p, size) : (p) => wanted.has(p);
    const tree = await buildTree(layers, want, first ? opts.diffIds : undefined, first ? opts.probes : undefined);
    if (first) await opts.onTree?.(tree);
    if (first && opts.listPaths) result.paths = tree.list();
    const needs = new Set<string>();
    for (const [i, p] of requested.entries()) {
      const r = tree.resolveFile(p);
      const key = opts.wanted![i]!;
      if ('content' in r) result.files.set(key, r.content);
      else if (wanted.has(r.need) || pass >= MAX_PASSES) result.files.set(key, null);
      else needs.add(r.need);
    }
    if (needs.size === 0) return result;
    for (const n of needs) wanted.add(n);
  }
}

/** Final content of each wanted absolute path after all layers; null when absent or not a file. */
export async function readFilesFromLayers(layers: readonly LayerSource[], wanted: string[]): Promise<Map<string, Buffer | null>> {
  return (await scanLayers(layers, { wanted })).files;
}

/** Every path in the final filesystem after whiteouts, with type/mode/owner/link target. */
export async function listPaths(layers: readonly LayerSource[]): Promise<Map<string, PathInfo>> {
  return (await scanLayers(layers, { listPaths: true })).paths!;
}
