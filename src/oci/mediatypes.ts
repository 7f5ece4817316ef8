// Media types we read and write. We always write OCI; we read Docker schema 2 too.
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerNondistGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(
  ', ',
);

export function isIndexType(mt: string | undefined): boolean {
  return mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
}

export function isManifestType(mt: string | undefined): boolean {
  return mt === MediaType.OciManifest || mt === MediaType.DockerManifest;
}

/** Layer media types we can consume, mapped to the OCI type we write them as (same bytes). */
const LAYER_TO_OCI: Record<string, string> = {
  [MediaType.OciLayerGzip]: MediaType.OciLayerGzip,
  [MediaType.OciLayerZstd]: MediaType.OciLayerZstd,
  [MediaType.OciLayer]: MediaType.OciLayer,
  [MediaType.DockerLayerGzip]: MediaType.OciLayerGzip,
  [MediaType.OciLayerNondistGzip]: MediaType.OciLayerNondistGzip,
  [MediaType.DockerForeignLayerGzip]: MediaType.OciLayerNondistGzip,
};

export function ociLayerType(mt: string): string | undefined {
  return LAYER_TO_OCI[mt];
}

export function layerCompression(mt: string): 'gzip' | 'zstd' | 'none' {
  if (mt.endsWith('+zstd')) return 'zstd';
  if (mt.endsWith('gzip')) return 'gzip';
  return 'none';
}
