// Small helpers shared by the benchmark scripts: processes, timing, statistics, formatting.
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';

export const TIME_BIN = '/usr/bin/time';

/**
 * Runs a command without a shell. Output goes to `log` (appended) when given, else is kept
 * (last 64 KiB) for error messages. Rejects on a non-zero exit unless allowFail.
 */
export async function run(cmd, args, opts = {}) {
  const { cwd, env, log, allowFail = false, capture = false, input } = opts;
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: env ?? process.env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let logStream;
    if (log) {
      mkdirSync(dirname(log), { recursive: true });
      logStream = createWriteStream(log, { flags: 'a' });
      logStream.write(`\n$ ${cmd} ${args.join(' ')}\n`);
    }
    const keep = (s, d) => (s + d).slice(-(capture ? 64 << 20 : 64 << 10));
    child.stdout.on('data', (d) => {
      out = keep(out, d.toString());
      logStream?.write(d);
    });
    child.stderr.on('data', (d) => {
      err = keep(err, d.toString());
      logStream?.write(d);
    });
    if (input !== undefined) child.stdin.end(input);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      logStream?.end();
      if ((code !== 0 || signal) && !allowFail) {
        reject(
          new Error(
            `${cmd} ${args.join(' ')} failed (${signal ?? code})${log ? ` (log: ${log})` : ''}:\n${err.slice(-4000)}\n${out.slice(-2000)}`,
          ),
        );
      } else {
        resolve({ code: code ?? 1, stdout: out, stderr: err });
      }
    });
  });
}

/**
 * Runs a command under GNU time: wall time (measured here, monotonic clock) and peak RSS
 * (ru_maxrss of the command and the descendants it waited for, in KiB, from `time -f %M`), and
 * the CPU time (user + system, ms, `%U %S`) of the same: on a shared machine, where wall time
 * depends on the neighbours, the CPU ratio still says which does less work.
 */
export async function measured(cmd, args, opts = {}) {
  const rssFile = `${opts.log ?? '/tmp/bench'}.time-${process.pid}-${Math.random().toString(16).slice(2)}`;
  const t0 = process.hrtime.bigint();
  const r = await run(TIME_BIN, ['-f', '%M %U %S', '-o', rssFile, cmd, ...args], opts);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  let rssKiB = NaN;
  let cpuMs = NaN;
  try {
    const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
    const [rss, user, sys] = lines[lines.length - 1].split(' ').map(Number);
    rssKiB = rss;
    cpuMs = (user + sys) * 1000;
  } catch {
    /* time did not write it */
  }
  rmSync(rssFile, { force: true });
  return { ...r, ms, rssKiB, cpuMs };
}

export async function freePort() {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(addr.port));
    });
  });
}

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function fmtMs(ms) {
  if (!Number.isFinite(ms)) return '-';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** "33.4 MiB" (our logger's formatBytes) back to a byte count (approximate to its rounding). */
export function parseBytes(s) {
  const m = /^([\d.]+)\s*(B|KiB|MiB|GiB|TiB)$/.exec(s.trim());
  if (!m) return NaN;
  const mult = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }[m[2]];
  return Math.round(Number(m[1]) * mult);
}

/** Pads a table of strings into aligned columns (first row is the header). */
export function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c] ?? '').length)));
  const line = (r) =>
    r
      .map((cell, c) => {
        const s = String(cell ?? '');
        return c === 0 || c === 1 ? s.padEnd(widths[c]) : s.padStart(widths[c]);
      })
      .join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function log(msg) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
