/**
 * Retry policy and the timer plumbing under it: exponential backoff with full jitter, abortable sleeps,
 * and linked abort signals. It decides *whether* a failure is worth another try; the callers decide what
 * a retry sends (always the same leaseId, so a retry can never turn into a second grant).
 */
import { EdgelockError, ServiceError } from "./errors.ts";

/** How failed requests (network errors, 5xx) are retried. 4xx answers are never retried. */
export interface RetryOptions {
  /**
   * Retries after the first attempt. Renewals ignore this and retry until the lease's deadline.
   * @default 4
   */
  retries?: number;
  /** First backoff ceiling; each retry doubles it, and the actual delay is random below it (full jitter). @default 100 */
  minDelayMs?: number;
  /** Largest backoff ceiling. Kept below REPOLL_GRACE_MS so a retried wait keeps its queue place. @default 2000 */
  maxDelayMs?: number;
}

export const DEFAULT_RETRIES = 4;
export const DEFAULT_MIN_DELAY_MS = 100;
export const DEFAULT_MAX_DELAY_MS = 2_000;

export type ResolvedRetry = Required<RetryOptions>;

export function resolveRetry(options: RetryOptions | undefined): ResolvedRetry {
  return {
    retries: options?.retries ?? DEFAULT_RETRIES,
    minDelayMs: options?.minDelayMs ?? DEFAULT_MIN_DELAY_MS,
    maxDelayMs: options?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
  };
}

/** Delay before retry number `attempt` (0-based): random in [0, min(max, min·2^attempt)], at least a server's Retry-After. */
export function backoffDelayMs(attempt: number, retry: ResolvedRetry, retryAfterMs = 0): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.minDelayMs * 2 ** attempt);
  return Math.max(Math.floor(Math.random() * ceiling), Math.min(retryAfterMs, retry.maxDelayMs));
}

/** Whether a failure may succeed on another try: network errors, timeouts and 5xx, never 4xx. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof ServiceError) return error.status === undefined || error.status >= 500;
  return !(error instanceof EdgelockError);
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    // Not unref'd: someone awaits this, and Node must not exit under them (it would, with code 13).
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Lets Node exit while only this timer is pending (a forgotten lease must not hold a script open until
 * its TTL). Workers, Deno and browsers return a number here, and nothing needs doing.
 */
export function unrefTimer<T>(timer: T): T {
  if (typeof timer === "object" && timer !== null && "unref" in timer) {
    const { unref } = timer as { unref?: unknown };
    if (typeof unref === "function") unref.call(timer);
  }
  return timer;
}

/** A signal that aborts when any input aborts or `timeoutMs` passes; `dispose` drops the listeners. */
export function linkSignals(
  signals: readonly (AbortSignal | undefined)[],
  timeoutMs?: number,
): { signal: AbortSignal; dispose: () => void } {
  // Hand-rolled rather than AbortSignal.any/timeout: Node 18 lacks `any`, and timeout timers can't be unref'd.
  const controller = new AbortController();
  const cleanups: (() => void)[] = [];
  const dispose = (): void => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  };
  for (const input of signals) {
    if (input === undefined) continue;
    if (input.aborted) {
      controller.abort(input.reason);
      break;
    }
    const onAbort = (): void => {
      controller.abort(input.reason);
      dispose();
    };
    input.addEventListener("abort", onAbort, { once: true });
    cleanups.push(() => input.removeEventListener("abort", onAbort));
  }
  if (timeoutMs !== undefined && !controller.signal.aborted) {
    const timer = unrefTimer(
      setTimeout(() => {
        controller.abort(new TimeoutError(timeoutMs));
        dispose();
      }, timeoutMs),
    );
    cleanups.push(() => clearTimeout(timer));
  }
  if (controller.signal.aborted) dispose();
  return { signal: controller.signal, dispose };
}

/** A request ran past its time budget; treated as a network failure (retryable). */
export class TimeoutError extends Error {
  override name = "TimeoutError";
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs}ms`);
    this.timeoutMs = timeoutMs;
  }
}
