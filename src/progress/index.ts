import type { Logger } from '../log.js';
import { LineProgress } from './lines.js';
import { noProgress, type Progress } from './progress.js';
import { TtyProgress } from './tty.js';

export { noProgress, type Progress, type ProgressTask } from './progress.js';
export { LineProgress } from './lines.js';

/**
 * The progress display for the CLI: live bars when stderr is a terminal (and not in CI), else
 * lines. OCI_BUILD_PROGRESS=tty|plain|none overrides the choice (plain: lines; tests use it).
 */
export function progressFor(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): Progress {
  const mode = env.OCI_BUILD_PROGRESS;
  if (mode === 'none') return noProgress;
  const interval = Number(env.OCI_BUILD_PROGRESS_INTERVAL_MS) || undefined;
  const tty = mode === 'tty' || (mode !== 'plain' && stream.isTTY === true && !env.CI && env.TERM !== 'dumb');
  return tty ? new TtyProgress(stream) : new LineProgress((l) => stream.write(`${l}\n`), interval ? { intervalMs: interval } : {});
}

/** The progress display of the action: lines through the job log (groups come from the logger). */
export function progressForLog(logger: Logger): Progress {
  return new LineProgress((l) => logger.info(l));
}

/** A logger whose lines go through the progress display, so they never tear its bars. */
export function loggerThrough(progress: Progress, verbose: boolean): Logger {
  return {
    info: (m) => progress.log(m),
    warn: (m) => progress.log(`warning: ${m}`),
    debug: (m) => {
      if (verbose) progress.log(`debug: ${m}`);
    },
    group: async (_name, fn) => fn(),
  };
}
