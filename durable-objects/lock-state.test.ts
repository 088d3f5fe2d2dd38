import { describe, expect, it } from "vitest";
import { MAX_WAITERS, REPOLL_GRACE_MS, REPOLL_RESERVE_MS } from "../client/src/protocol.ts";
import { acq, MemoryHistory, rel, run, T0 } from "./lock-state.fixtures.ts";
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
      [T0 + 1, rel("a")],
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
      [T0 + 1, rel("a")],
      [T0 + 2, rel("a")],
      [T0 + 3, acq("b", { ttlMs: 100 })],
      [T0 + 200, rel("b")],
    ]);
    expect(steps[1]?.outcome).toEqual({ kind: "released", holdCount: 0 });
    expect(steps[2]?.outcome).toEqual({ kind: "released", holdCount: null });
    expect(last(steps).outcome).toMatchObject({ code: "not_held", reason: "expired" });
  });

  it("remembers an ended leaseId for TOMBSTONE_TTL_MS, then treats it as new", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, rel("a")],
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
        [T0 + 1, rel("first-lease")],
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
          [T0 + 2 + i, rel(`cycle-${i}`)],
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
      [T0 + 3, rel("a")],
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
      [T0 + 200, rel("a")],
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
      [T0 + 1_000, rel("a")],
    ]);
    expect(last(steps).effects.granted.map((l) => [l.leaseId, l.token])).toEqual([["c", 2]]);
  });

  it("keeps a waiter's place for its re-poll without holding up anyone behind it", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 2, acq("c", { waitMs: 10_000 })],
      [T0 + 150, acq("b", { waitMs: 5_000 })],
      [T0 + 200, rel("a")],
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
      [T0 + 150, rel("a")],
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

  it("keeps a promised turn for REPOLL_RESERVE_MS from the answer, when the answer goes out late", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 1, acq("b", { waitMs: 100, repoll: true })],
      [T0 + 2, acq("c", { waitMs: 10_000 })],
      // A busy object answers b's wait 700 ms late, after the reserve counted from its end had lapsed.
      [T0 + 801, { type: "waitEnded", leaseId: "b" }],
      [T0 + 900, rel("a")],
    ]);
    expect(steps[3]?.state.queue[0]).toMatchObject({
      leaseId: "b",
      reserveUntil: T0 + 801 + REPOLL_RESERVE_MS,
    });
    // The release comes while b's re-poll may still be on its way: c is not granted past it.
    expect(last(steps).effects.granted).toHaveLength(0);
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
      [T0 + 2, rel("b")],
      [T0 + 3, rel("b")],
      [T0 + 4, rel("a")],
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
      [T0 + 1, rel("a")],
      [T0 + 2, acq("b", { ttlMs: 100 })],
      [T0 + 500, acq("c")],
      [T0 + 501, acq("d", { waitMs: 1_000 })],
      [T0 + 502, rel("d")],
      [T0 + 503, rel("c")],
      [T0 + 504, acq("e")],
    ]);
    const tokens = steps.flatMap((s) => (s.outcome.kind === "granted" ? [s.outcome.lease.token] : []));
    expect(tokens).toEqual([1, 2, 3, 4]);
  });
});

describe("history events", () => {
  const events = (steps: Step[]) => steps.flatMap((s) => s.effects.events);

  it("records a grant with its wait, and its release with how long it was held", () => {
    const steps = run([
      [T0, acq("a", { owner: "alice" })],
      [T0 + 10, acq("b", { owner: "bob", waitMs: 5_000 })],
      [T0 + 300, rel("a")],
      [T0 + 500, rel("b")],
    ]);
    expect(events(steps).map((e) => [e.kind, e.owner, e.token, e.waitMs, e.holdMs, e.at])).toEqual([
      ["granted", "alice", 1, 0, null, T0],
      ["released", "alice", 1, null, 300, T0 + 300],
      ["granted", "bob", 2, 290, null, T0 + 300],
      ["released", "bob", 2, null, 200, T0 + 500],
    ]);
    expect(steps[0]?.effects.events[0]).toMatchObject({
      expiresAt: T0 + 1_000,
      holdCount: 1,
      mode: "exclusive",
    });
  });

  it("dates an expiry at the lease's end, however late it is noticed", () => {
    const steps = run([
      [T0, acq("a", { ttlMs: 1_000 })],
      [T0 + 1_250, { type: "tick" }],
    ]);
    expect(last(steps).effects.events).toMatchObject([
      { kind: "expired", token: 1, at: T0 + 1_000, holdMs: 1_000, holdCount: 0 },
    ]);
  });

  it("records each renewal (storage coalesces them) and a downgrade's new mode", () => {
    const steps = run([
      [T0, acq("a")],
      [T0 + 100, { type: "renew", leaseId: "a", ttlMs: 2_000, mode: "shared" }],
      [T0 + 200, { type: "renew", leaseId: "zzzzz", ttlMs: null, mode: null }],
    ]);
    expect(steps[1]?.effects.events).toEqual([
      {
        at: T0 + 100,
        kind: "renewed",
        owner: null,
        token: 1,
        mode: "shared",
        permits: 1,
        holdCount: null,
        waitMs: null,
        holdMs: null,
        expiresAt: T0 + 2_100,
        renewals: 1,
        by: null,
      },
    ]);
    expect(steps[2]?.effects.events).toEqual([]);
  });

  it("records a force-release with the admin key, and hands on to the next waiter", () => {
    const steps = run([
      [T0, acq("a", { owner: "stuck" })],
      [T0 + 1, acq("b", { waitMs: 5_000 })],
      [T0 + 400, { type: "forceRelease", by: "ops-admin" }],
    ]);
    expect(last(steps).effects.events).toMatchObject([
      { kind: "forced", owner: "stuck", token: 1, by: "ops-admin", holdMs: 400 },
      { kind: "granted", token: 2, waitMs: 399 },
    ]);
  });

  it("records waiters that leave without a grant: cancelled, timed out, session closed", () => {
    const steps = run([
      [T0, acq("a", { ttlMs: 60_000 })],
      [T0 + 1, acq("cancel-me", { waitMs: 5_000, owner: "c" })],
      [T0 + 2, acq("give-up", { waitMs: 100, owner: "g" })],
      [T0 + 3, acq("sess", { waitMs: 5_000, owner: "s", session: "s1" })],
      [T0 + 50, rel("cancel-me")],
      [T0 + 60, { type: "sessionClosed", session: "s1" }],
      [T0 + 102 + REPOLL_GRACE_MS, { type: "tick" }],
    ]);
    expect(steps[4]?.effects.events).toMatchObject([
      { kind: "cancelled", owner: "c", token: null, waitMs: 49 },
    ]);
    expect(steps[5]?.effects.events).toMatchObject([{ kind: "session_closed", owner: "s", waitMs: 57 }]);
    // Its kept place lapsed at the end of its wait plus the grace: the event is dated then, the wait is 100 ms.
    expect(last(steps).effects.events).toMatchObject([
      { kind: "timed_out", owner: "g", at: T0 + 102 + REPOLL_GRACE_MS, waitMs: 100, token: null },
    ]);
  });

  it("does not record a waiter that re-polls in time as timed out", () => {
    const steps = run([
      [T0, acq("a", { ttlMs: 60_000 })],
      [T0 + 1, acq("b", { waitMs: 100 })],
      [T0 + 150, acq("b", { waitMs: 100 })],
      [T0 + 200, rel("a")],
    ]);
    expect(events(steps).map((e) => e.kind)).toEqual(["granted", "released", "granted"]);
    expect(last(steps).effects.events[1]).toMatchObject({ kind: "granted", waitMs: 199 });
  });

  it("records a session's lease ending with its session, and reentrant holds one by one", () => {
    const key = { reentrant: true, holderKey: "holder-key-123456" } as const;
    const steps = run([
      [T0, acq("h1", { holderKey: key.holderKey })],
      [T0 + 1, acq("h2", { holderKey: key.holderKey })],
      [T0 + 2, rel("h1")],
      [T0 + 3, rel("h2")],
      [T0 + 4, acq("s", { session: "s9" })],
      [T0 + 10, { type: "sessionClosed", session: "s9" }],
    ]);
    expect(events(steps).map((e) => [e.kind, e.token, e.holdCount, e.holdMs])).toEqual([
      ["granted", 1, 1, null],
      ["granted", 1, 2, null],
      ["released", 1, 1, null],
      ["released", 1, 0, 3],
      ["granted", 2, 1, null],
      ["session_closed", 2, 0, 6],
    ]);
  });

  it("records a kept place dropped to make room, and nothing for retries or refusals", () => {
    let s = transition(EMPTY_STATE, acq("holder", { ttlMs: 60_000 }), T0).state;
    s = transition(s, acq("gave-up", { waitMs: 10 }), T0).state;
    for (let i = 1; i < MAX_WAITERS; i++) s = transition(s, acq(`w${i}`, { waitMs: 10_000 }), T0 + 20).state;
    const room = transition(s, acq("one-more", { waitMs: 10_000 }), T0 + 20);
    expect(room.effects.events).toMatchObject([{ kind: "timed_out", waitMs: 10, at: T0 + 20 }]);
    expect(transition(room.state, acq("holder"), T0 + 21).effects.events).toEqual([]);
    expect(transition(room.state, acq("other"), T0 + 21).effects.events).toEqual([]);
  });

  it("never carries a leaseId, a holderKey or a key name", () => {
    const steps = run([
      [T0, acq("secret-lease-id-1", { holderKey: "secret-holder-key", principal: "secret-key-name" })],
      [T0 + 1, acq("secret-lease-id-2", { waitMs: 50, principal: "secret-key-name" })],
      [T0 + 2, { type: "renew", leaseId: "secret-lease-id-1", ttlMs: null, mode: null }],
      [T0 + 3, rel("secret-lease-id-1")],
      [T0 + 60 + REPOLL_GRACE_MS, { type: "tick" }],
    ]);
    const text = JSON.stringify(events(steps));
    expect(events(steps)).toHaveLength(5);
    expect(text).not.toMatch(/secret/);
  });
});
