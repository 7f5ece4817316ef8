import { execFile } from 'node:child_process';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command without a shell; rejects with stdout/stderr in the message on failure. */
export async function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; allowFail?: boolean; timeoutMs?: number } = {},
): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, cwd: opts.cwd, maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 300_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        if (err && !opts.allowFail) {
          reject(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${stderr}\n${stdout}`));
        } else {
          resolve({ stdout, stderr, code });
        }
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
