import type { BuiltVariant } from '../image/image.js';
import type { RepositoryRef } from '../oci/layer.js';

/** One variant as every sink receives it: the built images, and where and under which tags they go. */
export interface SinkImage {
  variant: BuiltVariant;
  /** The repository the variant is pushed to; absent when it has none (outputs only). */
  repo?: RepositoryRef;
  /** The repository's name as the digest map shows it, or the variant's name when it has none. */
  image: string;
  /** Tag names (not references). */
  tags: string[];
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
