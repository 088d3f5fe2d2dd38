import { describe, expect, it } from "vitest";
import { MAX_HOLD_COUNT } from "../client/src/protocol.ts";
import { acq as acquire, KEY, rel, run, T0 } from "./lock-state.fixtures.ts";
import { type AcquireCommand, EMPTY_STATE, type Step, snapshot, transition } from "./lock-state.ts";

/** Kinds are mostly about waiting: these acquires wait 10 s unless told otherwise. */
const acq = (leaseId: string, extra: Partial<AcquireCommand> = {}) =>
  acquire(leaseId, { waitMs: 10_000, ...extra });

const holders = (step: Step | undefined) => step?.state.holders.map((l) => l.leaseId);
const grantedNow = (step: Step | undefined) => step?.effects.granted.map((l) => l.leaseId);

describe("semaphore", () => {
  const sem = (leaseId: string, permits = 1, extra: Partial<AcquireCommand> = {}) =>
    acq(leaseId, { limit: 5, permits, ...extra });

  it("refuses a different limit while the semaphore is in use, and accepts a new one once idle", () => {
    const steps = run([
      [T0, sem("a")],
      [T0, acq("b", { limit: 3 })],
      [T0, acq("c")],
      [T0, rel("a")],
      [T0, acq("d", { limit: 3 })],
    ]);
    expect(steps[1]?.outcome).toMatchObject({ code: "limit_mismatch", limit: 5 });
    expect(steps[2]?.outcome).toMatchObject({ code: "limit_mismatch", limit: 5 });
    expect(steps[4]?.outcome).toMatchObject({ kind: "granted", limit: 3 });
  });

  it("gives each lease its own token and expiry", () => {
    const steps = run([
      [T0, sem("a", 1, { ttlMs: 500 })],
      [T0 + 10, sem("b", 1, { ttlMs: 5_000 })],
      [T0 + 600, { type: "tick" }],
    ]);
    expect(steps[1]?.state.holders.map((l) => [l.token, l.expiresAt])).toEqual([
      [1, T0 + 500],
      [2, T0 + 5_010],
    ]);
    expect(holders(steps[2])).toEqual(["b"]);
  });
});

describe("read-write lock", () => {
  const r = (id: string) => acq(id, { mode: "shared" });
  const w = (id: string) => acq(id);

  it("grants consecutive readers at the head together, in one step", () => {
    const steps = run([
      [T0, w("w1")],
      [T0, r("r1")],
      [T0, r("r2")],
      [T0, r("r3")],
      [T0, w("w2")],
      [T0, r("r4")],
      [T0, rel("w1")],
    ]);
    expect(grantedNow(steps[6])).toEqual(["r1", "r2", "r3"]);
  });

  it("downgrades exclusive to shared without releasing, and admits waiting readers", () => {
    const steps = run([
      [T0, w("w1")],
      [T0, r("r1")],
      [T0 + 1, { type: "renew", leaseId: "w1", ttlMs: null, mode: "shared" }],
    ]);
    expect(steps[2]?.outcome).toMatchObject({
      kind: "granted",
      lease: { leaseId: "w1", mode: "shared", token: 1 },
    });
    expect(grantedNow(steps[2])).toEqual(["r1"]);
  });

  it("refuses an upgrade from shared to exclusive", () => {
    const steps = run([
      [T0, r("r1")],
      [T0, { type: "renew", leaseId: "r1", ttlMs: null, mode: "exclusive" }],
    ]);
    expect(steps[1]?.outcome).toMatchObject({ code: "upgrade_not_supported" });
    expect(steps[1]?.state.holders[0]?.mode).toBe("shared");
  });
});

/** A reentrant acquire by the holder whose secret is `${owner}-key`, under the test API key. */
const re = (leaseId: string, owner = "alice", extra: Partial<AcquireCommand> = {}) =>
  acq(leaseId, { holderKey: `${owner}-key`, owner, waitMs: 0, ...extra });

/** A grant as its requester sees it: the hold it was sent for, the lease's token and its hold count. */
const seen = (step: Step | undefined) => {
  const o = step?.outcome;
  if (o?.kind !== "granted") return o;
  return {
    holdId: o.holdId,
    token: o.lease.token,
    holdCount: o.lease.holds.length,
    permits: o.lease.permits,
  };
};

describe("reentrant holds", () => {
  it("counts one holder's holds up and down, each by its own leaseId in any order, freeing at zero", () => {
    const steps = run([
      [T0, re("a1")],
      [T0 + 1, re("a2")],
      [T0 + 2, re("b1", "bob")],
      [T0 + 3, rel("a1")],
      [T0 + 4, re("b2", "bob")],
      [T0 + 5, rel("a2")],
      [T0 + 6, re("b3", "bob")],
    ]);
    expect(seen(steps[1])).toMatchObject({ holdId: "a2", token: 1, holdCount: 2 });
    expect(steps[2]?.outcome).toMatchObject({ code: "lock_held" });
    // The outer hold goes first: the inner one still holds the lock, and still answers to its own id.
    expect(steps[3]?.outcome).toEqual({ kind: "released", holdCount: 1 });
    expect(steps[4]?.outcome).toMatchObject({ code: "lock_held" });
    expect(steps[5]?.outcome).toEqual({ kind: "released", holdCount: 0 });
    expect(steps[6]?.outcome).toMatchObject({ kind: "granted", lease: { owner: "bob", token: 2 } });
  });

  it("does not count a retried reentrant acquire twice", () => {
    const steps = run([
      [T0, re("a1")],
      [T0 + 1, re("a2")],
      [T0 + 2, re("a2")],
    ]);
    expect(seen(steps[2])).toMatchObject({ holdId: "a2", holdCount: 2 });
  });

  it("treats a repeated leaseId without the opt-in as an idempotent retry", () => {
    const steps = run([
      [T0, acq("a1", { owner: "alice", waitMs: 0 })],
      [T0 + 1, acq("a1", { owner: "alice", waitMs: 0 })],
      [T0 + 2, acq("a2", { owner: "alice", waitMs: 0 })],
    ]);
    expect(seen(steps[1])).toMatchObject({ holdId: "a1", holdCount: 1, token: 1 });
    expect(steps[2]?.outcome).toMatchObject({ code: "lock_held" });
  });

  it("belongs to its holder under its API key, never to a shared owner label", () => {
    const steps = run([
      [T0, re("a1")],
      // Another key sending alice's label and even alice's holderKey is not alice.
      [T0 + 1, re("x1", "alice", { principal: "other-key" })],
      // The same key with the same label but another holder (process) is not alice either.
      [T0 + 2, re("x2", "alice", { holderKey: "another-process" })],
    ]);
    expect(steps[1]?.outcome).toMatchObject({ code: "lock_held" });
    expect(steps[2]?.outcome).toMatchObject({ code: "lock_held" });
    expect(steps[2]?.state.holders).toMatchObject([{ leaseId: "a1", holds: ["a1"], principal: KEY }]);
  });

  it("gives a reentrant acquire what it asks for or refuses it clearly", () => {
    const sharedHolder = run([
      [T0, re("s1", "alice", { mode: "shared" })],
      [T0 + 1, re("s2", "alice", { mode: "exclusive" })],
    ]);
    expect(sharedHolder[1]?.outcome).toMatchObject({
      code: "reentrant_mismatch",
      mode: "shared",
      permits: 1,
    });
    const semaphore = run([
      [T0, re("p1", "alice", { limit: 5, permits: 1 })],
      [T0 + 1, re("p2", "alice")],
      [T0 + 2, re("p3", "alice", { limit: 9, permits: 9 })],
      [T0 + 3, re("p4", "alice", { limit: 5, permits: 2 })],
      [T0 + 4, re("p5", "alice", { limit: 5, permits: 1 })],
    ]);
    expect(semaphore.map((st) => st.outcome.kind === "rejected" && st.outcome.code)).toEqual([
      false,
      "limit_mismatch",
      "limit_mismatch",
      "reentrant_mismatch",
      false,
    ]);
    expect(seen(semaphore[4])).toMatchObject({ holdId: "p5", holdCount: 2, permits: 1 });
  });

  it("caps the holds of one lease", () => {
    const steps = run(
      Array.from({ length: MAX_HOLD_COUNT + 1 }, (_, i): [number, AcquireCommand] => [T0 + i, re(`h${i}`)]),
    );
    expect(seen(steps[MAX_HOLD_COUNT - 1])).toMatchObject({ holdCount: MAX_HOLD_COUNT });
    expect(steps[MAX_HOLD_COUNT]?.outcome).toMatchObject({ code: "too_many_holds" });
  });

  it("ends one hold per release of its leaseId, once; the others keep the lease and renew it", () => {
    const steps = run([
      [T0, re("a1")],
      [T0 + 1, re("a2")],
      [T0 + 2, re("a3")],
      [T0 + 3, rel("a2")],
      [T0 + 4, rel("a2")],
      [T0 + 5, re("a2")],
      [T0 + 6, { type: "renew", leaseId: "a3", ttlMs: 5_000, mode: null }],
      [T0 + 7, rel("a1")],
      [T0 + 8, { type: "renew", leaseId: "a1", ttlMs: null, mode: null }],
    ]);
    expect(steps[3]?.outcome).toEqual({ kind: "released", holdCount: 2 });
    // A retried release of the same hold is answered, not counted again.
    expect(steps[4]?.outcome).toEqual({ kind: "released", holdCount: null });
    expect(steps[5]?.outcome).toMatchObject({ code: "lease_ended", reason: "released" });
    expect(seen(steps[6])).toMatchObject({ holdId: "a3", holdCount: 2, token: 1 });
    expect(steps[7]?.outcome).toEqual({ kind: "released", holdCount: 1 });
    // The first hold's id is spent too, though the lease it named goes on under a3.
    expect(steps[8]?.outcome).toMatchObject({ code: "not_held", reason: "released" });
    expect(steps[8]?.state.holders).toMatchObject([{ leaseId: "a1", holds: ["a3"] }]);
  });

  it("treats a reentrant acquire with a queued waiter's leaseId as that waiter's re-poll", () => {
    const steps = run([
      [T0, re("a1")],
      [T0 + 1, acq("w1", { owner: "bob", waitMs: 5_000 })],
      [T0 + 2, re("w1")],
      [T0 + 3, rel("a1")],
    ]);
    // The re-poll tried once and was told its place; it never became one of alice's holds.
    expect(steps[2]?.outcome).toMatchObject({ code: "lock_held", position: 1, leaseId: "w1" });
    expect(steps[2]?.state.holders).toMatchObject([{ leaseId: "a1", holds: ["a1"] }]);
    expect(steps[3]?.effects.granted).toHaveLength(0);
    expect(steps[3]?.state.queue).toMatchObject([{ leaseId: "w1" }]);
  });

  it("ends all holds at expiry", () => {
    const steps = run([
      [T0, re("a1")],
      [T0 + 1, re("a2")],
      [T0 + 2_000, re("b1", "bob")],
    ]);
    expect(seen(steps[2])).toMatchObject({ token: 2, holdCount: 1 });
    expect(steps[2]?.effects.ended.map((t) => t.leaseId).sort()).toEqual(["a1", "a2"]);
  });
});

describe("lock-delay", () => {
  it("keeps the lock closed for the delay after an expiry, but not after a release", () => {
    const steps = run([
      [T0, acq("a", { ttlMs: 500, lockDelayMs: 2_000 })],
      [T0 + 600, acq("b", { waitMs: 0 })],
      [T0 + 2_500, acq("c", { waitMs: 0 })],
      [T0 + 2_501, acq("d", { lockDelayMs: 2_000, waitMs: 0 })],
    ]);
    expect(steps[1]?.outcome).toMatchObject({ code: "lock_delay", retryAfterMs: 1_900 });
    expect(steps[2]?.outcome).toMatchObject({ kind: "granted", lease: { token: 2 } });
    const released = transition(steps[2]?.state ?? EMPTY_STATE, rel("c"), T0 + 2_502);
    expect(transition(released.state, acq("e", { waitMs: 0 }), T0 + 2_503).outcome.kind).toBe("granted");
  });

  it("grants a queued waiter when the delay ends, at the deadline the alarm is set for", () => {
    const steps = run([
      [T0, acq("a", { ttlMs: 500, lockDelayMs: 1_000 })],
      [T0 + 100, acq("b", { waitMs: 5_000 })],
      [T0 + 500, { type: "tick" }],
    ]);
    const s = steps[2]?.state ?? EMPTY_STATE;
    expect(s.delayUntil).toBe(T0 + 1_500);
    expect(steps[2]?.effects.granted).toHaveLength(0);
    const after = transition(s, { type: "tick" }, T0 + 1_500);
    expect(grantedNow(after)).toEqual(["b"]);
  });

  it("applies the delay after a force-release", () => {
    const steps = run([
      [T0, acq("a", { lockDelayMs: 1_000 })],
      [T0 + 10, { type: "forceRelease", by: "ops" }],
      [T0 + 20, acq("b", { waitMs: 0 })],
    ]);
    expect(steps[1]?.outcome).toEqual({ kind: "forced", count: 1 });
    expect(steps[2]?.outcome).toMatchObject({ code: "lock_delay" });
  });
});

describe("reentrant edge cases found by the model test", () => {
  it("answers lease_ended to a retried reentrant acquire whose lease has ended", () => {
    const steps = run([
      [T0, re("first")],
      [T0, re("second")],
      [T0 + 1, rel("first")],
      [T0 + 2, rel("second")],
      [T0 + 3, re("second")],
    ]);
    expect(steps[4]?.outcome).toMatchObject({ kind: "rejected", code: "lease_ended", reason: "released" });
    expect(steps[4]?.state.lastToken).toBe(1);
  });

  it("does not cut a queued waiter's wait short when its owner also tries once with another leaseId", () => {
    const steps = run([
      [T0, acq("holder", { owner: "bob", waitMs: 0 })],
      [T0 + 10, re("queued", "alice", { waitMs: 5_000 })],
      [T0 + 20, re("try-once")],
      [T0 + 30, rel("holder")],
    ]);
    expect(steps[2]?.outcome).toMatchObject({ code: "lock_held" });
    expect(grantedNow(steps[3])).toEqual(["queued"]);
  });
});

describe("snapshot", () => {
  it("names the kind by the limit and the holders' modes", () => {
    const mutex = run([[T0, acq("a")]]);
    const rw = run([[T0, acq("r", { mode: "shared" })]]);
    const sem = run([[T0, acq("s", { limit: 3 })]]);
    expect(snapshot(mutex[0]?.state ?? EMPTY_STATE, T0).kind).toBe("mutex");
    expect(snapshot(rw[0]?.state ?? EMPTY_STATE, T0).kind).toBe("rwlock");
    expect(snapshot(sem[0]?.state ?? EMPTY_STATE, T0)).toMatchObject({
      kind: "semaphore",
      limit: 3,
      permitsInUse: 1,
    });
  });

  it("shows a lock-delay only while it is in force", () => {
    const steps = run([
      [T0, acq("a", { ttlMs: 500, lockDelayMs: 1_000 })],
      [T0 + 600, { type: "tick" }],
    ]);
    const s = steps[1]?.state ?? EMPTY_STATE;
    expect(snapshot(s, T0 + 600).delayUntil).toBe(T0 + 1_500);
    expect(snapshot(s, T0 + 1_500).delayUntil).toBeNull();
  });
});
