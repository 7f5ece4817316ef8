/** The SBOM's media type (and its artifact manifest's artifactType); apart so that naming it loads no CycloneDX library. */
export const CYCLONEDX_JSON = 'application/vnd.cyclonedx+json';
