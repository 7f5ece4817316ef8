import { afterEach, describe, expect, it, vi } from 'vitest';
import { LineProgress } from '../src/progress/lines.js';
import { formatEta, summarize } from '../src/progress/progress.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('line progress (CI, pipes)', () => {
  it('prints one line per finished item, nothing per chunk', () => {
    const lines: string[] = [];
    const p = new LineProgress((l) => lines.push(l));
    for (let i = 0; i < 100; i++) {
      const t = p.task(`blob ${i}`, 1 << 20);
      for (let c = 0; c < 64; c++) t.add(1 << 14);
      t.done();
    }
    p.stop();
    expect(lines).toHaveLength(100);
    expect(lines[0]).toMatch(/^blob 0: 1\.00 MiB in /);
  });

  it('prints one status line per interval for all long transfers together', () => {
    vi.useFakeTimers();
    let now = 0;
    const lines: string[] = [];
    const p = new LineProgress((l) => lines.push(l), { intervalMs: 10_000, now: () => now });
    const a = p.task('a', 600 << 20);
    const b = p.task('b', 600 << 20);
    for (let s = 1; s <= 60; s++) {
      now = s * 1000;
      a.add(10 << 20);
      b.add(5 << 20);
      vi.advanceTimersByTime(1000);
    }
    a.done();
    b.fail();
    vi.advanceTimersByTime(60_000);
    const status = lines.filter((l) => l.startsWith('…'));
    expect(status).toHaveLength(6);
    expect(status[0]).toMatch(/2 running \(a, b\): 150\.0 MiB of 1\.17 GiB, 15\.0 MiB\/s, ETA/);
    // The failed item prints nothing; the finished one its summary; no more status lines after.
    expect(lines.filter((l) => !l.startsWith('…'))).toEqual([expect.stringMatching(/^a: 600\.0 MiB in 60\.00 s/)]);
  });

  it('formats ETA and summaries', () => {
    expect(formatEta(50, 100, 10)).toBe('5.00 s');
    expect(formatEta(50, undefined, 10)).toBe('?');
    expect(summarize(10 << 20, 2000)).toBe('10.0 MiB in 2.00 s (5.00 MiB/s)');
  });
});
