/**
 * The history events a step of the lock state machine produces, built where the facts are (the lease or
 * waiter that the step grants, renews or ends, and the step's instant). Pure, like lock-state.ts; the shell
 * stores them in the step's own transaction (storage.ts). Events carry public fields only: a leaseId or a
 * holderKey is a holder's secret, and never becomes history.
 */
import type { LockEvent, LockEventKind } from "../client/src/protocol.ts";
import type { EndReason, LeaseRecord, Waiter } from "./lock-state.ts";

/** An event as a step reports it; storage gives it its `id`. */
export type NewLockEvent = Omit<LockEvent, "id">;

const NONE = {
  holdCount: null,
  waitMs: null,
  holdMs: null,
  expiresAt: null,
  renewals: null,
  by: null,
} as const satisfies Partial<NewLockEvent>;

function ofLease(kind: LockEventKind, l: LeaseRecord, at: number): NewLockEvent {
  return { ...NONE, at, kind, owner: l.owner, token: l.token, mode: l.mode, permits: l.permits };
}

/** A lease granted at `now`, or (holdCount > 1) one more reentrant hold on it; `waitMs` 0 when at once. */
export function grantedEvent(l: LeaseRecord, waitMs: number, now: number): NewLockEvent {
  return { ...ofLease("granted", l, now), holdCount: l.holds.length, waitMs, expiresAt: l.expiresAt };
}

export function renewedEvent(l: LeaseRecord, now: number): NewLockEvent {
  return { ...ofLease("renewed", l, now), expiresAt: l.expiresAt, renewals: 1 };
}

/** One reentrant hold given back while others still hold the lease. */
export function holdReleasedEvent(l: LeaseRecord, now: number): NewLockEvent {
  return { ...ofLease("released", l, now), holdCount: l.holds.length };
}

/** A lease ended: by its release, its expiry (at its `expiresAt`), a force-release or its session's close. */
export function leaseEndedEvent(
  l: LeaseRecord,
  reason: EndReason,
  now: number,
  by: string | null,
): NewLockEvent {
  const at = reason === "expired" ? Math.min(l.expiresAt, now) : now;
  return { ...ofLease(reason, l, at), holdCount: 0, holdMs: at - l.grantedAt, by };
}

/**
 * A waiter left the queue without a grant: its kept place lapsed (`timed_out`, at the lapse; its wait is
 * counted to the end of its last request's wait), a release cancelled it, or its session closed.
 */
export function waiterLeftEvent(
  w: Waiter,
  kind: Extract<LockEventKind, "timed_out" | "cancelled" | "session_closed">,
  now: number,
): NewLockEvent {
  const at = kind === "timed_out" ? Math.min(w.holdUntil, now) : now;
  const waitedUntil = kind === "timed_out" ? Math.min(w.waitUntil, at) : now;
  return {
    ...NONE,
    at,
    kind,
    owner: w.owner,
    token: null,
    mode: w.mode,
    permits: w.permits,
    waitMs: Math.max(0, waitedUntil - w.enqueuedAt),
  };
}
