import { formatBytes } from '../log.js';
import { formatEta, formatRate, rate, summarize, type Progress, type ProgressTask, type TaskOptions } from './progress.js';

interface Running {
  label: string;
  total?: number;
  done: number;
  started: number;
}

export interface LineProgressOptions {
  /** How often (at most) a status line about long transfers is printed. */
  intervalMs?: number;
  now?: () => number;
}

/**
 * Progress for logs (CI, pipes): one line per finished item, and while items run longer than
 * the interval, ONE status line per interval for all of them together. A pull of a hundred
 * blobs prints a hundred lines plus a few, never a line per chunk.
 */
export class LineProgress implements Progress {
  private readonly running = new Set<Running>();
  private readonly intervalMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (line: string) => void,
    opts: LineProgressOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  task(label: string, total?: number, opts: TaskOptions = {}): ProgressTask {
    const r: Running = { label, done: 0, started: this.now(), ...(total !== undefined ? { total } : {}) };
    this.running.add(r);
    this.arm();
    let over = false;
    const end = (line?: string) => {
      if (over) return;
      over = true;
      this.running.delete(r);
      if (line) this.write(line);
      if (!this.running.size) this.disarm();
    };
    return {
      add: (n) => {
        r.done += n;
      },
      done: (note) => end(opts.quiet ? undefined : `${label}: ${note ?? summarize(r.done, this.now() - r.started)}`),
      fail: () => end(),
    };
  }

  log(line: string): void {
    this.write(line);
  }

  stop(): void {
    this.running.clear();
    this.disarm();
  }

  /** The status line: items running longer than the interval, summed, with the slowest named. */
  statusLine(): string | undefined {
    const now = this.now();
    const long = [...this.running].filter((r) => now - r.started >= this.intervalMs);
    if (!long.length) return undefined;
    const done = long.reduce((n, r) => n + r.done, 0);
    const sized = long.every((r) => r.total !== undefined);
    const total = sized ? long.reduce((n, r) => n + r.total!, 0) : undefined;
    const bps = long.reduce((n, r) => n + rate(r.done, now - r.started), 0);
    const names =
      long
        .slice(0, 3)
        .map((r) => r.label)
        .join(', ') + (long.length > 3 ? `, +${long.length - 3} more` : '');
    const amount = total !== undefined ? `${formatBytes(done)} of ${formatBytes(total)}` : formatBytes(done);
    return `… ${long.length} running (${names}): ${amount}, ${formatRate(bps)}, ETA ${formatEta(done, total, bps)}`;
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const line = this.statusLine();
      if (line) this.write(line);
    }, this.intervalMs);
    // Progress never keeps the process alive.
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
