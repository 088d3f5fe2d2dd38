/**
 * The lock kinds through the Worker and lock object where the layer itself matters: many concurrent
 * requests, what GET shows, and what the alarm does. The kinds' rules themselves are the lock contract's
 * (test/contract/lock-contract.ts), run against every layer.
 */
import { describe, expect, it } from "vitest";
import { acquire, inspect, release, renew, tick } from "./helpers/api.ts";
import { lockName } from "./helpers/names.ts";
import { expireAllByAlarm, queued, untilWaiters } from "./helpers/runtime.ts";

describe("counting semaphore", () => {
  it("never lets more than its limit in, under 50 concurrent acquirers with mixed permits", async () => {
    const name = lockName("sem50");
    const limit = 5;
    let inUse = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const permits = (i % 3) + 1;
        const r = await acquire(name, { ttlMs: 10_000, waitMs: 25_000, limit, permits });
        expect(r.status).toBe(200);
        inUse += permits;
        peak = Math.max(peak, inUse);
        await tick(2);
        inUse -= permits;
        await release(name, r.body.leaseId);
      }),
    );
    expect(peak).toBeLessThanOrEqual(limit);
    expect(peak).toBeGreaterThan(1);
    expect((await inspect(name)).body).toMatchObject({ permitsInUse: 0, waiters: 0, lastToken: 50 });
  });

  it("shows the kind, limit and permits in use", async () => {
    const name = lockName("sem-view");
    await acquire(name, { ttlMs: 10_000, limit: 3, permits: 2, owner: "x" });
    expect((await inspect(name)).body).toMatchObject({
      kind: "semaphore",
      limit: 3,
      permitsInUse: 2,
      holders: [{ owner: "x", permits: 2, mode: "exclusive", holdCount: 1 }],
    });
  });

  it("expires each lease by alarm", async () => {
    const name = lockName("sem-expiry");
    await acquire(name, { ttlMs: 60_000, limit: 2 });
    await acquire(name, { ttlMs: 60_000, limit: 2 });
    await expireAllByAlarm(name);
    expect((await inspect(name)).body).toMatchObject({ held: false, permitsInUse: 0, lastToken: 2 });
  });
});

describe("read-write lock", () => {
  it("does not starve a writer behind a stream of readers, then grants the queued readers together", async () => {
    const name = lockName("rw-fair");
    const r1 = await acquire(name, { ttlMs: 10_000, mode: "shared" });
    const writer = await queued(name, { ttlMs: 10_000, waitMs: 20_000, owner: "writer" }, 1);
    const readers = ["r2", "r3", "r4"].map((owner) =>
      acquire(name, { ttlMs: 10_000, waitMs: 20_000, mode: "shared", owner }),
    );
    await untilWaiters(name, 4);
    await release(name, r1.body.leaseId);
    const w = await writer.answer;
    expect(w.body).toMatchObject({ owner: "writer", token: 2 });
    expect((await inspect(name)).body).toMatchObject({ waiters: 3, holders: [{ owner: "writer" }] });
    await release(name, w.body.leaseId);
    const granted = await Promise.all(readers);
    expect(granted.map((g) => g.body.token).sort()).toEqual([3, 4, 5]);
    expect((await inspect(name)).body.holders).toHaveLength(3);
  });

  it("refuses an upgrade from reader to writer", async () => {
    const name = lockName("rw-up");
    const r = await acquire(name, { ttlMs: 10_000, mode: "shared" });
    const up = await renew(name, { leaseId: r.body.leaseId, mode: "exclusive" });
    expect(up).toMatchObject({ status: 409, body: { code: "upgrade_not_supported" } });
    expect((await inspect(name)).body.holders).toMatchObject([{ mode: "shared" }]);
  });

  it("expires readers by alarm and lets a writer in", async () => {
    const name = lockName("rw-expiry");
    await acquire(name, { ttlMs: 60_000, mode: "shared" });
    await acquire(name, { ttlMs: 60_000, mode: "shared" });
    await expireAllByAlarm(name);
    expect((await acquire(name, { ttlMs: 1_000 })).body.token).toBe(3);
  });
});

describe("reentrant holds", () => {
  const ALICE = "alice-holder-key-0001";
  it("ends a reentrant lease with all its holds by alarm", async () => {
    const name = lockName("re-expiry");
    await acquire(name, { ttlMs: 60_000, owner: "alice", reentrant: true, holderKey: ALICE });
    await acquire(name, { ttlMs: 60_000, owner: "alice", reentrant: true, holderKey: ALICE });
    await expireAllByAlarm(name);
    expect((await acquire(name, { ttlMs: 1_000, owner: "bob" })).body.token).toBe(2);
  });
});

describe("lock-delay", () => {
  it("keeps the lock closed after an expiry, shows it, and grants the waiter by alarm when it ends", async () => {
    const name = lockName("delay");
    await acquire(name, { ttlMs: 200, lockDelayMs: 1_000 });
    const waiter = acquire(name, { ttlMs: 10_000, waitMs: 20_000, owner: "next" });
    const started = Date.now();
    const granted = await waiter;
    expect(granted.body).toMatchObject({ owner: "next", token: 2 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_100);
  });

  it("shows a lock-delay in force, and refuses with lock_delay meanwhile", async () => {
    const name = lockName("delay-code");
    await acquire(name, { ttlMs: 60_000, lockDelayMs: 60_000 });
    await expireAllByAlarm(name);
    const r = await acquire(name, { ttlMs: 1_000 });
    expect(r).toMatchObject({ status: 409, body: { code: "lock_delay" } });
    const view = (await inspect(name)).body;
    expect(view.held).toBe(false);
    expect(view.lockDelayUntil).toBeGreaterThan(Date.now() + 50_000);
  });
});
