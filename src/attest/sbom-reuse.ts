/**
 * Reusing the SBOM referrer a previous build attached. The manifest digest fixes the layers, so
 * the SBOM of a manifest the registry already holds, made by this tool (same name and version,
 * same timestamp rule), is the document this build would make: fetching it (one listing, one
 * small manifest, one blob) replaces reading every layer of the image.
 *
 * Only a referrer that is byte for byte what this build would attach is reused: its artifact
 * manifest is rebuilt from the fetched document and must have the listed digest (so no other
 * annotations, no other subject), and the document must name the subject and our tool. Anything
 * else (a third party's SBOM, a missing or corrupt blob, a registry error) is not reused.
 */
import type { Readable } from 'node:stream';
import { sha256, type Digest } from '../oci/digest.js';
import type { Descriptor, Manifest } from '../oci/types.js';
import type { RepoRef } from '../registry/client.js';
import { artifactManifest, EMPTY_DESCRIPTOR } from './artifact.js';
import { CYCLONEDX_JSON } from './sbom/media-type.js';
import { listReferrers, type ReferrersRegistry } from './referrers.js';

/** Larger SBOM blobs are not fetched (the scan makes the document instead). */
const MAX_SBOM_BYTES = 64 * 1024 * 1024;

/** What the SBOM this build would make is: its subject, the names in it, the tool, the timestamp. */
export interface WantedSbom {
  subject: Descriptor;
  /** The image name written in the document (metadata.component.name). */
  name: string;
  tool: { name: string; version: string };
  /** The document's timestamp (SOURCE_DATE_EPOCH), or none. */
  timestamp?: Date;
}

export interface SbomReuseRegistry extends Pick<ReferrersRegistry, 'getReferrers' | 'getManifest'> {
  getBlob(repo: RepoRef, digest: Digest, expectedSize?: number): Promise<Readable>;
}

interface CdxMetadata {
  timestamp?: string;
  component?: { name?: string; version?: string; 'bom-ref'?: string };
  tools?: { components?: { name?: string; version?: string }[] };
  properties?: { name?: string }[];
}

/** The referrer's document when it can be reused, else undefined (`debug` says why). Never throws. */
export async function existingSbom(
  reg: SbomReuseRegistry,
  repo: RepoRef,
  want: WantedSbom,
  debug: (msg: string) => void,
): Promise<Buffer | undefined> {
  const where = `${repo.registry}/${repo.repository}@${want.subject.digest}`;
  let listed: Descriptor[];
  try {
    listed = await listReferrers(reg, repo, want.subject.digest, CYCLONEDX_JSON);
  } catch (e) {
    debug(`sbom reuse: ${where}: the referrers could not be listed (${(e as Error).message}); making the SBOM`);
    return undefined;
  }
  for (const d of listed) {
    try {
      const bytes = await reusable(reg, repo, want, d);
      debug(`sbom reuse: ${where}: the SBOM referrer ${d.digest} is reused`);
      return bytes;
    } catch (e) {
      debug(`sbom reuse: ${where}: referrer ${d.digest} not reused: ${(e as Error).message}`);
    }
  }
  if (!listed.length) debug(`sbom reuse: ${where}: no SBOM referrer; making the SBOM`);
  return undefined;
}

/** The document of referrer `d` when it is ours and intact; throws saying why not. */
async function reusable(reg: SbomReuseRegistry, repo: RepoRef, want: WantedSbom, d: Descriptor): Promise<Buffer> {
  // getManifest checks the bytes against the digest asked for.
  const manifest = JSON.parse((await reg.getManifest(repo, d.digest)).bytes.toString('utf8')) as Partial<Manifest>;
  const layer = manifest.layers?.length === 1 ? manifest.layers[0]! : undefined;
  if (manifest.artifactType !== CYCLONEDX_JSON || layer?.mediaType !== CYCLONEDX_JSON) throw new Error('not a CycloneDX artifact manifest');
  if (manifest.subject?.digest !== want.subject.digest) throw new Error(`its subject is ${manifest.subject?.digest}`);
  if (manifest.config?.digest !== EMPTY_DESCRIPTOR.digest) throw new Error('its config is not the empty descriptor');
  if (!(layer.size >= 0 && layer.size <= MAX_SBOM_BYTES)) throw new Error(`its document's size ${layer.size} is out of bounds`);
  const bytes = await readAll(await reg.getBlob(repo, layer.digest, layer.size), layer.size);
  if (bytes.length !== layer.size || sha256(bytes) !== layer.digest)
    throw new Error(`its document ${layer.digest} does not match its digest`);
  checkDocument(JSON.parse(bytes.toString('utf8')) as { metadata?: CdxMetadata }, want);
  const ours = artifactManifest(want.subject, { artifactType: CYCLONEDX_JSON, mediaType: CYCLONEDX_JSON, bytes });
  if (ours.descriptor.digest !== d.digest) throw new Error('its artifact manifest is not the one this tool makes for that document');
  return bytes;
}

/** The document names our subject, our tool at this version and the timestamp this build would write. */
function checkDocument(doc: { metadata?: CdxMetadata }, want: WantedSbom): void {
  const m = doc.metadata ?? {};
  const c = m.component ?? {};
  if (c.version !== want.subject.digest || c['bom-ref'] !== want.subject.digest) throw new Error('the document describes another image');
  if (c.name !== want.name) throw new Error(`the document names the image ${c.name}, not ${want.name}`);
  const tools = m.tools?.components ?? [];
  if (!tools.some((t) => t.name === want.tool.name && t.version === want.tool.version))
    throw new Error(
      `made by ${tools.map((t) => `${t.name} ${t.version}`).join(', ') || 'an unnamed tool'}, not ${want.tool.name} ${want.tool.version}`,
    );
  const stamp = m.timestamp === undefined ? undefined : Date.parse(m.timestamp);
  if (stamp !== want.timestamp?.getTime()) throw new Error('its timestamp is not the one this build writes');
  // An incomplete listing (a database that Node could not read) is made again: this run may read it.
  if (m.properties?.some((p) => p.name === 'oci-build:sbom:incomplete')) throw new Error('the document is marked incomplete');
}

async function readAll(src: Readable, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of src as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > size) {
      src.destroy();
      throw new Error(`the blob is larger than its descriptor's ${size} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
