import { describe, expect, it } from "vitest";
import { MAX_WAITERS, REPOLL_GRACE_MS } from "../client/src/protocol.ts";
import { acq, run, T0 } from "./lock-state.fixtures.ts";
import {
  EMPTY_STATE,
  nextDeadline,
  type Outcome,
  type Step,
  TOMBSTONE_TTL_MS,
  transition,
} from "./lock-state.ts";

function last(steps: Step[]): Step {
  return steps[steps.length - 1] as Step;
}

function token(o: Outcome): number {
  if (o.kind !== "granted") throw new Error(`expected a grant, got ${JSON.stringify(o)}`);
  return o.lease.token;
}

describe("mutex", () => {
  it("grants a free lock and refuses a second holder", () => {
    const [a, b] = run([
      [T0, acq("a")],
      [T0 + 1, acq("b")],
    ]);
    expect(token(a?.outcome as Outcome)).toBe(1);
    expect(b?.outcome).toMatchObject({
      kind: "rejected",
      code: "lock_held",
      retryAfterMs: 999,
      position: null,
    });
  });

  it("expires a lease at its deadline, even without an alarm, and issues a larger token", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 999, acq("b")],
      [T0 + 1_000, acq("c")],
    ]);
    expect(steps[1]?.outcome.kind).toBe("rejected");
    expect(token(last(steps).outcome)).toBe(2);
    expect(last(steps).state.tombstones).toMatchObject([{ leaseId: "a", reason: "expired" }]);
  });

  it("returns the same lease for a retried acquire, never a second grant", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 5, acq("a", { waitMs: 5_000 })],
    ]);
    expect(token(last(steps).outcome)).toBe(1);
    expect(last(steps).state.lastToken).toBe(1);
    expect(last(steps).state.queue).toHaveLength(0);
  });

  it("refuses to reuse the leaseId of an ended lease", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, { type: "release", leaseId: "a" }],
      [T0 + 2, acq("a")],
    ]);
    expect(last(steps).outcome).toMatchObject({ code: "lease_ended", reason: "released" });
  });

  it("renews only the holder's lease, and says why another is not held", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 500, { type: "renew", leaseId: "a", ttlMs: 2_000, mode: null }],
      [T0 + 600, { type: "renew", leaseId: "zzz", ttlMs: null, mode: null }],
      [T0 + 2_500, { type: "renew", leaseId: "a", ttlMs: null, mode: null }],
    ]);
    expect(steps[1]?.outcome).toMatchObject({ kind: "granted", lease: { expiresAt: T0 + 2_500 } });
    expect(steps[2]?.outcome).toMatchObject({ code: "not_held", reason: "unknown" });
    expect(last(steps).outcome).toMatchObject({ code: "not_held", reason: "expired" });
  });

  it("answers a retried release like the first one, and a release after expiry with not_held", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, { type: "release", leaseId: "a" }],
      [T0 + 2, { type: "release", leaseId: "a" }],
      [T0 + 3, acq("b", { ttlMs: 100 })],
      [T0 + 200, { type: "release", leaseId: "b" }],
    ]);
    expect(steps[1]?.outcome).toEqual({ kind: "released", holdCount: 0 });
    expect(steps[2]?.outcome).toEqual({ kind: "released", holdCount: 0 });
    expect(last(steps).outcome).toMatchObject({ code: "not_held", reason: "expired" });
  });

  it("forgets tombstones after their time", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, { type: "release", leaseId: "a" }],
      [T0 + 1 + TOMBSTONE_TTL_MS, { type: "tick" }],
    ]);
    expect(last(steps).state.tombstones).toHaveLength(0);
    expect(last(steps).state.lastToken).toBe(1);
  });
});

describe("queue", () => {
  it("grants waiters in arrival order when the holder releases", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 5_000 })],
      [T0 + 2, acq("c", { waitMs: 5_000 })],
      [T0 + 3, { type: "release", leaseId: "a" }],
    ]);
    expect(steps[1]?.outcome).toMatchObject({ kind: "queued", leaseId: "b", waitUntil: T0 + 5_001 });
    expect(last(steps).effects.granted.map((l) => [l.leaseId, l.token])).toEqual([["b", 2]]);
    expect(last(steps).state.queue.map((w) => w.leaseId)).toEqual(["c"]);
  });

  it("hands the lock to the first waiter when the holder expires", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 5_000 })],
      [T0 + 1_000, { type: "tick" }],
    ]);
    expect(last(steps).effects.granted).toMatchObject([{ leaseId: "b", token: 2, expiresAt: T0 + 2_000 }]);
  });

  it("does not let a newcomer overtake a queued waiter, even with waitMs 0 on a free lock", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 200, { type: "release", leaseId: "a" }],
      [T0 + 201, acq("c")],
    ]);
    // b's wait ran out at T0+101: it is not granted, but keeps its place for the re-poll grace.
    expect(steps[2]?.effects.granted).toHaveLength(0);
    expect(last(steps).outcome).toMatchObject({ kind: "rejected", code: "lock_held" });
  });

  it("keeps a re-polling waiter's place and grants it at once if the lock is free", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 2, acq("c", { waitMs: 10_000 })],
      [T0 + 200, { type: "release", leaseId: "a" }],
      [T0 + 300, acq("b", { waitMs: 100 })],
    ]);
    expect(token(last(steps).outcome)).toBe(2);
    expect(last(steps).effects.granted).toHaveLength(0);
    expect(last(steps).state.queue.map((w) => w.leaseId)).toEqual(["c"]);
  });

  it("answers a waitMs 0 re-poll with the waiter's position", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 2, acq("c", { waitMs: 100 })],
      [T0 + 50, acq("c")],
    ]);
    expect(last(steps).outcome).toMatchObject({ code: "lock_held", position: 2 });
    expect(last(steps).state.queue.find((w) => w.leaseId === "c")?.holdUntil).toBe(T0 + 50 + REPOLL_GRACE_MS);
  });

  it("drops a waiter that stops polling after the grace period, and then grants the next", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 2, acq("c", { waitMs: 20_000 })],
      [T0 + 200, { type: "release", leaseId: "a" }],
    ]);
    const s = last(steps).state;
    expect(nextDeadline(s)).toBe(T0 + 101 + REPOLL_GRACE_MS);
    const after = transition(s, { type: "tick" }, T0 + 101 + REPOLL_GRACE_MS);
    expect(after.effects.granted.map((l) => l.leaseId)).toEqual(["c"]);
    expect(after.state.queue).toHaveLength(0);
    // b comes back too late: it is a newcomer now, behind nobody, but the lock is held by c.
    const late = transition(after.state, acq("b", { waitMs: 0 }), T0 + 200 + REPOLL_GRACE_MS);
    expect(late.outcome).toMatchObject({ code: "lock_held", position: null });
  });

  it("cancels a queued waiter on release of its leaseId", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 5_000 })],
      [T0 + 2, { type: "release", leaseId: "b" }],
      [T0 + 3, { type: "release", leaseId: "b" }],
      [T0 + 4, { type: "release", leaseId: "a" }],
    ]);
    expect(steps[2]?.outcome).toEqual({ kind: "cancelled" });
    expect(steps[2]?.effects.cancelled).toEqual(["b"]);
    expect(steps[3]?.outcome).toEqual({ kind: "cancelled" });
    expect(last(steps).effects.granted).toHaveLength(0);
  });

  it("refuses waiters beyond the cap", () => {
    let s = transition(EMPTY_STATE, acq("holder"), T0).state;
    for (let i = 0; i < MAX_WAITERS; i++) s = transition(s, acq(`w${i}`, { waitMs: 10_000 }), T0).state;
    const over = transition(s, acq("one-more", { waitMs: 10_000 }), T0);
    expect(over.outcome).toMatchObject({ code: "too_many_waiters" });
    expect(over.state.queue).toHaveLength(MAX_WAITERS);
  });

  it("sets the next deadline at the earliest lease expiry", () => {
    const s = run([
      [T0, acq("a", { ttlMs: 5_000 })],
      [T0 + 1, acq("b", { waitMs: 20_000 })],
    ]);
    expect(nextDeadline(last(s).state)).toBe(T0 + 5_000);
    expect(nextDeadline(EMPTY_STATE)).toBeNull();
  });
});

describe("fencing tokens", () => {
  it("only grow across release, expiry and cancel", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, { type: "release", leaseId: "a" }],
      [T0 + 2, acq("b", { ttlMs: 100 })],
      [T0 + 500, acq("c")],
      [T0 + 501, acq("d", { waitMs: 1_000 })],
      [T0 + 502, { type: "release", leaseId: "d" }],
      [T0 + 503, { type: "release", leaseId: "c" }],
      [T0 + 504, acq("e")],
    ]);
    const tokens = steps.flatMap((s) => (s.outcome.kind === "granted" ? [s.outcome.lease.token] : []));
    expect(tokens).toEqual([1, 2, 3, 4]);
  });
});
