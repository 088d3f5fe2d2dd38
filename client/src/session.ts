/**
 * A session with one lock (`client.session(name)`): acquire, renew and release over one WebSocket, grants
 * pushed however long the wait, and every lease's `signal` aborted the moment the lock pushes `lost` or the
 * socket closes (the lock ends everything a closed session held, so a dropped socket is a lost lease).
 * New operations reconnect with back-off; leases never outlive their socket. Leases are lease.ts's; the
 * socket's frames and heartbeat are session-connection.ts's.
 */
import type { AcquireOptions, WithLockOptions } from "./client.ts";
import { parseDuration } from "./duration.ts";
import { LeaseLostError, ValidationError } from "./errors.ts";
import { holdWhile, Lease, type LeaseHost } from "./lease.ts";
import type { AcquireRequest, ReleaseResponse, Lease as WireLease } from "./protocol.ts";
import { MAX_SESSION_WAIT_MS } from "./protocol.ts";
import { type ResolvedRetry, retrying } from "./retry.ts";
import { SessionConnection } from "./session-connection.ts";
import type { SocketOpener } from "./socket.ts";
import type { Action, CallOptions, Transport } from "./transport.ts";
import { expectAnswer, isReleaseResponse, isWireLease } from "./wire.ts";

/** What a session needs from the client that opened it. */
export interface SessionHost {
  readonly opener: SocketOpener;
  readonly retry: ResolvedRetry;
  readonly requestTimeoutMs: number;
  acquireBody(options: AcquireOptions): Omit<AcquireRequest, "waitMs" | "leaseId">;
  newLeaseId(): string;
  /** The error for a grant of another mode or size than `asked`, or null when it is what was asked. */
  grantMismatch(
    asked: Omit<AcquireRequest, "waitMs" | "leaseId">,
    granted: Pick<WireLease, "mode" | "permits" | "holdCount">,
  ): ValidationError | null;
}

interface Tracked {
  readonly connection: SessionConnection;
  readonly lose: (error: LeaseLostError) => void;
}

/**
 * A session with one lock. Everything it holds is lost when its socket closes, so a holder that dies frees
 * the lock within seconds; `close()` it (or `await using`) when done. Get one from `client.session(name)`.
 *
 * @example
 * await using session = client.session("deploy");
 * await using lease = await session.acquire({ ttl: "1m", wait: "2h" }); // one pushed grant, no re-polls
 * await deploy({ fence: lease.token, signal: lease.signal });
 */
export class LockSession implements AsyncDisposable {
  readonly name: string;
  readonly #host: SessionHost;
  #connection: SessionConnection | null = null;
  #connecting: Promise<SessionConnection> | null = null;
  #closed = false;
  /** The leases held through this session, by every leaseId the lock may name them by. */
  readonly #leases = new Map<string, Tracked>();

  /** @internal Opened by `client.session(name)`. */
  constructor(name: string, host: SessionHost) {
    this.name = name;
    this.#host = host;
  }

  /** Whether a socket is open now (one is opened by the next operation otherwise). */
  get connected(): boolean {
    return this.#connection !== null && !this.#connection.ended;
  }

  /**
   * Acquires a lease through the session, waiting up to `wait` (at most 24 h) with the grant pushed when
   * its turn comes. If the socket drops during the wait, the wait goes on over a new socket (a new place
   * at the back of the queue, with a new leaseId unless you chose one, in which case the error is thrown).
   *
   * @throws {LockHeldError} when the lock is still busy after `wait`.
   * @throws the signal's reason when `signal` aborts (the cancel is sent from the abort itself).
   */
  async acquire(options: AcquireOptions = {}): Promise<Lease> {
    const signal = options.signal;
    signal?.throwIfAborted();
    const waitMs = parseDuration(options.wait ?? 0, "wait");
    if (waitMs > MAX_SESSION_WAIT_MS) throw invalid("a session's wait is at most 24h");
    const base = this.#host.acquireBody(options);
    const waitUntil = Date.now() + waitMs;
    let sent = false;
    const lease = await retrying(
      async () => {
        if (sent && options.leaseId !== undefined) throw this.#spentLeaseId(options.leaseId);
        const connection = await this.#connect(signal);
        const leaseId = options.leaseId ?? this.#host.newLeaseId();
        const body = { ...base, leaseId, waitMs: Math.max(0, waitUntil - Date.now()) };
        sent = true;
        return await this.#acquireOn(connection, body, signal);
      },
      { policy: this.#host.retry, signal },
    );
    const mismatch = this.#host.grantMismatch(base, lease);
    if (mismatch !== null) {
      await lease.release().catch(() => undefined);
      throw mismatch;
    }
    if (options.autoRenew === true) lease.keepAlive({ deadline: options.deadline });
    return lease;
  }

  /**
   * Runs `fn` while holding the lock through this session: acquires, renews over the socket, releases in
   * `finally`; rejects with the `LeaseLostError` if the lease was lost (a `lost` push, or the socket
   * closed) while `fn` ran, even if `fn` resolved.
   */
  async withLock<T>(fn: (lease: Lease) => Promise<T> | T, options: WithLockOptions = {}): Promise<T> {
    const lease = await this.acquire({ ...options, autoRenew: false });
    return holdWhile(lease, fn, options.deadline);
  }

  /**
   * Closes the socket. The lock ends what the session still held or waited for at once (their leases'
   * signals abort here, with reason `session_closed`); the session cannot be used again.
   */
  close(): void {
    this.#closed = true;
    this.#connection?.close();
    this.#connection = null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  /** The open socket, or a new one (concurrent callers share one handshake). */
  async #connect(signal: AbortSignal | undefined): Promise<SessionConnection> {
    if (this.#closed)
      throw invalid(`the session of ${this.name} was closed; open another with client.session()`);
    if (this.#connection !== null && !this.#connection.ended) return this.#connection;
    this.#connecting ??= this.#open().finally(() => {
      this.#connecting = null;
    });
    return await abortable(this.#connecting, signal);
  }

  async #open(): Promise<SessionConnection> {
    const openedAt = Date.now();
    const ws = await this.#host.opener.open(this.name, this.#host.requestTimeoutMs);
    const connection: SessionConnection = new SessionConnection(ws, openedAt, {
      lost: (frame) => {
        const tracked = this.#leases.get(frame.leaseId);
        if (tracked?.connection !== connection) return;
        this.#leases.delete(frame.leaseId);
        const by = frame.by === undefined ? "" : ` by ${frame.by}`;
        tracked.lose(
          new LeaseLostError("not_held", frame.reason, `the lock ended this lease (${frame.reason}${by})`),
        );
      },
      closed: (detail) => {
        if (this.#connection === connection) this.#connection = null;
        const error = new LeaseLostError(
          "not_held",
          "session_closed",
          `the session's socket ${detail.startsWith("closed") ? "was " : "ended: "}${detail}; a lock ends everything a closed session held`,
        );
        for (const [leaseId, tracked] of this.#leases) {
          if (tracked.connection !== connection) continue;
          this.#leases.delete(leaseId);
          tracked.lose(error);
        }
      },
    });
    if (this.#closed) connection.close();
    else this.#connection = connection;
    return connection;
  }

  /** One acquire frame and its answer; the lease is tracked the moment its grant is read. */
  #acquireOn(
    connection: SessionConnection,
    body: Omit<AcquireRequest, "repoll">,
    signal: AbortSignal | undefined,
  ): Promise<Lease> {
    let abandoned = false;
    const answer = connection.request({ type: "acquire", ...body }, (granted, sentAt) => {
      const wire = expectAnswer(granted, isWireLease, "acquire");
      if (abandoned) return null;
      return new Lease(wire, sentAt, this.#leaseHost(connection));
    });
    if (signal === undefined) return answer as Promise<Lease>;
    return new Promise<Lease>((resolve, reject) => {
      // Cancel from the abort itself: the release follows the acquire on the same socket, so the lock
      // either drops the wait or frees the grant nobody will use.
      const onAbort = (): void => {
        abandoned = true;
        connection
          .request({ type: "release", leaseId: body.leaseId as string }, () => undefined)
          .catch(() => undefined);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      answer.then(
        (lease) => {
          signal.removeEventListener("abort", onAbort);
          if (lease !== null) resolve(lease);
        },
        (error: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(signal.aborted ? signal.reason : error);
        },
      );
    });
  }

  /** Renew and release of a lease go over the socket that granted it, and fail once that socket is gone. */
  #leaseHost(connection: SessionConnection): LeaseHost {
    const transport: Transport = {
      call: (_name: string, action: Action, body: object | null, options: CallOptions) =>
        this.#call(connection, action, body as { leaseId: string }, options),
    };
    return {
      transport,
      retry: this.#host.retry,
      requestTimeoutMs: this.#host.requestTimeoutMs,
      track: (lease, lose) => {
        this.#leases.set(lease.leaseId, { connection, lose });
      },
    };
  }

  async #call(
    connection: SessionConnection,
    action: Action,
    body: { leaseId: string },
    options: CallOptions,
  ): Promise<unknown> {
    if (action !== "renew" && action !== "release") throw invalid(`a session lease cannot ${action}`);
    if (this.#leases.get(body.leaseId)?.connection !== connection) {
      throw new LeaseLostError(
        "not_held",
        "session_closed",
        "the session that held this lease has closed; a lock ends everything a closed session held",
      );
    }
    if (action === "renew") {
      return connection.request(
        { type: "renew", ...body },
        (answer) => expectAnswer(answer, isWireLease, "renew"),
        options.timeoutMs,
      );
    }
    return connection.request(
      { type: "release", ...body },
      (answer): ReleaseResponse => {
        const released = expectAnswer(answer, isReleaseResponse, "release");
        this.#leases.delete(body.leaseId);
        return released;
      },
      options.timeoutMs,
    );
  }

  #spentLeaseId(leaseId: string): ValidationError {
    return invalid(
      `the session closed while acquire waited with your leaseId ${leaseId}, which the lock has now ended; ` +
        "acquire again with another leaseId (or none)",
    );
  }
}

/** `promise`, or the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function invalid(detail: string): ValidationError {
  return new ValidationError("invalid_argument", detail);
}
