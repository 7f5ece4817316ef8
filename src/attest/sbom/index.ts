import { cyclonedxDocument, CYCLONEDX_JSON, type SbomSubject, type SbomTool } from './cyclonedx.js';
import { scanImagePackages, type LayerSource } from './scan.js';

export { CYCLONEDX_JSON, type SbomSubject, type SbomTool, type LayerSource };
export { scanImagePackages } from './scan.js';

/** The SBOM of one single-platform image, from its layers (bottom first). */
export async function imageSbom(
  subject: SbomSubject,
  layers: readonly LayerSource[],
  tool: SbomTool,
  timestamp?: Date,
): Promise<{ mediaType: string; bytes: Buffer; notes: string[] }> {
  const found = await scanImagePackages(layers);
  return { mediaType: CYCLONEDX_JSON, bytes: cyclonedxDocument(subject, found, tool, timestamp), notes: found.notes ?? [] };
}
