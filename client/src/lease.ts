/**
 * A held lease: its fencing token, the client's own conservative idea of when it ends, renew/release,
 * `await using` support, and the optional watchdog that renews it in the background. When the lease is
 * lost (the server says `not_held`, renewals fail until the deadline, or the caller's deadline comes), its
 * `signal` aborts and `lost` says why. Acquiring, waiting and retrying acquires live in client.ts.
 */
import type { Duration } from "./duration.ts";
import { parseDuration } from "./duration.ts";
import { LeaseLostError } from "./errors.ts";
import type { LockMode, ReleaseResponse, Lease as WireLease } from "./protocol.ts";
import { isRetryable, type ResolvedRetry, retrying, unrefTimer } from "./retry.ts";
import type { Transport } from "./transport.ts";
import { expectAnswer, isReleaseResponse, isWireLease } from "./wire.ts";

/** Fraction of the TTL taken off the client's deadline for clock drift between here and the server. */
export const DRIFT_FACTOR = 0.01;
/** Fixed part of the drift margin, for short TTLs. */
export const MIN_DRIFT_MS = 10;
/** The watchdog renews once this fraction of the TTL is left (Redisson renews at a third). */
export const RENEW_AT_FRACTION_LEFT = 1 / 3;
/** Least time before a caller's deadline at which the signal fires, leaving room to stop and release. */
export const MIN_DEADLINE_MARGIN_MS = 250;

/** What a lease needs from the client that made it. */
export interface LeaseHost {
  readonly transport: Transport;
  readonly retry: ResolvedRetry;
  /** Time budget of one renew/release request. */
  readonly requestTimeoutMs: number;
}

export interface KeepAliveOptions {
  /**
   * The caller's own hard deadline (epoch ms by the local clock), e.g. when a serverless invocation will be
   * cut off. The signal fires (`lost.reason === "deadline"`) once less than a renewal round trip is left
   * (at least MIN_DEADLINE_MARGIN_MS), so the work stops and the lease is released in time.
   */
  deadline?: number | Date | undefined;
  /**
   * Keep a Node process alive while the lease is held, as `withLock` does for its callback. Without it the
   * lease's timers are `unref`'d, so a forgotten lease never holds a script open until its TTL.
   * @default false
   */
  ref?: boolean | undefined;
}

type LeaseStatus = "held" | "lost" | "released";

/**
 * A lease on a lock. Get one from `client.acquire()`; give it back with `release()` or `await using`.
 *
 * @example
 * await using lease = await client.acquire("reports", { ttl: "30s", autoRenew: true });
 * await writeReport({ fence: lease.token, signal: lease.signal });
 */
export class Lease implements AsyncDisposable {
  readonly name: string;
  /** The holder's secret and idempotency key; never shown to other clients. */
  readonly leaseId: string;
  /** Fencing token: strictly greater than every token granted before on this lock. Guard writes with it. */
  readonly token: number;
  readonly owner: string | null;
  readonly mode: LockMode;
  readonly permits: number;
  /** The lock's semaphore limit (1 for a mutex). */
  readonly limit: number;
  readonly #host: LeaseHost;
  readonly #controller = new AbortController();
  #status: LeaseStatus = "held";
  #lost: LeaseLostError | null = null;
  #ttlMs = 0;
  #expiresAt = 0;
  #holdCount = 0;
  #deadline = 0;
  #rttMs = 0;
  #keepAlive = false;
  #ref = false;
  #callerDeadline: number | undefined;
  #lastRenewError: unknown;
  #releasing: Promise<ReleaseResponse> | null = null;
  readonly #timers = new Map<"expiry" | "renew" | "deadline", ReturnType<typeof setTimeout>>();

  /** @internal Built by the client from a granted answer and the local time its request was sent. */
  constructor(wire: WireLease, sentAt: number, host: LeaseHost) {
    this.name = wire.name;
    this.leaseId = wire.leaseId;
    this.token = wire.token;
    this.owner = wire.owner;
    this.mode = wire.mode;
    this.permits = wire.permits;
    this.limit = wire.limit;
    this.#host = host;
    this.#accept(wire, sentAt);
  }

  /** Lease length granted by the last acquire or renew. */
  get ttlMs(): number {
    return this.#ttlMs;
  }
  /** Server's expiry (epoch ms by the *server's* clock); shown, never relied on. */
  get expiresAt(): number {
    return this.#expiresAt;
  }
  /** Reentrant holds on this lease. */
  get holdCount(): number {
    return this.#holdCount;
  }
  /**
   * The client's deadline (local epoch ms): when the last successful acquire/renew request was *sent*, plus
   * its TTL, less a drift margin. The server's lease cannot have ended before this.
   */
  get deadline(): number {
    return this.#deadline;
  }
  /** Aborts when the lease is lost; its reason is the `LeaseLostError`. Pass it to the guarded work. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }
  /** Why the lease was lost, or `null` while it is held (or after a clean release). */
  get lost(): LeaseLostError | null {
    return this.#lost;
  }
  /** True until released or lost, and only before the client's deadline. */
  get held(): boolean {
    return this.#status === "held" && Date.now() < this.#deadline;
  }

  /**
   * Extends the lease by its TTL (or `ttl`) from now. Network errors and 5xx are retried until the
   * deadline. A `not_held` answer marks the lease lost (the signal fires) and throws `LeaseLostError`.
   */
  async renew(options: { ttl?: Duration } = {}): Promise<this> {
    if (this.#status === "released") {
      throw new LeaseLostError("not_held", "released", "this lease was released; acquire again");
    }
    if (this.#lost !== null) throw this.#lost;
    const ttlMs = options.ttl === undefined ? undefined : parseDuration(options.ttl, "ttl");
    const body = ttlMs === undefined ? { leaseId: this.leaseId } : { leaseId: this.leaseId, ttlMs };
    if (this.#deadline <= Date.now()) {
      this.#expire();
      throw this.#lostOrExpired();
    }
    try {
      // Retried until the deadline, not a number of times: a late renewal is still worth having.
      const { wire, sentAt } = await retrying(
        async () => {
          const sentAt = Date.now();
          const timeoutMs = Math.max(1, Math.min(this.#host.requestTimeoutMs, this.#deadline - sentAt));
          const answer = await this.#host.transport.call(this.name, "renew", body, { timeoutMs });
          return { wire: expectAnswer(answer, isWireLease, "renew"), sentAt };
        },
        { policy: this.#host.retry, until: this.#deadline },
      );
      if (this.#status === "held") this.#accept(wire, sentAt);
      return this;
    } catch (error) {
      if (error instanceof LeaseLostError) {
        this.#lose(error);
        throw error;
      }
      if (!isRetryable(error)) throw error;
      this.#lastRenewError = error;
      this.#expire();
      throw this.#lostOrExpired();
    }
  }

  /**
   * Gives the lease back. Safe to call twice (the second call returns the first answer) and safe to
   * retry: the server answers a repeated release the same way. Throws `LeaseLostError` if the server no
   * longer knows the lease as held.
   */
  release(): Promise<ReleaseResponse> {
    this.#releasing ??= this.#release();
    return this.#releasing;
  }

  /** `await using lease = await client.acquire(...)` releases on scope exit; a lease already lost is ignored. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.release();
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
    }
  }

  /**
   * Starts the watchdog: renew in the background each time a third of the TTL is left, until released or
   * lost. Failed renewals are retried with backoff; if none succeeds before the deadline, the lease is lost
   * with reason `expired`. Calling it again only updates the caller's deadline.
   */
  keepAlive(options: KeepAliveOptions = {}): this {
    if (options.deadline !== undefined) this.#callerDeadline = +options.deadline;
    if (options.ref !== undefined) this.#ref = options.ref;
    if (this.#status !== "held") return this;
    this.#keepAlive = true;
    this.#schedule();
    return this;
  }

  async #release(): Promise<ReleaseResponse> {
    this.#clearTimers();
    const wasLostOnServer = this.#lost !== null && this.#lost.code === "not_held";
    if (wasLostOnServer && this.#lost !== null) throw this.#lost;
    try {
      const answer = await retrying(
        async () =>
          expectAnswer(
            await this.#host.transport.call(
              this.name,
              "release",
              { leaseId: this.leaseId },
              { timeoutMs: this.#host.requestTimeoutMs },
            ),
            isReleaseResponse,
            "release",
          ),
        { policy: this.#host.retry },
      );
      if (this.#status === "held") this.#status = "released";
      return answer;
    } catch (error) {
      if (error instanceof LeaseLostError) this.#lose(error);
      throw error;
    }
  }

  #accept(wire: WireLease, sentAt: number): void {
    const now = Date.now();
    this.#ttlMs = wire.ttlMs;
    this.#expiresAt = wire.expiresAt;
    this.#holdCount = wire.holdCount;
    // Counted from when the request was sent, by this clock; validForMs is a duration measured by the lock
    // object from the request's arrival (later), so this cannot end after the lease does. Not sentAt + ttl:
    // a waited grant starts later than sentAt, and a retry may collect a lease granted before sentAt.
    const validForMs = wire.validForMs;
    this.#deadline = sentAt + validForMs - Math.ceil(validForMs * DRIFT_FACTOR) - MIN_DRIFT_MS;
    this.#rttMs = Math.max(0, now - sentAt);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#status !== "held" || this.#releasing !== null) return;
    const now = Date.now();
    this.#setTimer("expiry", this.#deadline - now, () => this.#expire());
    if (this.#keepAlive) {
      const renewAt = this.#deadline - this.#ttlMs * RENEW_AT_FRACTION_LEFT;
      this.#setTimer("renew", renewAt - now, () => {
        this.#timers.delete("renew");
        this.renew().catch((error: unknown) => {
          // Lost or expired: #lose already fired the signal. Anything else (a 4xx such as a revoked key)
          // cannot be fixed by retrying; the expiry timer ends the lease at the deadline.
          this.#lastRenewError = error;
        });
      });
    }
    if (this.#callerDeadline !== undefined) {
      const margin = Math.max(MIN_DEADLINE_MARGIN_MS, 2 * this.#rttMs);
      this.#setTimer("deadline", this.#callerDeadline - margin - now, () =>
        this.#lose(
          new LeaseLostError(
            "deadline",
            "deadline",
            "the caller's deadline leaves no time for another renewal; stop and release",
          ),
        ),
      );
    }
  }

  #lostOrExpired(): LeaseLostError {
    return this.#lost ?? new LeaseLostError("lease_expired", "expired", "the lease expired");
  }

  #expire(): void {
    if (this.#status !== "held") return;
    const cause = this.#lastRenewError;
    const detail =
      cause === undefined
        ? "the lease reached its deadline without being renewed"
        : `renewals failed until the lease's deadline passed (last: ${cause instanceof Error ? cause.message : String(cause)})`;
    this.#lose(new LeaseLostError("lease_expired", "expired", detail, { cause }));
  }

  #lose(error: LeaseLostError): void {
    if (this.#status !== "held") return;
    this.#status = "lost";
    this.#lost = error;
    this.#clearTimers();
    this.#controller.abort(error);
  }

  #setTimer(kind: "expiry" | "renew" | "deadline", delayMs: number, fn: () => void): void {
    const old = this.#timers.get(kind);
    if (old !== undefined) clearTimeout(old);
    const timer = setTimeout(fn, Math.max(0, delayMs));
    this.#timers.set(kind, this.#ref ? timer : unrefTimer(timer));
  }

  #clearTimers(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }
}
