/**
 * The one logging interface the core uses. The action maps it to @actions/core,
 * the CLI to stderr; tests capture it. Only the action's GitHub side (src/action.ts and
 * src/github/) talks to @actions/core.
 */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
  /** Runs fn inside a named, collapsible section (a group in the action). */
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

export const silentLogger: Logger = {
  info() {},
  warn() {},
  debug() {},
  group: (_n, fn) => fn(),
};

export function formatBytes(n: number): string {
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

export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
