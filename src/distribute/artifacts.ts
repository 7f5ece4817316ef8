import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/** The part of @actions/artifact's client the merge job uses (tests pass a fake). */
export interface ArtifactDownloader {
  listArtifacts(options?: { latest?: boolean }): Promise<{ artifacts: { id: number; name: string }[] }>;
  downloadArtifact(id: number, options?: { path?: string }): Promise<{ downloadPath?: string }>;
}

/** `oci-build-partial-*` style patterns: `*` matches any run of characters. */
export function matchesPattern(name: string, pattern: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(name);
}

/**
 * Downloads every artifact of this run whose name matches `pattern` into `dir` (one folder
 * each) and returns the partial digest maps found in them.
 */
export async function downloadPartials(pattern: string, dir: string, logger: Logger, client?: ArtifactDownloader): Promise<string[]> {
  const c = client ?? (await defaultClient());
  const { artifacts } = await c.listArtifacts({ latest: true });
  const matching = artifacts.filter((a) => matchesPattern(a.name, pattern)).sort((a, b) => (a.name < b.name ? -1 : 1));
  logger.info(`merge: ${matching.length} artifact(s) match ${pattern}: ${matching.map((a) => a.name).join(', ') || 'none'}`);
  const files: string[] = [];
  for (const a of matching) {
    const path = join(dir, a.name);
    await c.downloadArtifact(a.id, { path });
    for (const f of (await readdir(path)).sort()) if (f.endsWith('.json')) files.push(join(path, f));
  }
  return files;
}

async function defaultClient(): Promise<ArtifactDownloader> {
  const { DefaultArtifactClient } = await import('@actions/artifact');
  return new DefaultArtifactClient() as unknown as ArtifactDownloader;
}
