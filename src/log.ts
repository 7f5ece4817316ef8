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

/**
 * The lines of secret values as they must never be shown: every line of a multi-line value
 * (a PEM key printed by a RUN comes out a line at a time), trimmed, longest first so a line
 * containing a shorter one is hidden whole. Lines under 3 characters are left out: hiding them
 * would mangle the log and they give nothing away.
 */
export function secretLines(values: Iterable<Buffer | string>): string[] {
  const lines = new Set<string>();
  for (const v of values) {
    for (const l of v.toString().split(/\r?\n/)) if (l.trim().length >= 3) lines.add(l.trim());
  }
  return [...lines].sort((a, b) => b.length - a.length);
}

/** Replaces each of the lines (from secretLines) with *** in a text. */
export function redactLines(text: string, lines: readonly string[]): string {
  let out = text;
  for (const l of lines) if (out.includes(l)) out = out.split(l).join('***');
  return out;
}
