import type { LayerEntry } from '../layer/types.js';
import { imagePath } from '../layer/reader.js';
import { decompressedChunks } from '../layer/decompress.js';
import { whiteoutOf } from '../layer/whiteout.js';
import { readTar } from '../layer/tarstream.js';
import type { Layer } from '../oci/layer.js';

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
