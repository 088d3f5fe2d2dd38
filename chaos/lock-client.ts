/**
 * The lock API as the chaos clients use it: a small interface plus an implementation over raw `fetch`.
 * The worker loop (client-process.ts) only sees `ChaosLockClient`, so the edgelock client library can replace
 * `RawLockClient` later without touching the loop or the checks. The raw client does what a careful client
 * must: it chooses the leaseId itself and retries the same request (same leaseId) after network errors and
 * 503s, re-polling while it is queued, so a lost answer never costs a lease or earns a second one.
 */
import type { Problem, Lease as WireLease } from "../client/src/protocol.ts";

/** What the loop and the checks use of a lease: the server's id, token and times. */
export type Lease = Pick<WireLease, "leaseId" | "token" | "expiresAt" | "ttlMs">;

export type AcquireResult =
  | { kind: "granted"; lease: Lease }
  | { kind: "busy"; code: string; retryAfterMs: number }
  | { kind: "ended"; code: string; reason: string }
  | { kind: "gave-up"; lastError: string };

export type RenewResult =
  | { kind: "renewed"; lease: Lease }
  | { kind: "lost"; reason: string }
  | { kind: "gave-up"; lastError: string };

export type ReleaseResult =
  | { kind: "released" }
  | { kind: "not-held"; reason: string }
  | { kind: "gave-up"; lastError: string };

export interface AcquireOptions {
  leaseId: string;
  ttlMs: number;
  waitMs: number;
  owner: string;
  /** Give up (and report it) after this long of retrying network errors and 503s. */
  deadlineMs: number;
}

/** Called for every retry, so the harness can count faults the client saw. */
export type RetryListener = (what: string, leaseId: string, cause: string) => void;

export interface ChaosLockClient {
  acquire(name: string, opts: AcquireOptions): Promise<AcquireResult>;
  renew(name: string, leaseId: string, deadlineMs: number): Promise<RenewResult>;
  release(name: string, leaseId: string, deadlineMs: number): Promise<ReleaseResult>;
}

type Answer = { status: number; body: unknown } | { status: null; error: string };

export class RawLockClient implements ChaosLockClient {
  readonly #baseUrl: string;
  readonly #onRetry: RetryListener;

  constructor(baseUrl: string, onRetry: RetryListener) {
    this.#baseUrl = baseUrl;
    this.#onRetry = onRetry;
  }

  async acquire(name: string, o: AcquireOptions): Promise<AcquireResult> {
    const until = Date.now() + o.deadlineMs;
    const body = { ttlMs: o.ttlMs, waitMs: o.waitMs, owner: o.owner, leaseId: o.leaseId };
    let last = "";
    while (Date.now() < until) {
      const a = await this.#post(name, "acquire", body, o.waitMs + 5_000);
      if (a.status === 200) return { kind: "granted", lease: a.body as Lease };
      if (a.status === null || a.status === 503) {
        last = a.status === null ? a.error : "503";
        this.#onRetry("acquire", o.leaseId, last);
        await sleep(50 + Math.floor(Math.random() * 100));
        continue;
      }
      const p = a.body as Problem;
      if ((p.code === "lock_held" || p.code === "lock_delay") && p.position !== undefined) {
        // Still queued after the wait ran out: re-poll with the same leaseId to keep the place.
        last = "queued";
        continue;
      }
      if (p.code === "lock_held" || p.code === "lock_delay" || p.code === "too_many_waiters") {
        return { kind: "busy", code: p.code, retryAfterMs: p.retryAfterMs ?? 100 };
      }
      if (p.code === "lease_ended" || p.code === "wait_cancelled") {
        return { kind: "ended", code: p.code, reason: String(p.reason ?? "") };
      }
      throw new Error(`acquire ${name}: unexpected ${a.status} ${JSON.stringify(a.body)}`);
    }
    return { kind: "gave-up", lastError: last };
  }

  async renew(name: string, leaseId: string, deadlineMs: number): Promise<RenewResult> {
    const a = await this.#untilAnswered(name, "renew", leaseId, deadlineMs);
    if (a.kind === "gave-up") return a;
    if (a.status === 200) return { kind: "renewed", lease: a.body as Lease };
    return { kind: "lost", reason: a.reason };
  }

  async release(name: string, leaseId: string, deadlineMs: number): Promise<ReleaseResult> {
    const a = await this.#untilAnswered(name, "release", leaseId, deadlineMs);
    if (a.kind === "gave-up") return a;
    if (a.status === 200) return { kind: "released" };
    return { kind: "not-held", reason: a.reason };
  }

  /**
   * Sends `op` for `leaseId` again (same body: it is idempotent) after network errors and 503s until the
   * server answers 200 or `not_held`, or the deadline passes.
   */
  async #untilAnswered(
    name: string,
    op: "renew" | "release",
    leaseId: string,
    deadlineMs: number,
  ): Promise<
    | { kind: "answered"; status: 200; body: unknown }
    | { kind: "answered"; status: 409; reason: string }
    | { kind: "gave-up"; lastError: string }
  > {
    const until = Date.now() + deadlineMs;
    let last = "";
    while (Date.now() < until) {
      const a = await this.#post(name, op, { leaseId }, 5_000);
      if (a.status === 200) return { kind: "answered", status: 200, body: a.body };
      if (a.status === null || a.status === 503) {
        last = a.status === null ? a.error : "503";
        this.#onRetry(op, leaseId, last);
        await sleep(30);
        continue;
      }
      const p = a.body as Problem;
      if (p.code === "not_held") return { kind: "answered", status: 409, reason: String(p.reason) };
      throw new Error(`${op} ${name}: unexpected ${a.status} ${JSON.stringify(a.body)}`);
    }
    return { kind: "gave-up", lastError: last };
  }

  async #post(name: string, op: string, body: object, timeoutMs: number): Promise<Answer> {
    try {
      const res = await fetch(`${this.#baseUrl}/v1/locks/${encodeURIComponent(name)}/${op}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.text();
      return { status: res.status, body: text === "" ? null : (JSON.parse(text) as unknown) };
    } catch (err) {
      return {
        status: null,
        error: (err as Error).name === "TimeoutError" ? "timeout" : String((err as Error).cause ?? err),
      };
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
