import { createRequire as __ociCreateRequire } from 'node:module';
const require = __ociCreateRequire(import.meta.url);

// src/attest/sbom/media-type.ts
var CYCLONEDX_JSON = "application/vnd.cyclonedx+json";

export {
  CYCLONEDX_JSON
};
