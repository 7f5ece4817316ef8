import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/types.js';
import type { Digest } from '../oci/digest.js';
import type { LayerCompression } from './compress.js';

/** Extended attributes: name -> value (written as pax `SCHILY.xattr.<name>` records). */
export type Xattrs = Record<string, Buffer>;

/** One entry of a layer we write. Content is re-openable so nothing is held in memory. */
export interface LayerEntry {
  /** Absolute path in the image, normalized, no trailing slash: /usr/local/bin/coop */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  /** Permission bits including setuid/setgid/sticky (0o7777 mask). */
  mode: number;
  uid: number;
  gid: number;
  /** Files: byte count that open() yields. */
  size?: number;
  /** Symlink target as stored; hardlink target as an absolute image path. */
  linkname?: string;
  /** Extended attributes of files and directories (file capabilities, user.*, trusted.*). */
  xattrs?: Xattrs;
  /**
   * Files: called once the content has been read; returns what changed about the source while
   * it was read (a same-size rewrite in place), or undefined. A change fails the write.
   */
  changedSince?: () => string | undefined;
  /** Files: opens the content (called once per write). */
  open?: () => Readable;
  /**
   * Files: the host file open() streams, when the writer may read a small one itself instead,
   * at once into its output buffer (no stream per file).
   */
  readPath?: string;
  /** Files copied from the build context: the host path (the layer cache hashes it by path). */
  hostPath?: string;
  /** Files with a hostPath: its stat when the entry was made (FileHasher's StatSig), so it need not be taken again. */
  hostStat?: string;
  /**
   * Files: called with the sha256 of the content as the writer read it, once it has all been
   * read (the layer cache keys a layer by what it wrote without reading the file again).
   */
  onContentHash?: (hash: `sha256:${string}`, bytes: number) => void;
}

export interface LayerWriteOptions {
  /** Modification time of every entry (SOURCE_DATE_EPOCH or 0). */
  mtime: Date;
  /** gzip at 0-9, or zstd at 1-19. */
  compression: LayerCompression;
  /** Aborts the write (a speculative layer that turned out not to be needed). */
  signal?: AbortSignal;
  /** gzip: chunks compressing at once, asked before each chunk (default: two per core). */
  parallel?: () => number;
  /** Called with each piece of the uncompressed tar as it is compressed (progress). */
  onBytes?: (n: number) => void;
}

export interface BuiltLayer {
  /** Compressed blob: OCI layer media type (tar+gzip or tar+zstd), digest and size of the compressed bytes. */
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar (what config rootfs.diff_ids lists). */
  diffId: Digest;
  uncompressedSize: number;
}
