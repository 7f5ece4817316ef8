/**
 * The SBOM document: CycloneDX 1.6 JSON made with the CycloneDX library (models, normalizer,
 * serializer), so the format details are the library's, not ours. Deterministic: lists sorted,
 * no serial number, the timestamp only when the caller gives one (SOURCE_DATE_EPOCH, or the clock
 * when that is absent).
 */
import * as Enums from '@cyclonedx/cyclonedx-library/Enums';
import * as Models from '@cyclonedx/cyclonedx-library/Models';
import * as Serialize from '@cyclonedx/cyclonedx-library/Serialize';
import * as Spec from '@cyclonedx/cyclonedx-library/Spec';
import { PackageURL } from 'packageurl-js';
import type { ImagePackages } from './scan.js';

export { CYCLONEDX_JSON } from './media-type.js';

export interface SbomSubject {
  /** Repository (or variant name) the image is known by. */
  name: string;
  /** The image manifest digest the SBOM describes. */
  digest: string;
  platform?: string;
}

export interface SbomTool {
  name: string;
  version: string;
}

export function cyclonedxDocument(subject: SbomSubject, found: ImagePackages, tool: SbomTool, timestamp?: Date): Buffer {
  const bom = new Models.Bom();
  const image = new Models.Component(Enums.ComponentType.Container, subject.name, {
    version: subject.digest,
    bomRef: subject.digest,
  });
  image.purl = new PackageURL(
    'oci',
    undefined,
    subject.name.split('/').at(-1)!,
    subject.digest,
    { repository_url: subject.name, ...(subject.platform ? { platform: subject.platform } : {}) },
    undefined,
  ).toString();
  bom.metadata.component = image;
  bom.metadata.tools.components.add(new Models.Component(Enums.ComponentType.Application, tool.name, { version: tool.version }));
  if (timestamp) bom.metadata.timestamp = timestamp;
  for (const note of found.notes ?? []) bom.metadata.properties.add(new Models.Property('oci-build:sbom:incomplete', note));
  if (found.os) {
    const os = new Models.Component(Enums.ComponentType.OperatingSystem, found.os.id, {
      ...(found.os.versionId ? { version: found.os.versionId } : {}),
      ...(found.os.name ? { description: found.os.name } : {}),
      bomRef: `os:${found.os.id}`,
    });
    bom.components.add(os);
  }
  for (const p of found.packages) {
    const c = new Models.Component(Enums.ComponentType.Library, p.name, {
      version: p.version,
      bomRef: p.purl,
      purl: p.purl,
    });
    // Free-text licenses stay names: declaring them SPDX expressions would make the document invalid.
    if (p.license) c.licenses.add(new Models.NamedLicense(p.license));
    c.properties.add(new Models.Property('oci-build:package:found-in', p.foundIn));
    bom.components.add(c);
  }
  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  return Buffer.from(serializer.serialize(bom, { sortLists: true }), 'utf8');
}
