import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = resolve(ROOT, 'dist', 'cli.js');
export const ACTION = resolve(ROOT, 'dist', 'index.js');

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** uid/gid run the entry point as another user (root's tests of what an unprivileged user meets). */
export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
}

/** Runs a bundled entry point with the Node running the tests (Node 24, as the action declares). */
export async function runNode(script: string, args: string[], opts: RunOptions = {}): Promise<Ran> {
  return await new Promise((resolvePromise, reject) => {
    const ids = opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid ?? opts.uid } : {};
    const child = spawn(process.execPath, [script, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...ids,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? 1, stdout, stderr }));
  });
}

export function cli(args: string[], opts: RunOptions = {}): Promise<Ran> {
  return runNode(CLI, args, opts);
}

/** Parses the GITHUB_OUTPUT file format (name<<DELIM ... DELIM, or name=value). */
export function parseGithubOutput(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) body.push(lines[i]!);
      out[name!] = body.join('\n');
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}
