/**
 * The edgelock client: acquire a lease (waiting as long as asked, re-polling past one request's cap),
 * retry lost requests with the same leaseId, and run work under a lock with `withLock`. It owns acquiring;
 * a `Lease` (lease.ts) owns everything after the grant. Zero dependencies: it needs only `fetch`.
 */
import { type Duration, parseDuration } from "./duration.ts";
import { AuthError, LockHeldError, ServiceError, ValidationError } from "./errors.ts";
import { Lease, type LeaseHost } from "./lease.ts";
import type { AcquireRequest, LockMode, LockView, ReleaseResponse, Lease as WireLease } from "./protocol.ts";
import { LOCK_NAME_PATTERN, MAX_WAIT_MS } from "./protocol.ts";
import { backoffDelayMs, isRetryable, type RetryOptions, resolveRetry, sleep } from "./retry.ts";
import { type FetchLike, Transport } from "./transport.ts";
import { isLockView, isReleaseResponse, isWireLease } from "./wire.ts";

/** Lease length when `ttl` is not given. */
export const DEFAULT_TTL_MS = 30_000;
/** Time budget of one request, on top of the time it is asked to wait. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Time budget of the best-effort release that drops an abandoned wait. */
const ABANDON_TIMEOUT_MS = 2_000;

export interface ClientOptions {
  /** Base URL of the service. With a service binding any URL works, e.g. `"https://edgelock"`. */
  url: string;
  /** API key, sent as `Authorization: Bearer <apiKey>`. @default undefined (no header) */
  apiKey?: string | undefined;
  /**
   * The `fetch` to send requests with: a service binding's `fetch`, or a wrapper for tests and tracing.
   * @default globalThis.fetch
   */
  fetch?: FetchLike | undefined;
  /** Extra headers on every request. @default {} */
  headers?: Record<string, string> | undefined;
  /** `owner` label for acquires that don't set one. @default undefined (the server stores null) */
  owner?: string | undefined;
  /** Retries of network errors and 5xx (never 4xx). @default { retries: 4, minDelayMs: 100, maxDelayMs: 2000 } */
  retry?: RetryOptions | undefined;
  /** Time budget of one request beyond its wait. @default "10s" */
  requestTimeout?: Duration | undefined;
}

export interface AcquireOptions {
  /** Lease length; renew before it runs out. @default "30s" */
  ttl?: Duration | undefined;
  /**
   * How long to wait for the lock. Waits longer than one request's cap (25 s) re-poll transparently with
   * the same leaseId, keeping the queue place. `0` tries once.
   * @default 0
   */
  wait?: Duration | undefined;
  /** A label for people (shown in status and in `LockHeldError.holder`). @default the client's `owner` */
  owner?: string | undefined;
  /** Cancels the wait; the client then releases the leaseId so the server drops the waiter. */
  signal?: AbortSignal | undefined;
  /** Your own leaseId (16–128 of `A-Za-z0-9_-`), e.g. to resume after a crash. @default a random id */
  leaseId?: string | undefined;
  /** `"shared"` for readers of a read-write lock. @default "exclusive" */
  mode?: LockMode | undefined;
  /** Makes the lock a counting semaphore with this many permits. @default undefined (a mutex) */
  limit?: number | undefined;
  /** Permits this lease takes (semaphores only). @default 1 */
  permits?: number | undefined;
  /** With `owner`: the same owner acquiring again gets the same lease, hold count + 1. @default false */
  reentrant?: boolean | undefined;
  /** If this lease is lost (expiry), the lock stays closed this long. @default 0 */
  lockDelay?: Duration | undefined;
  /** Start the lease's renewal watchdog right away (`lease.keepAlive()`). @default false */
  autoRenew?: boolean | undefined;
  /**
   * With `autoRenew`: the caller's own deadline (epoch ms or Date), e.g. when a serverless invocation is
   * cut off. The signal fires early, once another renewal could not complete before it.
   * @default undefined (no deadline)
   */
  deadline?: number | Date | undefined;
}

/** `acquire` options; the watchdog always runs, so `autoRenew` is implied. */
export type WithLockOptions = Omit<AcquireOptions, "autoRenew">;

/**
 * A client of one edgelock service. Cheap to create, holds no connections, and never mutates its options.
 *
 * @example
 * const client = new EdgelockClient({ url: "https://locks.example.com", apiKey: process.env.EDGELOCK_TOKEN });
 * await client.withLock("nightly-report", async (lease) => {
 *   await buildReport({ fence: lease.token, signal: lease.signal });
 * }, { ttl: "30s", wait: "5m" });
 */
export class EdgelockClient {
  readonly #transport: Transport;
  readonly #host: LeaseHost;
  readonly #owner: string | undefined;

  constructor(options: ClientOptions) {
    this.#transport = new Transport(options);
    this.#owner = options.owner;
    this.#host = {
      transport: this.#transport,
      retry: resolveRetry(options.retry),
      requestTimeoutMs:
        options.requestTimeout === undefined
          ? DEFAULT_REQUEST_TIMEOUT_MS
          : parseDuration(options.requestTimeout, "requestTimeout"),
    };
  }

  /**
   * Acquires a lease, waiting up to `wait`. Network errors and 5xx are retried with backoff and the same
   * leaseId, so a lost answer returns the lease it granted instead of a second grant or a self-deadlock.
   *
   * @throws {LockHeldError} when the lock is still held after `wait` (with `retryAfterMs` and `holder`).
   * @throws {ValidationError | AuthError | ServiceError} for refused or failed requests.
   * @throws the signal's reason when `signal` aborts (the waiter is dropped on the server first).
   * @example
   * await using lease = await client.acquire("deploy", { ttl: "1m", wait: "2m" });
   */
  async acquire(name: string, options: AcquireOptions = {}): Promise<Lease> {
    checkName(name);
    const signal = options.signal;
    signal?.throwIfAborted();
    const waitMs = parseDuration(options.wait ?? 0, "wait");
    const leaseId = options.leaseId ?? newLeaseId();
    const base = this.#acquireBody(options, leaseId);
    const waitUntil = Date.now() + waitMs;
    const { retry, requestTimeoutMs } = this.#host;
    let failures = 0;
    let mayBeKnown = false; // a request reached (or may have reached) the server with this leaseId
    try {
      for (;;) {
        const sentAt = Date.now();
        const requestWaitMs = Math.min(MAX_WAIT_MS, Math.max(0, waitUntil - sentAt));
        try {
          const answer = await this.#transport.call(
            name,
            "acquire",
            { ...base, waitMs: requestWaitMs },
            { signal, timeoutMs: requestWaitMs + requestTimeoutMs },
          );
          if (!isWireLease(answer)) {
            throw new ServiceError("bad_response", "the acquire answer is not an edgelock lease", {
              status: 200,
            });
          }
          const lease = new Lease(answer, sentAt, this.#host);
          if (options.autoRenew === true) lease.keepAlive({ deadline: options.deadline });
          return lease;
        } catch (error) {
          // Queued, aborted mid-request, or granted with the answer lost: the server may know this leaseId.
          mayBeKnown ||= requestWaitMs > 0 || signal?.aborted === true || isRetryable(error);
          if (signal?.aborted) throw error;
          const left = waitUntil - Date.now();
          if (error instanceof LockHeldError && error.code !== "too_many_waiters" && left > 0) {
            failures = 0;
            // Queued: re-poll at once, inside the grace window. Not queued (a lock-delay): wait it out first.
            if (error.position === undefined)
              await sleep(Math.min(left, Math.max(error.retryAfterMs, 50)), signal);
            continue;
          }
          if (!isRetryable(error) || failures >= retry.retries) throw error;
          await sleep(backoffDelayMs(failures++, retry, retryAfterOf(error)), signal);
        }
      }
    } catch (error) {
      const refused = error instanceof ValidationError || error instanceof AuthError;
      if (mayBeKnown && !refused) await this.#abandon(name, leaseId);
      throw signal?.aborted ? signal.reason : error;
    }
  }

  /**
   * Runs `fn` while holding the lock: acquires, renews in the background at a third of the TTL left,
   * and releases in `finally`. If the lease is lost while `fn` runs, `lease.signal` aborts so `fn` can stop,
   * and `withLock` rejects with the `LeaseLostError` even if `fn` resolved, because its work may have
   * overlapped another holder's. A failed release is not reported: the lease then ends at its TTL.
   *
   * @example
   * const total = await client.withLock("ledger", async (lease) => {
   *   return await settle({ fence: lease.token, signal: lease.signal });
   * }, { ttl: "10s", wait: "1m", deadline: Date.now() + remainingMs });
   */
  async withLock<T>(
    name: string,
    fn: (lease: Lease) => Promise<T> | T,
    options: WithLockOptions = {},
  ): Promise<T> {
    const lease = await this.acquire(name, { ...options, autoRenew: true });
    let result: T;
    try {
      result = await fn(lease);
    } finally {
      await lease.release().catch(() => undefined);
    }
    if (lease.lost !== null) throw lease.lost;
    return result;
  }

  /** The lock's public state: holders (never their leaseIds), waiters, last token, semaphore use. */
  async status(name: string, options: { signal?: AbortSignal } = {}): Promise<LockView> {
    checkName(name);
    const answer = await this.#callWithRetry(name, null, null, options.signal);
    if (!isLockView(answer)) throw badAnswer("status");
    return answer;
  }

  /**
   * Renews a lease known only by its leaseId (a script's, or one acquired by another process).
   * Prefer `lease.renew()` when you hold a `Lease`.
   * @throws {LeaseLostError} when the lease is not held (`reason` says why).
   */
  async renewById(name: string, leaseId: string, options: { ttl?: Duration } = {}): Promise<WireLease> {
    checkName(name);
    const body =
      options.ttl === undefined ? { leaseId } : { leaseId, ttlMs: parseDuration(options.ttl, "ttl") };
    const answer = await this.#callWithRetry(name, "renew", body);
    if (!isWireLease(answer)) throw badAnswer("renew");
    return answer;
  }

  /**
   * Releases a lease (or cancels a queued wait) known only by its leaseId. Safe to retry.
   * @throws {LeaseLostError} when the lease is not held (`reason` says why).
   */
  async releaseById(name: string, leaseId: string): Promise<ReleaseResponse> {
    checkName(name);
    const answer = await this.#callWithRetry(name, "release", { leaseId });
    if (!isReleaseResponse(answer)) throw badAnswer("release");
    return answer;
  }

  async #callWithRetry(
    name: string,
    action: string | null,
    body: object | null,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const { retry, requestTimeoutMs } = this.#host;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#transport.call(name, action, body, { signal, timeoutMs: requestTimeoutMs });
      } catch (error) {
        if (signal?.aborted || !isRetryable(error) || attempt >= retry.retries) throw error;
        await sleep(backoffDelayMs(attempt, retry, retryAfterOf(error)), signal);
      }
    }
  }

  #acquireBody(options: AcquireOptions, leaseId: string): Omit<AcquireRequest, "waitMs"> {
    const body: Omit<AcquireRequest, "waitMs"> = {
      ttlMs: parseDuration(options.ttl ?? DEFAULT_TTL_MS, "ttl"),
      leaseId,
    };
    const owner = options.owner ?? this.#owner;
    if (owner !== undefined) body.owner = owner;
    if (options.mode !== undefined) body.mode = options.mode;
    if (options.limit !== undefined) body.limit = options.limit;
    if (options.permits !== undefined) body.permits = options.permits;
    if (options.reentrant !== undefined) body.reentrant = options.reentrant;
    if (options.lockDelay !== undefined) body.lockDelayMs = parseDuration(options.lockDelay, "lockDelay");
    return body;
  }

  /**
   * Drops whatever the server may hold for an acquire we gave up on: a queued waiter (the platform does
   * not report disconnects) or a grant whose answer never arrived. Best effort: failures are ignored.
   */
  async #abandon(name: string, leaseId: string): Promise<void> {
    await this.#transport
      .call(name, "release", { leaseId }, { timeoutMs: ABANDON_TIMEOUT_MS })
      .catch(() => undefined);
  }
}

/** A fresh leaseId: 32 hex characters from the platform's CSPRNG (Workers, Node ≥ 18, Deno, Bun, browsers). */
export function newLeaseId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function checkName(name: string): void {
  if (!LOCK_NAME_PATTERN.test(name)) {
    throw new ValidationError(
      "invalid_name",
      `a lock name is 1–200 characters of A–Z a–z 0–9 . _ - : (got ${JSON.stringify(name)})`,
    );
  }
}

function retryAfterOf(error: unknown): number {
  return error instanceof ServiceError ? (error.retryAfterMs ?? 0) : 0;
}

function badAnswer(action: string): ServiceError {
  // Status 200: an answer arrived and is not the API's, so retrying would not help.
  return new ServiceError("bad_response", `the service's ${action} answer is not edgelock's`, {
    status: 200,
  });
}
