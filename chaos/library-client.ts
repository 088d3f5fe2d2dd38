/**
 * The chaos clients' lock calls made through the edgelock client library (client/src), so the harness tests
 * the library's own retries (same leaseId after a lost answer or a restart), re-polling and error mapping
 * under the injected faults: over HTTP (`LibraryLockClient`), or through one session per lock
 * (`SessionLockClient`, `client.session(name)`). The `fetch` it is given reports every failed attempt to the
 * harness; the library decides what to retry. `RawLockClient` (lock-client.ts) is the same contract over
 * bare fetch.
 */
import {
  EdgelockClient,
  isEdgelockError,
  LeaseLostError,
  type Lease as LibraryLease,
  LockHeldError,
  type LockSession,
} from "../client/src/index.ts";
import type {
  AcquireOptions,
  AcquireResult,
  ChaosLockClient,
  Lease,
  ReleaseResult,
  RenewResult,
  RetryListener,
} from "./lock-client.ts";

/** The library's client as every chaos client configures it. */
function chaosClient(baseUrl: string, onRetry: RetryListener): EdgelockClient {
  return new EdgelockClient({
    url: baseUrl,
    fetch: reportingFetch(onRetry),
    // A restart of the local server takes a few seconds: retry often enough to ride it out; the
    // callers' deadlines (an abort signal) bound the whole.
    retry: { retries: 40, minDelayMs: 50, maxDelayMs: 300 },
    requestTimeout: "5s",
  });
}

export class LibraryLockClient implements ChaosLockClient {
  readonly #client: EdgelockClient;

  constructor(baseUrl: string, onRetry: RetryListener) {
    this.#client = chaosClient(baseUrl, onRetry);
  }

  async acquire(name: string, o: AcquireOptions): Promise<AcquireResult> {
    return acquired(() =>
      this.#client.acquire(name, {
        leaseId: o.leaseId ?? undefined,
        ttl: o.ttlMs,
        wait: o.waitMs,
        owner: o.owner,
        ...o.ask,
        signal: AbortSignal.timeout(o.deadlineMs),
      }),
    );
  }

  async renew(name: string, leaseId: string, deadlineMs: number): Promise<RenewResult> {
    try {
      return { kind: "renewed", lease: await within(deadlineMs, this.#client.renewById(name, leaseId)) };
    } catch (err) {
      if (err instanceof LeaseLostError) return { kind: "lost", reason: err.reason };
      return { kind: "gave-up", lastError: describe(err) };
    }
  }

  async release(name: string, leaseId: string, deadlineMs: number): Promise<ReleaseResult> {
    try {
      await within(deadlineMs, this.#client.releaseById(name, leaseId));
      return { kind: "released" };
    } catch (err) {
      if (err instanceof LeaseLostError) return { kind: "not-held", reason: err.reason };
      return { kind: "gave-up", lastError: describe(err) };
    }
  }
}

/**
 * Holds leases through sessions: one `client.session(name)` per lock, kept open across leases (the library
 * reopens its socket for the next call after a cut, a restart or a close). Renew and release go over the
 * socket that granted the lease; a lease is lost the moment the lock pushes `lost` or that socket closes.
 * It lets the library choose leaseIds, so that a wait whose socket drops goes on over a new one.
 */
export class SessionLockClient implements ChaosLockClient {
  readonly #client: EdgelockClient;
  readonly #sessions = new Map<string, LockSession>();
  readonly #leases = new Map<string, LibraryLease>();

  constructor(baseUrl: string, onRetry: RetryListener) {
    this.#client = chaosClient(baseUrl, onRetry);
  }

  async acquire(name: string, o: AcquireOptions): Promise<AcquireResult> {
    const session = this.#session(name);
    return acquired(async () => {
      const lease = await session.acquire({
        ...(o.leaseId === null ? {} : { leaseId: o.leaseId }),
        ttl: o.ttlMs,
        wait: o.waitMs,
        owner: o.owner,
        ...o.ask,
        signal: AbortSignal.timeout(o.deadlineMs),
      });
      this.#leases.set(lease.leaseId, lease);
      return lease;
    });
  }

  async renew(_name: string, leaseId: string, deadlineMs: number): Promise<RenewResult> {
    const lease = this.#leases.get(leaseId);
    if (lease === undefined) return { kind: "lost", reason: "unknown" };
    try {
      await within(deadlineMs, lease.renew());
      return { kind: "renewed", lease: wireOf(lease) };
    } catch (err) {
      if (err instanceof LeaseLostError) return { kind: "lost", reason: err.reason };
      return { kind: "gave-up", lastError: describe(err) };
    }
  }

  async release(_name: string, leaseId: string, deadlineMs: number): Promise<ReleaseResult> {
    const lease = this.#leases.get(leaseId);
    this.#leases.delete(leaseId);
    if (lease === undefined) return { kind: "not-held", reason: "unknown" };
    try {
      await within(deadlineMs, lease.release());
      return { kind: "released" };
    } catch (err) {
      if (err instanceof LeaseLostError) return { kind: "not-held", reason: err.reason };
      return { kind: "gave-up", lastError: describe(err) };
    }
  }

  lossOf(leaseId: string): string | null {
    return this.#leases.get(leaseId)?.lost?.reason ?? null;
  }

  /** Closes the lock's session: the lock ends the lease at once (`session_closed`); a new session follows. */
  abandon(name: string, leaseId: string): void {
    this.#leases.delete(leaseId);
    this.#sessions.get(name)?.close();
    this.#sessions.delete(name);
  }

  #session(name: string): LockSession {
    let session = this.#sessions.get(name);
    if (session === undefined) {
      session = this.#client.session(name);
      this.#sessions.set(name, session);
    }
    return session;
  }
}

/** An acquire through the library, its outcome as the holder loop sees it. */
async function acquired(call: () => Promise<LibraryLease>): Promise<AcquireResult> {
  try {
    return { kind: "granted", lease: wireOf(await call()) };
  } catch (err) {
    if (err instanceof LockHeldError) return { kind: "busy", code: err.code, retryAfterMs: err.retryAfterMs };
    if (err instanceof LeaseLostError) return { kind: "ended", code: err.code, reason: err.reason };
    return { kind: "gave-up", lastError: describe(err) };
  }
}

/** The server's view of a lease, which is what the checker compares across clients. */
function wireOf(l: LibraryLease): Lease {
  return {
    leaseId: l.leaseId,
    token: l.token,
    ttlMs: l.ttlMs,
    expiresAt: l.expiresAt,
    mode: l.mode,
    permits: l.permits,
  };
}

/** A `fetch` that tells the harness about every attempt that failed in a way the library may retry. */
function reportingFetch(onRetry: RetryListener): typeof fetch {
  return async (input, init) => {
    const what = String(input).split("/").pop() ?? "?";
    const leaseId = leaseIdOf(init?.body);
    try {
      const res = await fetch(input, init);
      if (res.status >= 500) onRetry(what, leaseId, String(res.status));
      return res;
    } catch (err) {
      onRetry(what, leaseId, describe(err));
      throw err;
    }
  };
}

function leaseIdOf(body: BodyInit | null | undefined): string {
  if (typeof body !== "string") return "";
  const parsed: unknown = JSON.parse(body);
  return typeof parsed === "object" && parsed !== null && "leaseId" in parsed ? String(parsed.leaseId) : "";
}

/** Rejects when `ms` pass first; the call itself goes on (its retries are idempotent). */
function within<T>(ms: number, call: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

function describe(err: unknown): string {
  if (isEdgelockError(err)) return err.code;
  return err instanceof Error ? (err.name === "TimeoutError" ? "deadline" : err.message) : String(err);
}
