import type { BuiltVariant } from '../image/image.js';
import type { RepositoryRef } from '../oci/layer.js';
import type { Descriptor } from '../oci/types.js';

/** An OCI 1.1 referrer of one of the variant's images (an attestation's artifact manifest), for layout-shaped outputs. */
export interface SinkReferrer {
  /** The index entry: the artifact manifest's descriptor with its artifactType. */
  descriptor: Descriptor;
  bytes: Buffer;
  /** The blobs it needs (the empty config, the attestation). */
  blobs: { digest: Descriptor['digest']; size: number; bytes: Buffer }[];
}

/** One variant as every sink receives it: the built images, and where and under which tags they go. */
export interface SinkImage {
  variant: BuiltVariant;
  /** The repository the variant is pushed to; absent when it has none (outputs only). */
  repo?: RepositoryRef;
  /** The repository's name as the digest map shows it, or the variant's name when it has none. */
  image: string;
  /** Tag names (not references). */
  tags: string[];
  /** Attestations attached to the variant's images; sinks that can hold referrers write them. */
  referrers?: SinkReferrer[];
}

/**
 * Where built images go: a registry, an OCI layout, an archive. The pipeline hands every sink
 * the same list, in the order they were given, and knows nothing about any of them.
 */
export interface Sink {
  /** For the log line, e.g. "OCI layout out/layout". */
  readonly description: string;
  write(images: SinkImage[]): Promise<void>;
}

/** A kind of output as the `outputs` input and `--output` name it: `<prefix>:<path>`. */
export interface SinkKind {
  prefix: string;
  /** For messages: what the path is, e.g. "DIR (an OCI image layout)". */
  usage: string;
  create(path: string): Sink;
}
