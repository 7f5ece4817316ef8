/**
 * Where registry credentials come from: explicit ones (action inputs, CLI flags) first, then the
 * `auths` section of the Docker CLI config that `docker login` / `podman login --authfile` write.
 * Credential helpers (`credsStore`, `credHelpers`) are not run: CI runners log in with
 * docker/login-action, which writes plain `auths` entries when no helper is configured.
 *
 * Secrets never appear in errors or logs: messages name the file and registry only.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_HUB } from '../oci/reference.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface CredentialSource {
  /** `registry` as in Reference.registry: docker.io, ghcr.io, 127.0.0.1:5000. */
  get(registry: string): Credentials | undefined;
}

const HUB_KEYS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/**
 * Normalizes a credential key to a Reference.registry value: `https://index.docker.io/v1/` ->
 * `docker.io`, `https://ghcr.io` -> `ghcr.io`, `http://127.0.0.1:5000/v2/` -> `127.0.0.1:5000`.
 */
export function normalizeRegistryKey(key: string): string {
  let s = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = s.indexOf('/');
  if (slash >= 0) s = s.slice(0, slash);
  s = s.toLowerCase();
  return HUB_KEYS.has(s) ? DOCKER_HUB : s;
}

/** The Docker config path the CLI uses: $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || join(homedir(), '.docker');
  return join(dir, 'config.json');
}

interface DockerAuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
}

/** Parses the `auths` of a Docker config document. Exported for tests. */
export function parseDockerConfig(text: string, path = 'docker config'): Map<string, Credentials> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    // The parser message may quote file content (secrets): say only where the problem is.
    throw new Error(`${path} is not valid JSON; fix or remove it (${e instanceof SyntaxError ? 'syntax error' : 'unreadable'})`);
  }
  const out = new Map<string, Credentials>();
  const auths = doc && typeof doc === 'object' ? (doc as { auths?: unknown }).auths : undefined;
  if (!auths || typeof auths !== 'object') return out;
  for (const [key, raw] of Object.entries(auths as Record<string, unknown>)) {
    if (!raw || typeof raw !== 'object') continue;
    const entry = raw as DockerAuthEntry;
    let creds: Credentials | undefined;
    if (typeof entry.auth === 'string' && entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) creds = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    } else if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username) {
      creds = { username: entry.username, password: entry.password };
    }
    if (!creds) continue;
    const norm = normalizeRegistryKey(key);
    // Several spellings of one registry: the first one with credentials wins, as in the CLI.
    if (!out.has(norm)) out.set(norm, creds);
  }
  return out;
}

function readDockerConfig(path: string): Map<string, Credentials> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseDockerConfig(text, path);
}

export interface CredentialsFromOptions {
  /** Keys are normalized like Docker config keys. These win over the Docker config. */
  explicit?: Record<string, Credentials>;
  /** undefined: the default Docker config path; null: do not read a Docker config. */
  dockerConfigPath?: string | null;
}

/** Builds a CredentialSource; the Docker config is read once, on the first lookup. */
export function credentialsFrom(opts: CredentialsFromOptions = {}): CredentialSource {
  const explicit = new Map<string, Credentials>();
  for (const [k, v] of Object.entries(opts.explicit ?? {})) explicit.set(normalizeRegistryKey(k), v);
  const path = opts.dockerConfigPath === undefined ? defaultDockerConfigPath() : opts.dockerConfigPath;
  let fromFile: Map<string, Credentials> | undefined;
  return {
    get(registry: string): Credentials | undefined {
      const key = normalizeRegistryKey(registry);
      const e = explicit.get(key);
      if (e) return e;
      if (path === null) return undefined;
      fromFile ??= readDockerConfig(path);
      return fromFile.get(key);
    },
  };
}
