/** Where built images go besides (or instead of) a registry. */
export type OutputSpec = { kind: 'oci'; dir: string } | { kind: 'docker-archive'; file: string };

export function parseOutput(s: string): OutputSpec {
  const m = /^(oci|docker-archive):(.+)$/.exec(s.trim());
  if (!m) throw new Error(`invalid output "${s}": use oci:DIR (an OCI image layout) or docker-archive:FILE (for podman load / docker load)`);
  return m[1] === 'oci' ? { kind: 'oci', dir: m[2]! } : { kind: 'docker-archive', file: m[2]! };
}
