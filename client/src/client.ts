/**
 * The edgelock client: acquire a lease (waiting as long as asked, re-polling past one request's cap),
 * retry lost requests with the same leaseId, and run work under one lock (`withLock`) or several
 * (`withLocks`). It owns acquiring; a `Lease` (lease.ts) owns everything after the grant. Zero
 * dependencies: it needs only `fetch`, or a Workers service binding.
 */
import { type Duration, parseDuration } from "./duration.ts";
import { AuthError, LeaseLostError, LockHeldError, ValidationError } from "./errors.ts";
import { Lease, type LeaseHost } from "./lease.ts";
import type {
  AcquireRequest,
  EdgelockRpcApi,
  LockMode,
  LockView,
  ReleaseResponse,
  RenewRequest,
  Lease as WireLease,
} from "./protocol.ts";
import { LEASE_ID_PATTERN, LOCK_NAME_PATTERN, MAX_WAIT_MS } from "./protocol.ts";
import { isRetryable, type RetryOptions, resolveRetry, retrying, sleep } from "./retry.ts";
import { type FetchLike, HttpTransport, RpcTransport, type Transport } from "./transport.ts";
import { expectAnswer, isLockView, isReleaseResponse, isWireLease } from "./wire.ts";

/** Lease length when `ttl` is not given. */
export const DEFAULT_TTL_MS = 30_000;
/** Time budget of one request, on top of the time it is asked to wait. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Time budget of the best-effort release that drops an abandoned wait. */
const ABANDON_TIMEOUT_MS = 2_000;

export interface ClientOptions {
  /**
   * Base URL of the service, e.g. `"https://locks.example.com"`. Required unless `binding` is given. With a
   * service binding's `fetch`, any URL works (`"https://edgelock"`).
   */
  url?: string | undefined;
  /**
   * A Workers service binding to edgelock's `EdgelockRpc` entrypoint. When given, every call goes over
   * Workers RPC (no URL, no HTTP, no JSON), and `url`, `fetch` and `headers` are not used.
   * @default undefined (HTTP through `fetch`)
   */
  binding?: EdgelockRpcApi | undefined;
  /** API key, sent as `Authorization: Bearer <apiKey>` (or with each RPC call). @default undefined (none) */
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
  /**
   * This client's secret holder identity for `reentrant` acquires (16–128 of `A-Za-z0-9_-`): holds are
   * counted per (API key, holderKey). Share one value only between code that may re-enter the same locks.
   * @default a random value per client instance
   */
  holderKey?: string | undefined;
  /**
   * Retries of transient failures (network errors, timeouts, `unavailable`); answers are never retried.
   * @default { retries: 4, minDelayMs: 100, maxDelayMs: 2000 }
   */
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
  /**
   * This client acquiring again while it holds gets the same lease, hold count + 1 (holders are told apart
   * by the client's secret `holderKey`, never by `owner`). The re-acquire must ask for the same mode and
   * permits as the held lease.
   * @default false
   */
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
 * `withLocks` options: those of `withLock`, applied to every lock. `wait` is one budget for the whole set;
 * a `leaseId` of your own cannot be given (each lock needs its own).
 */
export type WithLocksOptions = Omit<WithLockOptions, "leaseId">;

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
  readonly #holderKey: string;

  constructor(options: ClientOptions) {
    if (typeof options !== "object" || options === null) {
      throw invalid("new EdgelockClient(options) needs an options object, e.g. { url, apiKey }");
    }
    const { binding, url, apiKey, holderKey } = options;
    if (apiKey !== undefined && typeof apiKey !== "string") throw invalid("options.apiKey must be a string");
    if (binding !== undefined) {
      if (typeof binding !== "object" || binding === null || typeof binding.acquire !== "function") {
        throw invalid("options.binding must be a service binding to edgelock's EdgelockRpc entrypoint");
      }
      this.#transport = new RpcTransport(binding, apiKey);
    } else {
      if (typeof url !== "string" || !/^https?:\/\/[^/]/i.test(url)) {
        throw invalid(
          `options.url must be the service's base URL, e.g. "https://locks.example.com" (got ${describeValue(url)}), or pass a service binding as options.binding`,
        );
      }
      this.#transport = new HttpTransport({ ...options, url });
    }
    if (holderKey !== undefined && !LEASE_ID_PATTERN.test(holderKey)) {
      throw invalid("options.holderKey must be 16–128 characters of A–Z a–z 0–9 _ -");
    }
    this.#holderKey = holderKey ?? newLeaseId();
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
   * Acquires a lease, waiting up to `wait`. Lost requests are retried with backoff and the same leaseId,
   * so a lost answer returns the lease it granted instead of a second grant or a self-deadlock.
   *
   * @throws {LockHeldError} when the lock is still busy after `wait` (with `retryAfterMs` and `holder`).
   * @throws {ValidationError | AuthError | ServiceError} for refused or failed requests; `grant_mismatch`
   *   when the service answered with a lease of another mode or permits (the hold is given back).
   * @throws the signal's reason when `signal` aborts (the cancel is sent from the abort itself).
   * @example
   * await using lease = await client.acquire("deploy", { ttl: "1m", wait: "2m" });
   */
  async acquire(name: string, options: AcquireOptions = {}): Promise<Lease> {
    checkName(name);
    const signal = options.signal;
    signal?.throwIfAborted();
    const waitMs = parseDuration(options.wait ?? 0, "wait");
    let leaseId = options.leaseId ?? newLeaseId();
    const base = this.#acquireBody(options);
    const waitUntil = Date.now() + waitMs;
    // Whether the server may know this leaseId: a request is on its way, or one waited or was lost.
    let inFlight = false;
    let mayBeKnown = false;
    let cancelling: Promise<void> | null = null;
    const cancel = (): Promise<void> => {
      cancelling ??= this.#abandon(name, leaseId);
      return cancelling;
    };
    // Cancel from the abort itself, not once the aborted request has failed: by then the server may have
    // granted this waiter a lease nobody will use (issue 13, item 5).
    const onAbort = (): void => {
      if (inFlight || mayBeKnown) void cancel();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        try {
          const { answer, sentAt } = await retrying(
            async () => {
              const sentAt = Date.now();
              const left = Math.max(0, waitUntil - sentAt);
              const requestWaitMs = Math.min(MAX_WAIT_MS, left);
              // More waiting after this request's wait ends: promise the re-poll, so the turn is kept.
              const body: AcquireRequest = { ...base, leaseId, waitMs: requestWaitMs };
              if (left > requestWaitMs) body.repoll = true;
              inFlight = true;
              mayBeKnown ||= requestWaitMs > 0;
              try {
                const answer = await this.#transport.call(name, "acquire", body, {
                  signal,
                  timeoutMs: requestWaitMs + this.#host.requestTimeoutMs,
                });
                return { answer, sentAt };
              } catch (error) {
                // Granted with the answer lost, perhaps: the server may know the leaseId.
                mayBeKnown ||= isRetryable(error);
                throw error;
              } finally {
                inFlight = false;
              }
            },
            { policy: this.#host.retry, signal },
          );
          const wire = expectAnswer(answer, isWireLease, "acquire");
          await this.#checkGrant(name, leaseId, base, wire);
          const lease = new Lease(wire, sentAt, this.#host);
          if (options.autoRenew === true) lease.keepAlive({ deadline: options.deadline });
          return lease;
        } catch (error) {
          signal?.throwIfAborted();
          const left = waitUntil - Date.now();
          if (!(error instanceof LockHeldError) || error.code === "too_many_waiters" || left <= 0) {
            throw error;
          }
          // Queued: re-poll at once (within REPOLL_RESERVE_MS) with the leaseId the queue knows.
          // Not queued (a lock-delay): wait out the server's hint first.
          if (error.position !== undefined) leaseId = error.leaseId ?? leaseId;
          else await sleep(Math.min(left, Math.max(error.retryAfterMs, 50)), signal);
        }
      }
    } catch (error) {
      const refused = error instanceof ValidationError || error instanceof AuthError;
      if (cancelling !== null || (mayBeKnown && !refused)) await cancel();
      throw signal?.aborted ? signal.reason : error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Runs `fn` while holding the lock: acquires, renews in the background at a third of the TTL left,
   * and releases in `finally`. If the lease is lost while `fn` runs, `lease.signal` aborts so `fn` can stop,
   * and `withLock` rejects with the `LeaseLostError` even if `fn` resolved, because its work may have
   * overlapped another holder's. A failed release is not reported: the lease then ends at its TTL. While
   * `fn` runs, the lease keeps a Node process alive (a callback that only awaits `lease.signal` is held).
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
    const lease = await this.acquire(name, { ...options, autoRenew: false });
    lease.keepAlive({ deadline: options.deadline, ref: true });
    let result: T;
    try {
      result = await fn(lease);
    } finally {
      await lease.release().catch(() => undefined);
    }
    if (lease.lost !== null) throw lease.lost;
    return result;
  }

  /**
   * Runs `fn` while holding every lock in `names`, without deadlock against other `withLocks` callers:
   * locks are taken one at a time in one global order (sorted names), within one `wait` budget for the
   * whole set, all or nothing (a lock that cannot be had in time releases those already taken). All are
   * renewed while `fn` runs and released in reverse order afterwards. `fn` gets the leases in the order of
   * `names` and a signal that aborts when any of them is lost; `withLocks` then rejects with that loss.
   *
   * @throws {ValidationError} for an empty list or a name listed twice.
   * @example
   * await client.withLocks(["account:alice", "account:bob"], async ([from, to], signal) => {
   *   await transfer({ fences: [from.token, to.token], signal });
   * }, { ttl: "10s", wait: "30s" });
   */
  async withLocks<T>(
    names: readonly string[],
    fn: (leases: Lease[], signal: AbortSignal) => Promise<T> | T,
    options: WithLocksOptions = {},
  ): Promise<T> {
    if (!Array.isArray(names) || names.length === 0) throw invalid("withLocks needs at least one lock name");
    for (const name of names) checkName(name);
    const order = [...names].sort();
    const twice = order.find((name, i) => order[i + 1] === name);
    if (twice !== undefined) throw invalid(`lock ${JSON.stringify(twice)} is listed twice`);
    if ("leaseId" in options && options.leaseId !== undefined) {
      throw invalid("withLocks chooses one leaseId per lock; leave leaseId out");
    }
    const waitUntil = Date.now() + parseDuration(options.wait ?? 0, "wait");
    const held: Lease[] = [];
    try {
      for (const name of order) {
        // A lock already held that is lost meanwhile stops the wait for the next one.
        const signals = held.map((lease) => lease.signal);
        if (options.signal !== undefined) signals.push(options.signal);
        const lease = await this.acquire(name, {
          ...options,
          wait: Math.max(0, waitUntil - Date.now()),
          signal: signals.length === 0 ? undefined : AbortSignal.any(signals),
          autoRenew: false,
        });
        lease.keepAlive({ deadline: options.deadline, ref: true });
        held.push(lease);
      }
    } catch (error) {
      await releaseInReverse(held);
      throw held.find((lease) => lease.lost !== null)?.lost ?? error;
    }
    const byName = new Map(held.map((lease) => [lease.name, lease]));
    const leases = names.map((name) => byName.get(name) as Lease);
    let result: T;
    try {
      result = await fn(leases, AbortSignal.any(held.map((lease) => lease.signal)));
    } finally {
      await releaseInReverse(held);
    }
    const lost = held.find((lease) => lease.lost !== null)?.lost;
    if (lost) throw lost;
    return result;
  }

  /** The lock's public state: holders (never their leaseIds), waiters, last token, semaphore use. */
  async status(name: string, options: { signal?: AbortSignal } = {}): Promise<LockView> {
    checkName(name);
    const answer = await this.#callWithRetry(name, "inspect", null, options.signal);
    return expectAnswer(answer, isLockView, "status");
  }

  /**
   * Renews a lease known only by its leaseId (a script's, or one acquired by another process); with
   * `mode: "shared"`, downgrades a read-write lock's writer to a reader. Prefer `lease.renew()` when you
   * hold a `Lease`.
   * @throws {LeaseLostError} when the lease is not held (`reason` says why).
   */
  async renewById(
    name: string,
    leaseId: string,
    options: { ttl?: Duration; mode?: "shared" } = {},
  ): Promise<WireLease> {
    checkName(name);
    const body: RenewRequest = { leaseId };
    if (options.ttl !== undefined) body.ttlMs = parseDuration(options.ttl, "ttl");
    // A writer's lease becomes a reader's without being released, admitting waiting readers.
    if (options.mode !== undefined) body.mode = options.mode;
    const answer = await this.#callWithRetry(name, "renew", body);
    return expectAnswer(answer, isWireLease, "renew");
  }

  /**
   * Releases a lease (or cancels a queued wait) known only by its leaseId. Safe to retry.
   * @throws {LeaseLostError} when the lease is not held (`reason` says why).
   */
  async releaseById(name: string, leaseId: string): Promise<ReleaseResponse> {
    checkName(name);
    const answer = await this.#callWithRetry(name, "release", { leaseId });
    return expectAnswer(answer, isReleaseResponse, "release");
  }

  #callWithRetry(
    name: string,
    action: "inspect" | "renew" | "release",
    body: object | null,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const timeoutMs = this.#host.requestTimeoutMs;
    return retrying(() => this.#transport.call(name, action, body, { signal, timeoutMs }), {
      policy: this.#host.retry,
      signal,
    });
  }

  #acquireBody(options: AcquireOptions): Omit<AcquireRequest, "waitMs" | "leaseId"> {
    const body: Omit<AcquireRequest, "waitMs" | "leaseId"> = {
      ttlMs: parseDuration(options.ttl ?? DEFAULT_TTL_MS, "ttl"),
    };
    const owner = options.owner ?? this.#owner;
    if (owner !== undefined) body.owner = owner;
    if (options.mode !== undefined) body.mode = options.mode;
    if (options.limit !== undefined) body.limit = options.limit;
    if (options.permits !== undefined) body.permits = options.permits;
    if (options.reentrant === true) {
      body.reentrant = true;
      body.holderKey = this.#holderKey;
    }
    if (options.lockDelay !== undefined) body.lockDelayMs = parseDuration(options.lockDelay, "lockDelay");
    return body;
  }

  /**
   * Refuses a grant of another mode or size than asked for: a reentrant answer must never let a writer
   * run under the shared lease this holder already has. The hold the request added is given back first
   * (by the leaseId it was sent with, which releases that one hold of a reentrant lease).
   */
  async #checkGrant(
    name: string,
    leaseId: string,
    asked: Omit<AcquireRequest, "waitMs" | "leaseId">,
    wire: WireLease,
  ): Promise<void> {
    const mode: LockMode = asked.mode ?? "exclusive";
    const permits = asked.permits ?? 1;
    if (wire.mode === mode && wire.permits === permits) return;
    const unknownAlias = await this.#transport
      .call(name, "release", { leaseId }, { timeoutMs: ABANDON_TIMEOUT_MS })
      .then(() => false)
      .catch((error: unknown) => error instanceof LeaseLostError);
    // A server that does not release by re-entry alias: one release of the lease itself drops one hold.
    if (unknownAlias && wire.leaseId !== leaseId) await this.#abandon(name, wire.leaseId);
    const held = `a ${wire.mode} lease of ${wire.permits} permit(s)`;
    const hint =
      wire.holdCount > 1
        ? ": this holder already holds the lock that way; release it before re-entering in another mode"
        : "";
    throw new ValidationError(
      "grant_mismatch",
      `asked ${name} for a ${mode} lease of ${permits} permit(s) and was granted ${held}${hint}; the hold was given back`,
    );
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

/** A fresh leaseId: 32 hex characters from the platform's CSPRNG (Workers, Node, Deno, Bun, browsers). */
export function newLeaseId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Releases in reverse order of acquiring; failures are ignored (those leases end at their TTL). */
async function releaseInReverse(leases: readonly Lease[]): Promise<void> {
  for (const lease of [...leases].reverse()) {
    await lease.release().catch(() => undefined);
  }
}

function checkName(name: string): void {
  if (typeof name !== "string" || !LOCK_NAME_PATTERN.test(name)) {
    throw new ValidationError(
      "invalid_name",
      `a lock name is 1–200 characters of A–Z a–z 0–9 . _ - : (got ${describeValue(name)})`,
    );
  }
}

function invalid(detail: string): ValidationError {
  return new ValidationError("invalid_argument", detail);
}

function describeValue(value: unknown): string {
  return value === undefined ? "undefined" : JSON.stringify(value);
}
