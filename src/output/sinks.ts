import type { Sink, SinkKind } from './sink.js';
import { ociLayoutKind } from './oci-layout.js';
import { dockerArchiveKind } from './docker-archive.js';
import { ociArchiveKind } from './oci-archive.js';

/** Every output kind; a new one is a file exporting a SinkKind and one entry here. */
const KINDS: readonly SinkKind[] = [ociLayoutKind, dockerArchiveKind, ociArchiveKind];

/** An output as given (`oci:DIR`), checked: `kind` is one of KINDS' prefixes. */
export interface OutputSpec {
  kind: string;
  path: string;
}

export function parseOutput(s: string): OutputSpec {
  const m = /^([a-z-]+):(.+)$/.exec(s.trim());
  if (!m || !KINDS.some((k) => k.prefix === m[1])) {
    throw new Error(`invalid output "${s}": use ${KINDS.map((k) => `${k.prefix}:${k.usage}`).join(', or ')}`);
  }
  return { kind: m[1]!, path: m[2]! };
}

export function createSink(spec: OutputSpec): Sink {
  const kind = KINDS.find((k) => k.prefix === spec.kind);
  if (!kind) throw new Error(`unknown output kind "${spec.kind}"`);
  return kind.create(spec.path);
}
