/**
 * Progress of long work (downloads, uploads, layers being compressed), reported by the parts
 * that do it and shown by whoever runs them: live bars on a terminal (tty.ts), a bounded
 * number of log lines in CI and pipes (lines.ts), nothing in tests and library use.
 */
import { formatBytes, formatMs } from '../log.js';

/** One item of work: a blob transfer or a layer, with bytes when it has them. */
export interface ProgressTask {
  /** Bytes (or units) done since the last call. */
  add(n: number): void;
  /** Finished; `note` replaces the default summary (e.g. "already present"). */
  done(note?: string): void;
  /** Ended without finishing (the error is reported by whoever catches it). */
  fail(): void;
}

export interface TaskOptions {
  quiet?: boolean;
}

export interface Progress {
  /**
   * Starts an item; `total` in bytes when known. `quiet`: the caller logs the result itself,
   * so a finished item adds no line (it still shows while it runs).
   */
  task(label: string, total?: number, opts?: TaskOptions): ProgressTask;
  /** A line of log output, printed so that it does not tear live bars apart. */
  log(line: string): void;
  /** Ends live output (restores the terminal); tasks still running are dropped. */
  stop(): void;
}

const idle: ProgressTask = { add() {}, done() {}, fail() {} };

export const noProgress: Progress = {
  task: () => idle,
  log() {},
  stop() {},
};

/** Bytes per second between two moments (0 before any time has passed). */
export function rate(bytes: number, ms: number): number {
  return ms > 0 ? (bytes * 1000) / ms : 0;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** Time left at the current rate, or '?' when it cannot be told yet. */
export function formatEta(done: number, total: number | undefined, bytesPerSecond: number): string {
  if (total === undefined || bytesPerSecond <= 0) return '?';
  return formatMs(Math.max(0, ((total - done) / bytesPerSecond) * 1000));
}

/** "12.0 MiB in 1.20 s (10.0 MiB/s)": what a finished transfer says. */
export function summarize(bytes: number, ms: number): string {
  return `${formatBytes(bytes)} in ${formatMs(ms)}${ms >= 100 ? ` (${formatRate(rate(bytes, ms))})` : ''}`;
}
