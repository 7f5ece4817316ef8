import type { Logger } from '../log.js';

/**
 * Holds a variant's log lines while variants build concurrently, so each variant's lines
 * can be printed together, in one group, when it is done.
 */
export class BufferedLogger implements Logger {
  private lines: { level: 'info' | 'warn' | 'debug'; msg: string }[] = [];

  info(msg: string): void {
    this.lines.push({ level: 'info', msg });
  }
  warn(msg: string): void {
    this.lines.push({ level: 'warn', msg });
  }
  debug(msg: string): void {
    this.lines.push({ level: 'debug', msg });
  }
  group<T>(_name: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  flushTo(target: Logger): void {
    for (const l of this.lines) target[l.level](l.msg);
    this.lines = [];
  }
}
