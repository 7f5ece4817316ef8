import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { Descriptor } from './types.js';

/**
 * How every part opens a blob's bytes (a layer's, compressed or not): called once per read, so
 * nothing needs to be held in memory between reads.
 */
export type BlobOpener = () => Readable | Promise<Readable>;

/** A repository of a registry (the same shape as the registry client's RepoRef). */
export interface RepositoryRef {
  registry: string;
  repository: string;
}

/**
 * One layer of an image: what a manifest and a config say about it, and a way to read its
 * (compressed) blob as often as a consumer needs. Nothing is read until open() is called: the
 * blob store and the blob fetcher hand these out, and every sink reads layers through them.
 */
export interface Layer {
  /** Descriptor as it appears in our manifest (OCI media type). */
  readonly descriptor: Descriptor;
  /** sha256 of the uncompressed tar (what the config's rootfs.diff_ids lists). */
  readonly diffId: Digest;
  /** The step that made it (history's created_by), or "base". */
  readonly createdBy: string;
  /** A repository that holds the blob already (a base image's): a registry sink mounts from there. */
  readonly origin?: RepositoryRef;
  /** The blob's bytes; a remote blob is fetched once per run, then read from the local store. */
  open(): Promise<Readable>;
  /**
   * The blob as a file on this machine (fetched first when remote), for sinks that hard-link
   * blobs instead of copying them. Absent for layers that are not backed by a file.
   */
  file?(): Promise<string>;
}
