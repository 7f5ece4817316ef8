import type { GitContext } from './context.js';

/**
 * The OCI labels metadata-action generates, from the run's context:
 * - title: the repository name; description, licenses (SPDX id): from the repository;
 * - url and source: the repository's web page (`source` is what links a GHCR package to it);
 * - version: the first computed tag (metadata-action's `version` output);
 * - created: the given timestamp (ISO 8601); revision: the commit SHA.
 * Empty values are left out (metadata-action writes them empty), as is the license `NOASSERTION`
 * (GitHub's "a license we could not identify", not an SPDX license expression).
 * Keys are sorted, as metadata-action sorts its labels.
 */
export function ociLabels(ctx: GitContext, version: string | undefined, created: string): Record<string, string> {
  const html = ctx.repo?.html_url || (ctx.repository ? `${ctx.serverUrl}/${ctx.repository}` : '');
  const license = ctx.repo?.license === 'NOASSERTION' ? undefined : ctx.repo?.license;
  const all: Record<string, string | undefined> = {
    'org.opencontainers.image.title': ctx.repo?.name || ctx.repository.split('/')[1],
    'org.opencontainers.image.description': ctx.repo?.description,
    'org.opencontainers.image.url': html,
    'org.opencontainers.image.source': html,
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.created': created,
    'org.opencontainers.image.revision': ctx.sha,
    'org.opencontainers.image.licenses': license,
  };
  return Object.fromEntries(
    Object.entries(all)
      .filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].trim() !== '')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}
