/**
 * The chaos clients' lock calls made through the edgelock client library (client/src), so the harness tests
 * the library's own retries (same leaseId after a lost answer or a restart), re-polling and error mapping
 * under the injected faults. The `fetch` it is given reports every failed attempt to the harness; the
 * library decides what to retry. `RawLockClient` (lock-client.ts) is the same contract over bare fetch.
 */
import {
  EdgelockClient,
  isEdgelockError,
  LeaseLostError,
  type Lease as LibraryLease,
  LockHeldError,
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

export class LibraryLockClient implements ChaosLockClient {
  readonly #client: EdgelockClient;

  constructor(baseUrl: string, onRetry: RetryListener) {
    this.#client = new EdgelockClient({
      url: baseUrl,
      fetch: reportingFetch(onRetry),
      // A restart of the local server takes a few seconds: retry often enough to ride it out; the
      // callers' deadlines (an abort signal) bound the whole.
      retry: { retries: 40, minDelayMs: 50, maxDelayMs: 300 },
      requestTimeout: "5s",
    });
  }

  async acquire(name: string, o: AcquireOptions): Promise<AcquireResult> {
    try {
      const lease = await this.#client.acquire(name, {
        leaseId: o.leaseId,
        ttl: o.ttlMs,
        wait: o.waitMs,
        owner: o.owner,
        ...o.ask,
        signal: AbortSignal.timeout(o.deadlineMs),
      });
      return { kind: "granted", lease: wireOf(lease) };
    } catch (err) {
      if (err instanceof LockHeldError)
        return { kind: "busy", code: err.code, retryAfterMs: err.retryAfterMs };
      if (err instanceof LeaseLostError) return { kind: "ended", code: err.code, reason: err.reason };
      return { kind: "gave-up", lastError: describe(err) };
    }
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
