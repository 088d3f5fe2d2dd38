/**
 * What the lock object's answers mean on the wire: a grant becomes the `Lease` its holder receives, a
 * rejection becomes the problem (code, detail, members, Retry-After) every transport sends. HTTP routes,
 * and any other way in to a lock, map answers here and nowhere else. No lock rules live here.
 */
import type { Lease, LockView, ReleaseResponse } from "../client/src/protocol.ts";
import type { AcquireAnswer, Grant, ReleaseAnswer, RenewAnswer } from "../durable-objects/lock-object.ts";
import type { LockSnapshot } from "../durable-objects/lock-state.ts";
import { ProblemError } from "./problem.ts";

/** Every rejection the lock object can answer with. */
export type Rejection = Extract<AcquireAnswer | RenewAnswer | ReleaseAnswer, { kind: "rejected" }>;

/** The codes of the rejections of one lock answer type. */
export type RejectionCode<A> = A extends { kind: "rejected"; code: infer C } ? C : never;

/** The holder's lease, as the wire carries it. */
export function leaseOf(name: string, { lease }: Grant): Lease {
  return { name, ...lease };
}

/** What `GET` (and a session's `watch`) shows of a lock. */
export function lockViewOf(name: string, snap: LockSnapshot): LockView {
  return {
    name,
    held: snap.holderCount > 0,
    kind: snap.kind,
    holders: [...snap.holders],
    holderCount: snap.holderCount,
    nextAfter: snap.nextAfter,
    waiters: snap.waiters,
    queue: [...snap.queue],
    lastToken: snap.lastToken,
    limit: snap.limit,
    permitsInUse: snap.permitsInUse,
    lockDelayUntil: snap.delayUntil,
  };
}

export function releasedOf(answer: Exclude<ReleaseAnswer, { kind: "rejected" }>): ReleaseResponse {
  if (answer.kind === "cancelled") return { released: false, cancelled: true };
  return answer.holdCount === null ? { released: true } : { released: true, holdCount: answer.holdCount };
}

/** A rejection as the problem every transport answers with. */
export function problemOf(r: Rejection): ProblemError {
  switch (r.code) {
    case "lock_held":
    case "lock_delay":
    case "waiters_ahead": {
      const detail =
        r.position !== null
          ? `still queued at position ${r.position}; re-poll with leaseId ${r.leaseId} to keep the place`
          : r.code === "lock_delay"
            ? "the lock's last holder was lost; it stays closed for its lock-delay"
            : r.code === "lock_held"
              ? "the lock is held; retry after retryAfterMs, or wait with waitMs"
              : "earlier requests are waiting for this lock; retry after retryAfterMs, or wait with waitMs";
      return new ProblemError(r.code, detail, {
        extra: {
          retryAfterMs: r.retryAfterMs,
          holders: r.holders,
          holderCount: r.holderCount,
          ...(r.position === null ? {} : { position: r.position, leaseId: r.leaseId }),
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
    case "reentrant_mismatch":
      return new ProblemError(
        "reentrant_mismatch",
        `this holder's lease is ${r.mode} with ${r.permits} permit(s); a reentrant acquire must ask for the same`,
        { extra: { mode: r.mode, permits: r.permits } },
      );
    case "too_many_holds":
      return new ProblemError("too_many_holds", `a lease may count at most ${r.holdCount} reentrant holds`, {
        extra: { holdCount: r.holdCount },
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

function assertNever(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}
