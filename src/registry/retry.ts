/**
 * How registry operations are retried: every retry of the client and the publisher goes through
 * a RetryBudget (withRetry, or a loop's own pause()). Individual HTTP requests never retry on
 * their own: multi-request protocol steps (an upload is POST + PATCH + PUT) are redone as a whole.
 */
import type { Logger } from '../log.js';

export interface RetryPolicy {
  /** Retries after the first attempt (so at most retries + 1 attempts). */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No retry is started if it would begin after this much time since the first attempt. */
  maxElapsedMs: number;
  /** Injectable for tests: waits `ms`. */
  sleep?: (ms: number) => Promise<void>;
  /** Injectable for tests: a number in [0, 1). */
  random?: () => number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retries: 4,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  maxElapsedMs: 120_000,
};

export function resolveRetryPolicy(p: Partial<RetryPolicy> = {}): RetryPolicy {
  const out: RetryPolicy = { ...DEFAULT_RETRY_POLICY };
  for (const [k, v] of Object.entries(p)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  return out;
}

/** What withRetry needs to know about an error; RegistryError satisfies it. */
interface RetryableLike {
  temporary?: unknown;
  retryAfterMs?: unknown;
}

export function isTemporary(e: unknown): boolean {
  return !!e && typeof e === 'object' && (e as RetryableLike).temporary === true;
}

/** Retry-After parsing lives with the response handling; re-exported for convenience. */
export { parseRetryAfterHeader as parseRetryAfter } from './errors.js';

/** Exponential backoff with full jitter: uniform in [0, min(max, base * 2^attempt)). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One retry budget (attempts and elapsed time, from the policy) and its backoff: withRetry runs
 * a function under one, and loops that keep state between attempts (a download that resumes
 * where it broke, a manifest PUT repaired between attempts) call pause() themselves.
 */
export class RetryBudget {
  readonly policy: RetryPolicy;
  private readonly start = Date.now();
  private made = 0;

  constructor(
    policy: Partial<RetryPolicy> = {},
    private readonly logger?: Logger,
    private readonly what = 'request',
  ) {
    this.policy = resolveRetryPolicy(policy);
  }

  /** Retries made so far (the 0-based number of the next attempt). */
  get attempts(): number {
    return this.made;
  }

  /**
   * After a failed attempt: rethrows `e` when it is not worth another one (not temporary, unless
   * `retryable` says otherwise) or the budget is spent; else waits and returns. A server-sent
   * Retry-After (carried as `retryAfterMs` on the error) replaces the backoff and is honoured in
   * full (maxDelayMs caps only our own backoff); if the server asks for longer than the remaining
   * elapsed budget we give up now rather than sleep in vain or retry too early. `say` words the
   * log line (default: "attempt N failed (...); retrying in D ms").
   */
  async pause(e: unknown, opts: { retryable?: boolean; say?: (delayMs: number, message: string) => string } = {}): Promise<void> {
    const p = this.policy;
    if (!(opts.retryable ?? isTemporary(e)) || this.made >= p.retries) throw e;
    const random = p.random ?? Math.random;
    const remaining = p.maxElapsedMs - (Date.now() - this.start);
    const ra = (e as RetryableLike).retryAfterMs;
    let delay: number;
    if (typeof ra === 'number') {
      // The server said when: wait at least that long, plus a little jitter so parallel
      // requests do not return at the same instant.
      if (ra > remaining) throw e;
      delay = Math.min(ra + Math.floor(random() * p.baseDelayMs), remaining);
    } else {
      delay = backoffDelay(this.made, p, random);
    }
    if (delay > remaining) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    this.logger?.info(
      opts.say
        ? `${this.what}: ${opts.say(delay, msg)}`
        : `${this.what}: attempt ${this.made + 1} failed (${msg}); retrying in ${delay} ms`,
    );
    this.made++;
    await (p.sleep ?? defaultSleep)(delay);
  }
}

/**
 * Runs fn until it succeeds, fails with a non-temporary error, or the budget (retries, elapsed
 * time) is spent (see RetryBudget.pause). `fn` gets the 0-based attempt number.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: Partial<RetryPolicy> = {},
  logger?: Logger,
  what = 'request',
): Promise<T> {
  const budget = new RetryBudget(policy, logger, what);
  for (;;) {
    try {
      return await fn(budget.attempts);
    } catch (e) {
      await budget.pause(e);
    }
  }
}
