/**
 * The client's one retry loop: which failures are worth another try (an explicit table by error code),
 * exponential backoff with full jitter, and abortable sleeps. It decides *whether* and *when* to try again;
 * the callers decide what a try sends (always the same leaseId, so a retry can never become a second grant).
 */
import { type ClientErrorCode, isEdgelockError } from "./errors.ts";
import type { ErrorCode } from "./protocol.ts";

/** How failed requests (an unreachable service, a restarting lock object) are retried. */
export interface RetryOptions {
  /**
   * Retries after the first attempt. Renewals ignore this and retry until the lease's deadline.
   * @default 4
   */
  retries?: number;
  /** First backoff ceiling; each retry doubles it, and the actual delay is random below it (full jitter). @default 100 */
  minDelayMs?: number;
  /** Largest backoff ceiling. Kept well below REPOLL_GRACE_MS so a retried wait keeps its queue place. @default 2000 */
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

/**
 * Whether the same request may succeed when sent again, per code. Only transient conditions are: the
 * service was unreachable or slow (`network_error`), or a lock object restarted or was overloaded
 * (`unavailable`). `internal` is the server's own bug and is not retried blindly; everything else is an
 * answer that another try would only repeat. A `Record`, so a new code is a compile error until decided.
 */
export const RETRYABLE: Readonly<Record<ErrorCode | ClientErrorCode, boolean>> = {
  network_error: true,
  unavailable: true,
  internal: false,
  bad_response: false,
  lock_held: false,
  lock_delay: false,
  waiters_ahead: false,
  too_many_waiters: false,
  too_many_sessions: false,
  upgrade_required: false,
  invalid_frame: false,
  not_held: false,
  lease_ended: false,
  limit_mismatch: false,
  upgrade_not_supported: false,
  wait_cancelled: false,
  reentrant_mismatch: false,
  too_many_holds: false,
  invalid_name: false,
  invalid_body: false,
  malformed_json: false,
  invalid_ttl: false,
  invalid_wait: false,
  invalid_owner: false,
  invalid_lease_id: false,
  invalid_mode: false,
  invalid_limit: false,
  invalid_permits: false,
  permits_exceed_limit: false,
  invalid_reentrant: false,
  holder_key_required: false,
  invalid_holder_key: false,
  invalid_repoll: false,
  invalid_query: false,
  invalid_lock_delay: false,
  unsupported_media_type: false,
  body_too_large: false,
  not_found: false,
  method_not_allowed: false,
  unauthorized: false,
  forbidden: false,
  forbidden_scope: false,
  auth_not_configured: false,
  invalid_argument: false,
  lease_expired: false,
  deadline: false,
  fenced: false,
  grant_mismatch: false,
};

/** Whether a failure may succeed on another try: decided by its code alone (RETRYABLE). */
export function isRetryable(error: unknown): boolean {
  return isEdgelockError(error) && Object.hasOwn(RETRYABLE, error.code) && RETRYABLE[error.code];
}

/** The service's hint (`retryAfterMs` or `Retry-After`) for when to try again, or 0 without one. */
export function retryAfterMsOf(error: unknown): number {
  if (typeof error !== "object" || error === null || !("retryAfterMs" in error)) return 0;
  const { retryAfterMs } = error;
  return typeof retryAfterMs === "number" && retryAfterMs > 0 ? retryAfterMs : 0;
}

/** Delay before retry number `attempt` (0-based): random in [0, min(max, min·2^attempt)], at least a server's Retry-After. */
export function backoffDelayMs(attempt: number, retry: ResolvedRetry, retryAfterMs = 0): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.minDelayMs * 2 ** attempt);
  return Math.max(Math.floor(Math.random() * ceiling), Math.min(retryAfterMs, retry.maxDelayMs));
}

export interface RetryPlan {
  policy: ResolvedRetry;
  /** Stops retrying (rejects with its reason) when it aborts; also cuts a backoff sleep short. */
  signal?: AbortSignal | undefined;
  /**
   * Retry until this local time (epoch ms) instead of `policy.retries` times: the last failure is thrown
   * once the next try could not start before it.
   */
  until?: number | undefined;
}

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error, or the plan runs out; then throws
 * the last error. `attempt` gets the 0-based try number.
 */
export async function retrying<T>(attempt: (n: number) => Promise<T>, plan: RetryPlan): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      plan.signal?.throwIfAborted();
      if (!isRetryable(error)) throw error;
      const delay = backoffDelayMs(n, plan.policy, retryAfterMsOf(error));
      if (plan.until === undefined ? n >= plan.policy.retries : Date.now() + delay >= plan.until) {
        throw error;
      }
      await sleep(delay, plan.signal);
    }
  }
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
