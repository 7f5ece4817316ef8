import { isDigest, type Digest } from './digest.js';

/**
 * An image reference, normalized the way the Docker CLI does:
 * `ubuntu` -> docker.io/library/ubuntu:latest, registry host kept as written otherwise.
 */
export interface Reference {
  /** Registry host as users write it (docker.io, ghcr.io, 127.0.0.1:5000). */
  registry: string;
  /** Repository path inside the registry (library/ubuntu, acme/coop). */
  repository: string;
  tag?: string;
  digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';
const HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

// distribution/reference grammar (lowercase path components, tag, digest).
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$/;

// biome-ignore lint/suspicious/noShadowRestrictedNames: public name of the parser's error; callers import it explicitly
export class ReferenceError extends Error {
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid image reference "${input}": ${reason}`);
    this.name = 'ReferenceError';
  }
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Parses a reference. With `repositoryOnly`, a tag or digest is an error (for `image:` fields). */
export function parseReference(input: string, opts: { repositoryOnly?: boolean } = {}): Reference {
  const s = input.trim();
  if (!s) throw new ReferenceError(input, 'it is empty');
  if (s.length > 255 + 128 + 72) throw new ReferenceError(input, 'it is too long');
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw new ReferenceError(input, `"${d}" is not a sha256 digest (sha256: and 64 lowercase hex digits)`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      throw new ReferenceError(input, `tag "${tag}" is invalid (letters, digits, _ . -; at most 128; not starting with . or -)`);
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (!HOST.test(registry)) throw new ReferenceError(input, `registry host "${registry}" is invalid`);
  if (HUB_ALIASES.has(registry)) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!repository) throw new ReferenceError(input, 'the repository name is missing');
  for (const c of repository.split('/')) {
    if (!COMPONENT.test(c)) {
      const hint = /[A-Z]/.test(c)
        ? ' (repository names must be lowercase)'
        : ' (lowercase letters, digits and single separators . _ __ - only)';
      throw new ReferenceError(input, `path component "${c}" is invalid${hint}`);
    }
  }
  if (repository.length > 255) throw new ReferenceError(input, 'the repository name is longer than 255 characters');
  if (opts.repositoryOnly && (tag || digest)) {
    throw new ReferenceError(input, 'give a repository without a tag or digest here (tags come from the `tags` input)');
  }
  return { registry, repository, tag, digest };
}

export function formatRepository(r: Pick<Reference, 'registry' | 'repository'>): string {
  return `${r.registry}/${r.repository}`;
}

export function formatReference(r: Reference): string {
  let s = formatRepository(r);
  if (r.tag) s += `:${r.tag}`;
  if (r.digest) s += `@${r.digest}`;
  return s;
}

/** True for registries we talk to over plain HTTP: loopback only. */
export function isInsecureRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '');
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]';
}

/** The host that serves the API for a registry name (Docker Hub's API lives elsewhere). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}

export function registryBaseUrl(registry: string): string {
  return `${isInsecureRegistry(registry) ? 'http' : 'https'}://${apiHost(registry)}`;
}
