import { DigestMismatchError, RegistryError } from '../registry/errors.js';

/** What a pull of one image hit, and what the user should check. */
export class PullError extends Error {
  constructor(
    readonly image: string,
    cause: unknown,
    hint?: string,
  ) {
    const msg = cause instanceof Error ? cause.message : String(cause);
    const check = hint ?? hintFor(cause, image);
    super(`pull of ${image} failed: ${msg}${check ? `\n  check: ${check}` : ''}`, { cause });
    this.name = 'PullError';
  }
}

/** Bad usage: a digest map that is not one, a variant it lacks (exit code 2). */
export class PullUsageError extends Error {}

const MISSING = ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'BLOB_UNKNOWN', 'NOT_FOUND'];
const DENIED = ['DENIED', 'UNAUTHORIZED', 'FORBIDDEN'];

function hostOf(image: string): string {
  return image.split('/')[0] ?? image;
}

function hintFor(cause: unknown, image: string): string | undefined {
  const host = hostOf(image);
  if (cause instanceof DigestMismatchError) {
    return `the registry ${host} (or a proxy on the way) served bytes that do not match their digest; nothing was written. Pull again; if it persists, the image in the registry is corrupt`;
  }
  if (!(cause instanceof RegistryError)) return undefined;
  if (cause.status === 404 || cause.codes.some((c) => MISSING.includes(c))) {
    return /\/blobs\//.test(cause.url)
      ? `the registry lacks a blob the image's manifest lists: check that ${image} was pushed completely`
      : `that the tag or digest exists in ${image.replace(/[@:][^/]*$/, '')} (a typo, or an image not pushed yet)`;
  }
  if (cause.status === 401 || cause.status === 403 || cause.codes.some((c) => DENIED.includes(c))) {
    return `the credentials for ${host} (~/.docker/config.json, or OCI_BUILD_REGISTRY=${host} with OCI_BUILD_USERNAME and OCI_BUILD_PASSWORD) and that they may pull ${image}`;
  }
  if (cause.status === undefined || cause.temporary) return `the network, and that ${host} is reachable and up`;
  return undefined;
}
