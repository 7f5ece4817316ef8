import cliProgress from 'cli-progress';
import { formatBytes } from '../log.js';
import { formatEta, formatRate, rate, summarize, type Progress, type ProgressTask, type TaskOptions } from './progress.js';

type Bar = ReturnType<cliProgress.MultiBar['create']>;

/**
 * Live progress on a terminal: one bar per running item (bytes, rate, ETA), redrawn in place by
 * cli-progress; a finished item leaves one line above the bars. Log lines go through log() so
 * they are printed above the bars instead of through them.
 */
export class TtyProgress implements Progress {
  private readonly multi: cliProgress.MultiBar;
  private bars = 0;
  private stopped = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.multi = new cliProgress.MultiBar(
      {
        stream,
        format: '{label} {bar} {pct} | {amount} | {speed} | ETA {left}',
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        autopadding: true,
        // Redraw at most 5 times a second: enough to look alive, cheap next to the transfers.
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /**
   * Ctrl-C or a kill: the bars stop and the cursor comes back. Unless something else handles the
   * signal (a build stopping its commands), it is raised again so the process ends as it would have.
   */
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.stop();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };

  task(label: string, total?: number, opts: TaskOptions = {}): ProgressTask {
    if (this.stopped) return { add() {}, done() {}, fail() {} };
    const started = Date.now();
    let done = 0;
    const payload = () => {
      const bps = rate(done, Date.now() - started);
      return {
        label,
        pct: total ? `${Math.floor((done / total) * 100)}%`.padStart(4) : '   ?',
        amount: total !== undefined ? `${formatBytes(done)} / ${formatBytes(total)}` : formatBytes(done),
        speed: formatRate(bps),
        left: formatEta(done, total, bps),
      };
    };
    // cli-progress needs a positive total to draw a bar; an unknown size shows an empty one.
    const bar: Bar = this.multi.create(total || 1, 0, payload());
    this.bars++;
    let over = false;
    const end = (line?: string) => {
      if (over) return;
      over = true;
      this.multi.remove(bar);
      this.bars--;
      if (line) this.log(line);
    };
    return {
      add: (n) => {
        done += n;
        if (!over) bar.update(total ? Math.min(done, total) : 0, payload());
      },
      done: (note) => end(opts.quiet ? undefined : `${label}: ${note ?? summarize(done, Date.now() - started)}`),
      fail: () => end(),
    };
  }

  log(line: string): void {
    // With no bar on screen cli-progress would hold the line until its next redraw.
    if (this.stopped || this.bars === 0) this.stream.write(`${line}\n`);
    else this.multi.log(`${line}\n`);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    process.removeListener('SIGINT', this.onSignal);
    process.removeListener('SIGTERM', this.onSignal);
    this.multi.stop();
  }
}
