import { describe, expect, it } from "vitest";
import { MAX_WAITERS, REPOLL_GRACE_MS, REPOLL_RESERVE_MS } from "../client/src/protocol.ts";
import { acq, MemoryHistory, run, T0 } from "./lock-state.fixtures.ts";
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
    expect(last(steps).effects.ended).toEqual([
      { leaseId: "a", reason: "expired", endedAt: T0 + 1_000, by: null },
    ]);
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
    expect(steps[2]?.outcome).toEqual({ kind: "released", holdCount: null });
    expect(last(steps).outcome).toMatchObject({ code: "not_held", reason: "expired" });
  });

  it("remembers an ended leaseId for TOMBSTONE_TTL_MS, then treats it as new", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, { type: "release", leaseId: "a" }],
      [T0 + TOMBSTONE_TTL_MS, acq("a")],
      [T0 + 1 + TOMBSTONE_TTL_MS, acq("a")],
    ]);
    expect(steps[2]?.outcome).toMatchObject({ code: "lease_ended", reason: "released" });
    expect(token(last(steps).outcome)).toBe(2);
  });

  it("keeps refusing a late retry of an ended leaseId whatever the traffic in between", () => {
    const history = new MemoryHistory();
    let steps = run(
      [
        [T0, acq("first-lease")],
        [T0 + 1, { type: "release", leaseId: "first-lease" }],
      ],
      undefined,
      history,
    );
    let state = last(steps).state;
    // Far more ended leases than any in-memory cap would keep.
    for (let i = 0; i < 2_000; i++) {
      steps = run(
        [
          [T0 + 2 + i, acq(`cycle-${i}`)],
          [T0 + 2 + i, { type: "release", leaseId: `cycle-${i}` }],
        ],
        state,
        history,
      );
      state = last(steps).state;
    }
    const late = transition(state, acq("first-lease", { ttlMs: 86_400_000 }), T0 + 60_000, history);
    expect(late.outcome).toMatchObject({ code: "lease_ended", reason: "released" });
    expect(late.state.holders).toHaveLength(0);
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

  it("grants a try-once on a free lock whose only waiter gave up", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 200, { type: "release", leaseId: "a" }],
      [T0 + 201, acq("c")],
    ]);
    // b's wait ran out at T0+101: it is not granted, and it holds up nobody.
    expect(steps[2]?.effects.granted).toHaveLength(0);
    expect(token(last(steps).outcome)).toBe(2);
  });

  it("hands the lock to the next live waiter at once, past one that gave up", () => {
    const steps = run([
      [T0, acq("a", { ttlMs: 10_000 })],
      [T0 + 1, acq("b", { waitMs: 200 })],
      [T0 + 2, acq("c", { waitMs: 5_000 })],
      [T0 + 1_000, { type: "release", leaseId: "a" }],
    ]);
    expect(last(steps).effects.granted.map((l) => [l.leaseId, l.token])).toEqual([["c", 2]]);
  });

  it("keeps a waiter's place for its re-poll without holding up anyone behind it", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 2, acq("c", { waitMs: 10_000 })],
      [T0 + 150, acq("b", { waitMs: 5_000 })],
      [T0 + 200, { type: "release", leaseId: "a" }],
    ]);
    // b came back inside the grace period: it waits in its old place, ahead of c.
    expect(steps[3]?.outcome).toMatchObject({ kind: "queued", leaseId: "b" });
    expect(last(steps).effects.granted.map((l) => l.leaseId)).toEqual(["b"]);
  });

  it("keeps the turn of a waiter that promised to re-poll, for REPOLL_RESERVE_MS only", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100, repoll: true })],
      [T0 + 2, acq("c", { waitMs: 10_000 })],
      [T0 + 150, { type: "release", leaseId: "a" }],
      [T0 + 160, acq("d")],
    ]);
    // Reserved until T0+101+REPOLL_RESERVE_MS: c is not granted, d is told who it waits for.
    expect(steps[3]?.effects.granted).toHaveLength(0);
    expect(last(steps).outcome).toMatchObject({ code: "waiters_ahead", holderCount: 0, position: null });
    const s = last(steps).state;
    expect(nextDeadline(s, T0 + 160)).toBe(T0 + 101 + REPOLL_RESERVE_MS + 1);
    // Its re-poll in time takes the lock; had it not come, c gets it at the reservation's end.
    expect(transition(s, acq("b", { waitMs: 100, repoll: true }), T0 + 170).outcome).toMatchObject({
      kind: "granted",
      lease: { leaseId: "b", token: 2 },
    });
    const lapsed = transition(s, { type: "tick" }, T0 + 101 + REPOLL_RESERVE_MS + 1);
    expect(lapsed.effects.granted.map((l) => l.leaseId)).toEqual(["c"]);
  });

  it("answers a waitMs 0 re-poll with the waiter's position and leaseId", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 2, acq("c", { waitMs: 100 })],
      [T0 + 50, acq("c")],
    ]);
    expect(last(steps).outcome).toMatchObject({ code: "lock_held", position: 2, leaseId: "c" });
    expect(last(steps).state.queue.find((w) => w.leaseId === "c")?.holdUntil).toBe(T0 + 50 + REPOLL_GRACE_MS);
  });

  it("drops a kept place after the grace period; a late re-poll is a newcomer", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 2, acq("c", { waitMs: 20_000 })],
    ]);
    const s = last(steps).state;
    // b holds up c until its wait ends; then only its kept place's end is left to clean up.
    expect(nextDeadline(s, T0 + 2)).toBe(T0 + 102);
    expect(nextDeadline(s, T0 + 102)).toBe(T0 + 1_000);
    const after = transition(s, { type: "tick" }, T0 + 101 + REPOLL_GRACE_MS);
    expect(after.effects.granted.map((l) => l.leaseId)).toEqual(["c"]);
    expect(after.state.queue.map((w) => w.leaseId)).toEqual([]);
    const late = transition(after.state, acq("b", { waitMs: 0 }), T0 + 200 + REPOLL_GRACE_MS);
    expect(late.outcome).toMatchObject({ code: "lock_held", position: null });
  });

  it("never says lock_held of a lock without holders", () => {
    const steps = run([
      [T0, acq("big", { limit: 3, permits: 2 })],
      [T0 + 1, acq("bigger", { limit: 3, permits: 3, waitMs: 10_000 })],
      [T0 + 2, acq("small", { limit: 3, permits: 1 })],
      [T0 + 3, acq("a-writer", { limit: 3, permits: 2 })],
    ]);
    // One permit is free and fits "small", but "bigger" waits ahead of it (no starvation of large requests).
    expect(steps[2]?.outcome).toMatchObject({ code: "waiters_ahead", holderCount: 1 });
    expect(last(steps).outcome).toMatchObject({ code: "lock_held", holderCount: 1 });
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

  it("refuses waiters beyond the cap, making room first from places kept for waiters that gave up", () => {
    let s = transition(EMPTY_STATE, acq("holder", { ttlMs: 60_000 }), T0).state;
    s = transition(s, acq("gave-up", { waitMs: 10 }), T0).state;
    for (let i = 1; i < MAX_WAITERS; i++) s = transition(s, acq(`w${i}`, { waitMs: 10_000 }), T0 + 20).state;
    const room = transition(s, acq("one-more", { waitMs: 10_000 }), T0 + 20);
    expect(room.outcome).toMatchObject({ kind: "queued" });
    expect(room.state.queue.some((w) => w.leaseId === "gave-up")).toBe(false);
    const over = transition(room.state, acq("two-more", { waitMs: 10_000 }), T0 + 20);
    expect(over.outcome).toMatchObject({ code: "too_many_waiters" });
    expect(over.state.queue).toHaveLength(MAX_WAITERS);
  });

  it("sets the next deadline at the earliest lease expiry", () => {
    const s = run([
      [T0, acq("a", { ttlMs: 5_000 })],
      [T0 + 1, acq("b", { waitMs: 20_000 })],
    ]);
    expect(nextDeadline(last(s).state, T0 + 1)).toBe(T0 + 5_000);
    expect(nextDeadline(EMPTY_STATE, T0)).toBeNull();
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
