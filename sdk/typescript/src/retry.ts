// Retry policy: jittered exponential backoff inside a budget, Retry-After honoured.

import { TransientError, type BioverifyError } from "./errors.js";

export interface RetryOptions {
  /** Requests in all (1 disables retries). Default 4. */
  maxAttempts?: number;
  /** Bound on the sum of the waits between attempts of one call, ms. Default 30000. */
  maxTotalWaitMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** A server's Retry-After is honoured up to this, ms. Default 30000. */
  maxRetryAfterMs?: number;
  /** [0, 1) source of jitter; Math.random by default (it only spreads clients apart). */
  random?: () => number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = Object.freeze({
  maxAttempts: 4,
  maxTotalWaitMs: 30_000,
  initialBackoffMs: 500,
  maxBackoffMs: 8_000,
  maxRetryAfterMs: 30_000,
  random: Math.random,
});

/** Retry-After as seconds (delta-seconds or an HTTP date); undefined if absent or bad. */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, (when - nowMs) / 1000);
}

/** The retry state of one call. */
export class RetryBudget {
  attempts = 0;
  private waitedMs = 0;

  constructor(private readonly options: Required<RetryOptions>) {}

  startAttempt(): number {
    return ++this.attempts;
  }

  /** Milliseconds to wait before the next attempt, or undefined: throw the error now. */
  delayBeforeRetry(error: BioverifyError): number | undefined {
    if (!(error instanceof TransientError && error.requestRetryable)) return undefined;
    if (this.attempts >= this.options.maxAttempts) return undefined;
    const base = Math.min(
      this.options.maxBackoffMs,
      this.options.initialBackoffMs * 2 ** (this.attempts - 1),
    );
    let delay = base / 2 + (this.options.random() * base) / 2;
    if (error.retryAfter !== undefined) {
      delay = Math.min(error.retryAfter * 1000, this.options.maxRetryAfterMs);
    }
    if (this.waitedMs + delay > this.options.maxTotalWaitMs) return undefined;
    // Counted in waits, not wall time, so an injected sleep (tests) keeps budgets exact.
    this.waitedMs += delay;
    return delay;
  }
}

export const realSleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));
