/**
 * `ADD https://...`: the file is downloaded while the Dockerfile is read (before any build work),
 * checked against `--checksum` when given, and copied like a context file: named after the URL's
 * last path segment, mode 0600 (as Docker gives downloaded files), owner root unless --chown.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import type { CopySource } from '../config/model.js';

let scratch: string | undefined;
let seq = 0;

function scratchDir(): string {
  if (!scratch) {
    const dir = mkdtempSync(join(tmpdir(), 'oci-build-download-'));
    scratch = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return scratch;
}

export class DownloadError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** The file name ADD gives a download: the URL path's last segment. */
export function urlFileName(url: string): string | undefined {
  const name = posix.basename(new URL(url).pathname);
  return name && name !== '/' ? decodeURIComponent(name) : undefined;
}

export async function download(url: string, checksum: string | undefined): Promise<CopySource> {
  const name = urlFileName(url);
  if (!name || name.includes('/'))
    throw new DownloadError(
      `cannot tell a file name from ${url}`,
      'give a URL whose path ends in a file name, or download it in a RUN step',
    );
  if (checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(checksum))
    throw new DownloadError(`--checksum=${checksum} is not a sha256 digest`, 'write --checksum=sha256:<64 hex digits>');
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (e) {
    throw new DownloadError(`downloading ${url} failed: ${(e as Error).message}`, 'check the URL and that it is reachable from here');
  }
  if (!res.ok) throw new DownloadError(`downloading ${url} failed: HTTP ${res.status}`, 'check the URL');
  const body = Buffer.from(await res.arrayBuffer());
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  if (checksum !== undefined && digest !== checksum)
    throw new DownloadError(`${url} has ${digest}, not the --checksum ${checksum}`, 'update --checksum if the file changed on purpose');
  // One directory per download, so the file keeps its own name (copied into a directory as it).
  const dir = join(scratchDir(), String(++seq));
  mkdirSync(dir);
  const file = join(dir, name);
  await writeFile(file, body, { mode: 0o600 });
  return { pattern: url, matches: [file], isGlob: false };
}
