import type { VariantSpec } from '../config/model.js';

/** A JSON array: the exec form of RUN, ENTRYPOINT, CMD, VOLUME and COPY (no shell, no word splitting). */
export const json = (args: string[]): string => JSON.stringify(args);

/**
 * A Dockerfile word for ENV, LABEL and WORKDIR, which expand $VARS and split on spaces: quoted
 * and escaped when it has anything but plain characters, so the value arrives as written.
 */
export function quoteArg(value: string): string {
  if (/^[A-Za-z0-9_./:@%+,-]+$/.test(value)) return value;
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
}

/** A POSIX shell word: single-quoted, a single quote written as '\''. */
export const shellQuote = (value: string): string => `'${value.replace(/'/g, `'\\''`)}'`;

/** The image config as Dockerfile instructions, in the order Docker documents them. */
export function exportConfig(v: VariantSpec): string[] {
  const out: string[] = [];
  const labels = Object.entries(v.labels);
  if (labels.length) out.push(`LABEL ${labels.map(([k, x]) => `${quoteArg(k)}=${quoteArg(x)}`).join(' ')}`);
  if (v.expose.length) out.push(`EXPOSE ${v.expose.join(' ')}`);
  if (v.volumes.length) out.push(`VOLUME ${json(v.volumes)}`);
  if (v.stopSignal) out.push(`STOPSIGNAL ${v.stopSignal}`);
  if (v.entrypoint) out.push(`ENTRYPOINT ${json(v.entrypoint)}`);
  if (v.cmd) out.push(`CMD ${json(v.cmd)}`);
  return out;
}
