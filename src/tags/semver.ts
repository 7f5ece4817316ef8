/** Semantic versions for `type=semver`: strict semver 2.0.0, as node-semver's `valid`, plus a leading `v`. */
const NUM = '0|[1-9]\\d*';
const PRE_ID = `(?:${NUM}|\\d*[a-zA-Z-][a-zA-Z0-9-]*)`;
const SEMVER_RE = new RegExp(
  `^v?(${NUM})\\.(${NUM})\\.(${NUM})(?:-(${PRE_ID}(?:\\.${PRE_ID})*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$`,
);

export interface SemVer {
  /** As written (`v1.2.3`). */
  raw: string;
  major: number;
  minor: number;
  patch: number;
  prerelease: string[];
  build: string[];
  /** major.minor.patch[-prerelease], without build metadata and the `v`. */
  version: string;
}

/** Strict semver 2.0.0 with an optional leading `v` (what node-semver's `valid` accepts). */
export function parseSemver(s: string): SemVer | undefined {
  const raw = s.trim();
  if (raw.length > 256) return undefined;
  const m = SEMVER_RE.exec(raw);
  if (!m) return undefined;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined;
  const prerelease = m[4] ? m[4].split('.') : [];
  const build = m[5] ? m[5].split('.') : [];
  return {
    raw,
    major,
    minor,
    patch,
    prerelease,
    build,
    version: `${major}.${minor}.${patch}${prerelease.length ? `-${prerelease.join('.')}` : ''}`,
  };
}
