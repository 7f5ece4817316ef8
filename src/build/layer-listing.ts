import type { LayerEntry } from '../layer/types.js';
import { imagePath } from '../layer/reader.js';
import { decompressedChunks } from '../layer/decompress.js';
import { whiteoutOf } from '../layer/whiteout.js';
import { readTar } from '../layer/tarstream.js';
import type { Layer } from '../oci/layer.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isObject, writeAtomic } from '../cache/atomic.js';

/** What one layer blob adds and deletes, for keeping an FsView right when a layer comes from the cache. */
export interface LayerListing {
  entries: Pick<LayerEntry, 'path' | 'type' | 'mode' | 'uid' | 'gid'>[];
  /** Paths its whiteouts delete. */
  deleted: string[];
  /** Directories whose lower content its opaque markers hide. */
  opaque: string[];
  /** /etc/passwd and /etc/group when the layer writes them. */
  files: { passwd?: string; group?: string };
}

export async function listLayer(layer: Pick<Layer, 'open'>): Promise<LayerListing> {
  const out: LayerListing = { entries: [], deleted: [], opaque: [], files: {} };
  for await (const item of readTar(decompressedChunks(await layer.open()))) {
    const path = imagePath(item.header.name);
    const whiteout = whiteoutOf(path);
    if (whiteout) {
      if (whiteout.kind === 'delete') out.deleted.push(whiteout.path);
      else if (whiteout.kind === 'opaque') out.opaque.push(whiteout.dir);
      continue;
    }
    const t = item.header.type;
    const type = t === 'file' || t === 'dir' || t === 'symlink' || t === 'hardlink' ? t : 'file';
    out.entries.push({ path, type, mode: item.header.mode, uid: item.header.uid, gid: item.header.gid });
    if (t === 'file' && (path === '/etc/passwd' || path === '/etc/group')) {
      const chunks: Buffer[] = [];
      for await (const c of item.body) chunks.push(c);
      out.files[path === '/etc/passwd' ? 'passwd' : 'group'] = Buffer.concat(chunks).toString('utf8');
    }
  }
  return out;
}

/**
 * listLayer, kept per diffID in `dir/listings` (a listing is fixed by the layer's content): a
 * cached run: step on a compiler's 600 MiB layer is not decompressed again by every rebuild.
 */
export async function listLayerCached(layer: Pick<Layer, 'open' | 'diffId'>, dir: string | undefined): Promise<LayerListing> {
  if (!dir) return listLayer(layer);
  const file = join(dir, 'listings', `${layer.diffId.replace(/^sha256:/, '')}.json`);
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (isObject(v) && v.version === 1 && v.diffId === layer.diffId && isObject(v.listing)) {
      const l = v.listing as unknown as LayerListing;
      if (Array.isArray(l.entries) && Array.isArray(l.deleted) && Array.isArray(l.opaque) && isObject(l.files)) return l;
    }
  } catch {
    /* not listed yet, or unreadable: list the layer */
  }
  const listing = await listLayer(layer);
  await writeAtomic(file, `${JSON.stringify({ version: 1, diffId: layer.diffId, listing })}\n`);
  return listing;
}
