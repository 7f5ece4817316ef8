/**
 * File system errors (EACCES, ENAMETOOLONG, ENOSPC, ...) come out of Node as
 * "EACCES: permission denied, open '/x'": true, but it says neither which step of the build
 * file read the file nor what to do. These turn them into messages that name the build file
 * line and step, or the directory being written (the cache, an output, the temporary root
 * file system), the path, and the fix. Bad input (an unreadable source) exits 2, like every
 * other problem with the build file's inputs; a full disk is the machine's problem and exits 1.
 */

export class IoError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = 'IoError';
  }
}

interface SystemError {
  code: string;
  path?: string;
  syscall?: string;
  message: string;
}

/** The Node system error behind `err`, if it is one. */
export function systemError(err: unknown): SystemError | undefined {
  // Already described (by the step that failed first): left as it is.
  if (err instanceof IoError) return undefined;
  // Readers wrap errors with what they were doing ("base layer 1 of 2: ..."), the cause kept.
  for (
    let e = err as (Partial<SystemError> & { cause?: unknown }) | undefined, depth = 0;
    e && typeof e === 'object' && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e as SystemError;
  }
  return undefined;
}

const NAME_LIMITS = 'the limits are 255 bytes for one name and 4096 for a whole path';

/** What to do about `code` when writing into `dir`, the `role` of which is said in the message. */
function writeFix(code: string, role: string, dir: string, hint: string): string {
  if (code === 'ENOSPC' || code === 'EDQUOT') return `no space left on the device holding the ${role} ${dir}; free space there, or ${hint}`;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
    return `the ${role} ${dir} is not writable (${code}); make it writable by the user running oci-build, or ${hint}`;
  if (code === 'ENAMETOOLONG') return `a path under the ${role} ${dir} is too long (${NAME_LIMITS}); ${hint}`;
  return `${code} writing the ${role} ${dir}; ${hint}`;
}

/** What to do about a full temporary root file system of run: steps. */
export const TEMP_ROOTFS_HINT =
  'give a cache directory on a larger file system with --cache-dir (run: steps unpack their root file system there)';

const HINTS: Record<string, string> = {
  cache: 'give another directory with --cache-dir (the action: the cache-dir input)',
  'temporary root file system': TEMP_ROOTFS_HINT,
};

/**
 * An error of a build step: reading its sources (`EACCES`, `ENAMETOOLONG`) is bad input and
 * names the file; a full disk names the directory written (the layer cache and blob store,
 * or the temporary root file system of a run: step) under `workDir`.
 */
export function stepIoError(
  err: unknown,
  where: string,
  step: string,
  writing: 'cache' | 'temporary root file system',
  workDir?: string,
): unknown {
  const e = systemError(err);
  if (!e) return err;
  const path = e.path ? ` ${e.path}` : '';
  const at = `${where}: ${step}`;
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    if (
      e.syscall === 'open' ||
      e.syscall === 'scandir' ||
      e.syscall === 'lstat' ||
      e.syscall === 'stat' ||
      e.syscall === 'opendir' ||
      e.syscall === 'readlink' ||
      e.syscall === 'access'
    ) {
      return new IoError(
        `${at}: cannot read${path}: permission denied (${e.code}); make it readable by the user running oci-build (chmod a+r for a file, a+rx for a directory), or leave it out of the copy`,
        e.code,
        2,
      );
    }
  }
  if (e.code === 'ENAMETOOLONG') {
    return new IoError(
      `${at}:${path || ' a path'} is too long (ENAMETOOLONG: ${NAME_LIMITS}); shorten the name or the directory nesting`,
      e.code,
      2,
    );
  }
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === 'EROFS' || e.code === 'EACCES' || e.code === 'EPERM') {
    const dir = workDir ?? e.path ?? '';
    return new IoError(`${at}: ${writeFix(e.code, writing, dir, HINTS[writing]!)}${path && workDir ? ` (writing${path})` : ''}`, e.code, 1);
  }
  return err;
}

/** An error writing an output (oci:DIR, oci-archive:FILE, docker-archive:FILE). */
export function outputError(err: unknown, description: string, path: string, pushing: boolean): unknown {
  const e = systemError(err);
  if (!e) return err;
  const after = pushing ? '; nothing was pushed and no tag was moved' : '';
  return new IoError(
    `output ${description}: ${writeFix(e.code, 'output', path, 'write the output to another directory')}${e.path && e.path !== path ? ` (writing ${e.path})` : ''}${after}`,
    e.code,
    1,
  );
}

/**
 * Any other system error that reaches the entry point (fetching a base into the cache, the
 * digest map): its path, and the fix when the path is in the cache directory `workDir`.
 */
export function otherIoError(err: unknown, workDir: string): unknown {
  const e = systemError(err);
  if (!e) return err;
  if (!e.path) {
    if (e.code !== 'ENOSPC' && e.code !== 'EDQUOT') return err;
    // A write to an open file names no path; outputs are mapped by the pipeline, so this is the cache.
    const doing = err instanceof Error && (err as unknown) !== e ? ` (${err.message})` : '';
    return new IoError(
      `no space left on the device holding the cache ${workDir}, where base blobs, layers and run: root file systems are written${doing}; free space there, or ${HINTS.cache!}`,
      e.code,
      1,
    );
  }
  if (e.path === workDir || e.path.startsWith(`${workDir}/`)) {
    return new IoError(writeFix(e.code, 'cache', workDir, HINTS.cache!) + (e.path !== workDir ? ` (writing ${e.path})` : ''), e.code, 1);
  }
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT')
    return new IoError(
      `no space left on the device holding ${e.path} (${e.syscall ?? 'write'}); free space there, or write it elsewhere`,
      e.code,
      1,
    );
  return err;
}
