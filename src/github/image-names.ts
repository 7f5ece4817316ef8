import { ownerOf, type GitContext } from './context.js';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/**
 * One lowercase repository path component that a registry accepts: characters other than
 * a-z 0-9 . _ - become `-`, separators are not at either end, and a run of mixed separators
 * (`_-`, `..`) becomes one `-`. `My.Repo` -> `my.repo`, `.github` -> `github`.
 */
export function sanitizeComponent(s: string): string {
  let c = s.toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
  c = c.replace(/^[._-]+|[._-]+$/g, '');
  if (COMPONENT.test(c)) return c;
  return c.replace(/[._-]{2,}/g, (run) => (run === '__' || /^-+$/.test(run) ? run : '-'));
}

/**
 * The image a variant is pushed to when the build file names none:
 * `ghcr.io/<owner>/<repo>-<variant>`, lowercased (GHCR takes lowercase names only).
 */
export function defaultImage(ctx: Pick<GitContext, 'repository'>, variant: string, registry = 'ghcr.io'): string {
  const [owner, repo] = ctx.repository.split('/');
  if (!owner || !repo)
    throw new Error(
      `cannot name an image for variant ${variant}: GITHUB_REPOSITORY is "${ctx.repository}", not owner/name (set the variant's image: in the build file)`,
    );
  return `${registry.toLowerCase()}/${sanitizeComponent(ownerOf(ctx))}/${sanitizeComponent(`${repo}-${variant}`)}`;
}

/**
 * Lowercases the registry host and repository path of an image reference, keeping a tag or
 * digest as written: `ghcr.io/Acme/App:Tag` -> `ghcr.io/acme/app:Tag`. Registries (GHCR among
 * them) accept only lowercase repository names, and owners such as `Acme` are common.
 */
export function lowercaseForRegistry(image: string): string {
  let rest = image.trim();
  let suffix = '';
  const at = rest.indexOf('@');
  if (at >= 0) {
    suffix = rest.slice(at);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    // host:port with no path has no tag: `localhost:5000` stays as is below.
    const maybeTag = rest.slice(colon);
    if (rest.includes('/') || !/^:\d+$/.test(maybeTag)) {
      suffix = maybeTag + suffix;
      rest = rest.slice(0, colon);
    }
  }
  return rest.toLowerCase() + suffix;
}
