/**
 * The lock API as the chaos holders use it: a small interface plus an implementation over raw `fetch`.
 * The holder loop (holder-process.ts) only sees `ChaosLockClient`, so the edgelock client library
 * (library-client.ts) and this raw client are interchangeable. The raw client does what a careful client
 * must: it chooses the leaseId itself, retries the same request (same leaseId) after network errors and
 * 503s, and re-polls at once while it is queued, promising so (`repoll: true`) while it means to.
 */
import type { Problem, Lease as WireLease } from "../client/src/protocol.ts";
import type { LockAsk } from "./locks.ts";

/** What the loop and the checks use of a lease: the server's id, token, times, mode and permits. */
export type Lease = Pick<WireLease, "leaseId" | "token" | "expiresAt" | "ttlMs" | "mode" | "permits">;

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
  /** The request's leaseId, or null to let the client choose (a session chooses one per socket). */
  leaseId: string | null;
  ttlMs: number;
  waitMs: number;
  owner: string;
  /** Mode, limit and permits, as the lock's kind asks them. */
  ask: LockAsk;
  /** Give up (and report it) after this long of retrying network errors and 503s. */
  deadlineMs: number;
}

/** Called for every retry, so the harness can count faults the client saw. */
export type RetryListener = (what: string, leaseId: string, cause: string) => void;

export interface ChaosLockClient {
  acquire(name: string, opts: AcquireOptions): Promise<AcquireResult>;
  renew(name: string, leaseId: string, deadlineMs: number): Promise<RenewResult>;
  release(name: string, leaseId: string, deadlineMs: number): Promise<ReleaseResult>;
  /**
   * Why the lease is known lost before any answer to a call said so (a session's `lost` push or closed
   * socket), or null. Over HTTP nothing tells a holder that.
   */
  lossOf?(leaseId: string): string | null;
  /** Walks away from a lease by closing the connection it is held over, instead of releasing it. */
  abandon?(name: string, leaseId: string): void;
}

/** One HTTP answer, or the network error that stood in for it. */
export type Answer = { status: number; body: unknown } | { status: null; error: string };

/** The 409 codes that mean "not now": busy answers, as opposed to ended or refused requests. */
export const BUSY_CODES: readonly string[] = ["lock_held", "waiters_ahead", "lock_delay", "too_many_waiters"];

/** Room left before the deadline below which the raw client no longer promises another re-poll. */
const REPOLL_MARGIN_MS = 1_000;

export class RawLockClient implements ChaosLockClient {
  readonly #baseUrl: string;
  readonly #onRetry: RetryListener;

  constructor(baseUrl: string, onRetry: RetryListener) {
    this.#baseUrl = baseUrl;
    this.#onRetry = onRetry;
  }

  async acquire(name: string, o: AcquireOptions): Promise<AcquireResult> {
    if (o.leaseId === null) throw new Error("the raw client re-polls by leaseId: it needs one");
    const until = Date.now() + o.deadlineMs;
    let last = "";
    while (Date.now() < until) {
      // Promise a re-poll only while there is time left for one (the last request of a wait makes none).
      const repoll = o.waitMs > 0 && until - Date.now() > o.waitMs + REPOLL_MARGIN_MS;
      const body = { ttlMs: o.ttlMs, waitMs: o.waitMs, owner: o.owner, leaseId: o.leaseId, ...o.ask };
      if (repoll) Object.assign(body, { repoll });
      const a = await postJson(this.#url(name, "acquire"), body, o.waitMs + 5_000);
      if (a.status === 200) return { kind: "granted", lease: a.body as Lease };
      if (a.status === null || a.status === 503) {
        last = a.status === null ? a.error : "503";
        this.#onRetry("acquire", o.leaseId, last);
        await sleep(50 + Math.floor(Math.random() * 100));
        continue;
      }
      const p = a.body as Problem;
      if (BUSY_CODES.includes(p.code) && p.position !== undefined) {
        // Still queued after the wait ran out: re-poll at once with the same leaseId, in its turn.
        last = "queued";
        continue;
      }
      if (BUSY_CODES.includes(p.code)) {
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
      const a = await postJson(this.#url(name, op), { leaseId }, 5_000);
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

  #url(name: string, op: string): string {
    return `${this.#baseUrl}/v1/locks/${encodeURIComponent(name)}/${op}`;
  }
}

/** POSTs a JSON body; a network error or timeout is an answer too (`status: null`), never a throw. */
export async function postJson(url: string, body: object, timeoutMs: number): Promise<Answer> {
  try {
    const res = await fetch(url, {
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

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
