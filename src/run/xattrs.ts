import { spawn, spawnSync } from 'node:child_process';
import type { Xattrs } from '../layer/types.js';

/**
 * Extended attributes of root file system trees, read with getfattr and written with setfattr,
 * one process per tree (never one per file). Node has no xattr API; a native addon cannot
 * travel in the bundled dist/ the action runs from, and the attr tools are one apt package.
 *
 * Carried: `security.capability` (file capabilities, e.g. ping's cap_net_raw), `user.*` and
 * `trusted.*`. Others (security.selinux, ACLs) describe the build host, not the image.
 */

export type { Xattrs };

export function isCarried(name: string): boolean {
  return name === 'security.capability' || name.startsWith('user.') || name.startsWith('trusted.');
}

/** Only the carried attributes, or undefined when none is left. */
export function carriedOnly(x: Xattrs | undefined): Xattrs | undefined {
  if (!x) return undefined;
  const out: Xattrs = {};
  for (const k of Object.keys(x).sort()) if (isCarried(k)) out[k] = x[k]!;
  return Object.keys(out).length ? out : undefined;
}

/** A comparable form of a set of attributes ('' for none). */
export function xattrsKey(x: Xattrs | undefined): string {
  if (!x) return '';
  return Object.keys(x)
    .sort()
    .map((k) => `${k}=${x[k]!.toString('hex')}`)
    .join('\n');
}

/** getfattr's path quoting: `\ooo` for bytes it does not print as they are, `\\` for a backslash. */
function unquote(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'latin1');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else if (raw[i] === 0x5c && raw[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i++;
    } else bytes.push(raw[i]!);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The same quoting for setfattr --restore: every byte outside printable ASCII, '\\' and '=' as `\ooo`. */
function quote(p: string): string {
  let out = '';
  for (const b of Buffer.from(p, 'utf8')) {
    out += b <= 0x20 || b >= 0x7f || b === 0x5c || b === 0x3d ? `\\${b.toString(8).padStart(3, '0')}` : String.fromCharCode(b);
  }
  return out;
}

const warned = new Set<string>();

/**
 * Without the attr tools a build goes on as before this support existed (attributes dropped),
 * with one warning naming the fix: failing every run: step on a runner without them would
 * break builds that worked.
 */
function toolMissing(tool: string, what: string): void {
  if (warned.has(tool)) return;
  warned.add(tool);
  process.emitWarning(
    `${tool} is not installed, so extended attributes (file capabilities such as ping's cap_net_raw, user.*, trusted.*) are left out (first: ${what}); install the attr package (apt-get install attr)`,
  );
}

/**
 * The carried attributes of `top` and everything under it (symlinks are not followed), by host
 * path; paths without any are left out. `top` may be a file.
 */
export function readTreeXattrs(top: string): Map<string, Xattrs> {
  const r = spawnSync('getfattr', getfattrArgs(top), { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 1 << 30, encoding: 'latin1' });
  return getfattrResult(top, r.error, r.status, r.stdout, r.stderr);
}

/**
 * readTreeXattrs without blocking: getfattr runs while the caller does other work (a
 * snapshot's lstat walk of the same tree), on another core when there is one.
 */
export function readTreeXattrsAsync(top: string): Promise<Map<string, Xattrs>> {
  return new Promise((resolve, reject) => {
    const child = spawn('getfattr', getfattrArgs(top), { env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let spawnError: Error | undefined;
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code) => {
      try {
        resolve(getfattrResult(top, spawnError, code, Buffer.concat(out).toString('latin1'), Buffer.concat(err).toString('latin1')));
      } catch (e) {
        reject(e);
      }
    });
  });
}

function getfattrArgs(top: string): string[] {
  return ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', top];
}

function getfattrResult(top: string, error: Error | undefined, status: number | null, stdout: string, stderr: string): Map<string, Xattrs> {
  if (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      toolMissing('getfattr', `reading the extended attributes of ${top}`);
      return new Map();
    }
    throw new Error(`reading the extended attributes of ${top}: ${error.message}`);
  }
  // getfattr exits 1 when it cannot list some file's attributes (a file system without xattr
  // support answers ENOTSUP for every file); what it printed is still right, so say it once.
  if (status !== 0 && stderr.trim() !== '' && !warned.has('getfattr-error')) {
    warned.add('getfattr-error');
    process.emitWarning(
      `reading extended attributes under ${top}: ${stderr.trim().split('\n')[0]}; attributes getfattr could not read are left out`,
    );
  }
  const out = new Map<string, Xattrs>();
  let cur: Xattrs | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = {};
      out.set(unquote(line.slice(8)), cur);
      continue;
    }
    const eq = line.indexOf('=');
    if (!cur || eq <= 0) continue;
    const name = unquote(line.slice(0, eq));
    const value = line.slice(eq + 1);
    if (!isCarried(name)) continue;
    cur[name] = value.startsWith('0x') ? Buffer.from(value.slice(2), 'hex') : Buffer.alloc(0);
  }
  for (const [k, v] of out) if (Object.keys(v).length === 0) out.delete(k);
  return out;
}

/**
 * Sets attributes on host paths with one setfattr (symlinks are not followed). The caller
 * guarantees the paths lead to what it means (no symlink in their parents).
 */
export function writeXattrs(items: ReadonlyArray<{ host: string; xattrs: Xattrs }>, what: string): void {
  if (items.length === 0) return;
  let input = '';
  for (const { host, xattrs } of items) {
    input += `# file: ${quote(host)}\n`;
    for (const k of Object.keys(xattrs).sort()) input += `${quote(k)}=0x${xattrs[k]!.toString('hex')}\n`;
    input += '\n';
  }
  const r = spawnSync('setfattr', ['-h', '--restore=-'], {
    input,
    env: { ...process.env, LC_ALL: 'C' },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      toolMissing('setfattr', `${what}: ${items[0]!.host}`);
      return;
    }
    throw new Error(`${what}: setting extended attributes: ${r.error.message}`);
  }
  if (r.status !== 0) {
    throw new Error(
      `${what}: setting extended attributes failed: ${r.stderr.trim().split('\n')[0] ?? ''}; the file system under ${items[0]!.host} may not support them (user.* needs ext4, xfs, btrfs or a recent tmpfs; trusted.* and security.* need root)`,
    );
  }
}
