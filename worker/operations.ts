/**
 * The lock operations of API v1, shared by both ways in: the HTTP routes (app.ts) and the Workers RPC
 * entrypoint (rpc.ts). Each checks its input with the zod schemas, calls the lock object, and maps the
 * outcome to the answer body, or throws the `ProblemError` both transports answer with. Authentication,
 * and everything about HTTP (headers, JSON, body size), stays with the caller.
 */
import type { z } from "zod";
import type { HolderView, Lease, LockView, ReleaseResponse } from "../client/src/protocol.ts";
import type { AcquireOutcome, Answer, Granted, LockObject } from "../durable-objects/lock-object.ts";
import type { LeaseRecord } from "../durable-objects/lock-state.ts";
import type { ForceReleaseResult } from "./openapi.ts";
import { ProblemError } from "./problem.ts";
import type { acquireSchema, releaseSchema, renewSchema } from "./schemas.ts";
import { describeIssue } from "./schemas.ts";

export type AcquireBody = z.output<typeof acquireSchema>;
export type RenewBody = z.output<typeof renewSchema>;
export type ReleaseBody = z.output<typeof releaseSchema>;

/** `value` checked against `schema`; the first issue becomes the problem (`invalid_ttl`, ...). */
export function parseBody<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  // reportInput: so that a present but wrong field is not described as "(missing)".
  const parsed = schema.safeParse(value, { reportInput: true });
  if (!parsed.success) {
    const { code, detail } = describeIssue(parsed.error);
    throw new ProblemError(code, detail);
  }
  return parsed.data;
}

export async function acquireLock(env: Env, name: string, body: AcquireBody): Promise<Lease> {
  const outcome = await callLock(env, name, (lock) =>
    lock.acquire({
      leaseId: body.leaseId ?? newLeaseId(),
      owner: body.owner ?? null,
      ttlMs: body.ttlMs,
      waitMs: body.waitMs,
      mode: body.mode,
      limit: body.limit ?? null,
      permits: body.permits,
      reentrant: body.reentrant,
      lockDelayMs: body.lockDelayMs,
    }),
  );
  return leaseOf(name, outcome);
}

export async function renewLock(env: Env, name: string, body: RenewBody): Promise<Lease> {
  const outcome = await callLock(env, name, (lock) =>
    lock.renew(body.leaseId, body.ttlMs ?? null, body.mode ?? null),
  );
  return leaseOf(name, outcome);
}

export async function releaseLock(env: Env, name: string, body: ReleaseBody): Promise<ReleaseResponse> {
  const outcome = await callLock(env, name, (lock) => lock.release(body.leaseId));
  switch (outcome.kind) {
    case "released":
      return { released: true, holdCount: outcome.holdCount };
    case "cancelled":
      return { released: false, cancelled: true };
    case "rejected":
      throw rejection(outcome);
    default:
      throw unexpected(outcome);
  }
}

/** Ends every lease of the lock; `by` is the admin key's name, kept with each ended lease. */
export async function forceReleaseLock(env: Env, name: string, by: string): Promise<ForceReleaseResult> {
  const outcome = await callLock(env, name, (lock) => lock.forceRelease(by));
  if (outcome.kind !== "forced") throw new Error(`forceRelease answered ${outcome.kind}`);
  // The audit record: who ended which leases. The lock object also keeps `by` with each ended lease.
  console.log(JSON.stringify({ event: "force-release", lock: name, by, count: outcome.count }));
  return { name, forced: true, count: outcome.count, by };
}

/** The lock's public state, with the page of holders whose tokens come after `after` (a `nextAfter`). */
export async function inspectLock(env: Env, name: string, after: number): Promise<LockView> {
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new ProblemError("invalid_query", "after must be a token: a non-negative integer (a nextAfter)");
  }
  const snap = await callLock(env, name, (lock) => lock.inspect(after));
  return {
    name,
    held: snap.holderCount > 0,
    kind: snap.kind,
    holders: snap.holders.map(holderView),
    holderCount: snap.holderCount,
    nextAfter: snap.nextAfter,
    waiters: snap.waiters,
    lastToken: snap.lastToken,
    limit: snap.limit,
    permitsInUse: snap.permitsInUse,
    lockDelayUntil: snap.delayUntil,
  };
}

/**
 * The lock object's RPC methods as the Worker sees them. The generated stub type distributes each union
 * result over `Promise`, which hides the discriminant; this view keeps the object's own signatures.
 */
type LockStub = {
  [K in "acquire" | "renew" | "release" | "forceRelease" | "inspect"]: (
    ...args: Parameters<LockObject[K]>
  ) => Promise<Awaited<ReturnType<LockObject[K]>>>;
};

/** Calls the lock object; a reset object (deploy, restart) is a retryable 503, never a 500. */
async function callLock<T>(env: Env, name: string, call: (lock: LockStub) => Promise<T>): Promise<T> {
  try {
    return await call(env.LOCK.getByName(name) as unknown as LockStub);
  } catch (err) {
    throw lockFailure(name, err);
  }
}

/**
 * What a failed call to a lock object means for the client. An error thrown by the object's own code
 * (`remote`, not `retryable`) is a bug: a 500, logged, never to be retried blindly. Anything else (a
 * reset by a deploy or eviction, an overloaded or unreachable object) is a retryable 503. Either way the
 * lock is unchanged: a failed step's transaction rolls back and its state is never adopted.
 */
export function lockFailure(name: string, err: unknown): Error {
  const e = typeof err === "object" && err !== null ? (err as { remote?: unknown; retryable?: unknown }) : {};
  if (e.remote === true && e.retryable !== true) return err instanceof Error ? err : new Error(String(err));
  console.warn(`lock object ${name} unavailable:`, err);
  return new ProblemError(
    "unavailable",
    "the lock object restarted or is busy; retry, re-polling with the same leaseId keeps a waiter's place",
    { extra: { retryAfterMs: 100 }, headers: { "retry-after": "1" } },
  );
}

/** A grant's lease view; any rejection is thrown as its problem. */
function leaseOf(name: string, outcome: Answer | AcquireOutcome): Lease {
  if (outcome.kind === "granted") return leaseView(name, outcome);
  if (outcome.kind === "rejected") throw rejection(outcome);
  throw unexpected(outcome);
}

function unexpected(outcome: Answer | AcquireOutcome): Error {
  return new Error(`unexpected outcome ${outcome.kind}`);
}

function rejection(r: Extract<Answer | AcquireOutcome, { kind: "rejected" }>): ProblemError {
  switch (r.code) {
    case "lock_held":
    case "lock_delay": {
      const detail =
        r.code === "lock_delay"
          ? "the lock's last holder was lost; it stays closed for its lock-delay"
          : r.position === null
            ? "the lock is held; retry after retryAfterMs, or wait with waitMs"
            : `still queued at position ${r.position}; re-poll with the same leaseId to keep the place`;
      return new ProblemError(r.code, detail, {
        extra: {
          retryAfterMs: r.retryAfterMs,
          holders: r.holders.map(holderView),
          ...(r.position === null ? {} : { position: r.position }),
        },
        headers: { "retry-after": String(Math.ceil(r.retryAfterMs / 1000)) },
      });
    }
    case "not_held":
      return new ProblemError("not_held", `this leaseId does not hold the lock (${r.reason})`, {
        extra: r.by === null ? { reason: r.reason } : { reason: r.reason, by: r.by },
      });
    case "lease_ended":
      return new ProblemError(
        "lease_ended",
        `this leaseId was already used and ended (${r.reason}); use a new one`,
        { extra: { reason: r.reason } },
      );
    case "limit_mismatch":
      return new ProblemError("limit_mismatch", `the lock is in use with limit ${r.limit}`, {
        extra: { limit: r.limit },
      });
    case "upgrade_not_supported":
      return new ProblemError(
        "upgrade_not_supported",
        "a shared lease cannot become exclusive (two upgraders would deadlock); release and acquire exclusive",
      );
    case "too_many_waiters":
      return new ProblemError("too_many_waiters", "this lock's queue is full; retry later", {
        extra: { retryAfterMs: r.retryAfterMs },
        headers: { "retry-after": String(Math.ceil(r.retryAfterMs / 1000)) },
      });
    case "wait_cancelled":
      return new ProblemError("wait_cancelled", "this wait was cancelled by a release of its leaseId");
    default:
      return assertNever(r);
  }
}

function leaseView(name: string, { lease: l, limit, validForMs }: Granted): Lease {
  return {
    name,
    leaseId: l.leaseId,
    owner: l.owner,
    token: l.token,
    ttlMs: l.ttlMs,
    expiresAt: l.expiresAt,
    validForMs,
    mode: l.mode,
    permits: l.permits,
    holdCount: l.holdCount,
    limit,
  };
}

/** What anyone may see of a holder: never its leaseId, which is the holder's secret. */
function holderView(l: LeaseRecord): HolderView {
  return {
    owner: l.owner,
    token: l.token,
    expiresAt: l.expiresAt,
    mode: l.mode,
    permits: l.permits,
    holdCount: l.holdCount,
  };
}

function newLeaseId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

function assertNever(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}
