import { describe, expect, it } from "vitest";
import { acquire, inspect, lockName, release, renew, tick } from "./helpers/api.ts";
import { expireAllByAlarm, untilWaiters } from "./helpers/runtime.ts";

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

  it("refuses a different limit with limit_mismatch and the current limit", async () => {
    const name = lockName("sem-mismatch");
    await acquire(name, { ttlMs: 10_000, limit: 3 });
    const r = await acquire(name, { ttlMs: 10_000, limit: 4 });
    expect(r).toMatchObject({ status: 409, body: { code: "limit_mismatch", limit: 3 } });
    expect((await acquire(name, { ttlMs: 10_000 })).body).toMatchObject({ code: "limit_mismatch", limit: 3 });
  });

  it("serves waiters FIFO across permit sizes: a big request is not starved by later small ones", async () => {
    const name = lockName("sem-fifo");
    const a = await acquire(name, { ttlMs: 10_000, limit: 4, permits: 3 });
    const order: string[] = [];
    const big = acquire(name, { ttlMs: 10_000, waitMs: 20_000, limit: 4, permits: 4, owner: "big" }).then(
      (r) => {
        order.push("big");
        return r;
      },
    );
    await untilWaiters(name, 1);
    const small = acquire(name, { ttlMs: 10_000, waitMs: 20_000, limit: 4, permits: 1, owner: "small" }).then(
      (r) => {
        order.push("small");
        return r;
      },
    );
    await untilWaiters(name, 2);
    await release(name, a.body.leaseId);
    const b = await big;
    await release(name, b.body.leaseId);
    await small;
    expect(order).toEqual(["big", "small"]);
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
  it("lets readers in together and keeps a writer alone", async () => {
    const name = lockName("rw");
    const r1 = await acquire(name, { ttlMs: 10_000, mode: "shared" });
    const r2 = await acquire(name, { ttlMs: 10_000, mode: "shared" });
    expect([r1.status, r2.status]).toEqual([200, 200]);
    expect((await inspect(name)).body.kind).toBe("rwlock");
    expect((await acquire(name, { ttlMs: 10_000 })).body.code).toBe("lock_held");
    await release(name, r1.body.leaseId);
    await release(name, r2.body.leaseId);
    const w = await acquire(name, { ttlMs: 10_000 });
    expect(w.status).toBe(200);
    expect((await acquire(name, { ttlMs: 10_000, mode: "shared" })).body.code).toBe("lock_held");
  });

  it("does not starve a writer behind a stream of readers, then grants the queued readers together", async () => {
    const name = lockName("rw-fair");
    const r1 = await acquire(name, { ttlMs: 10_000, mode: "shared" });
    const writer = acquire(name, { ttlMs: 10_000, waitMs: 20_000, owner: "writer" });
    await untilWaiters(name, 1);
    const readers = ["r2", "r3", "r4"].map((owner) =>
      acquire(name, { ttlMs: 10_000, waitMs: 20_000, mode: "shared", owner }),
    );
    await untilWaiters(name, 4);
    await release(name, r1.body.leaseId);
    const w = await writer;
    expect(w.body).toMatchObject({ owner: "writer", token: 2 });
    expect((await inspect(name)).body).toMatchObject({ waiters: 3, holders: [{ owner: "writer" }] });
    await release(name, w.body.leaseId);
    const granted = await Promise.all(readers);
    expect(granted.map((g) => g.body.token).sort()).toEqual([3, 4, 5]);
    expect((await inspect(name)).body.holders).toHaveLength(3);
  });

  it("downgrades a writer to a reader without releasing, admitting waiting readers", async () => {
    const name = lockName("rw-down");
    const w = await acquire(name, { ttlMs: 10_000 });
    const reader = acquire(name, { ttlMs: 10_000, waitMs: 20_000, mode: "shared" });
    await untilWaiters(name, 1);
    const down = await renew(name, { leaseId: w.body.leaseId, mode: "shared" });
    expect(down.body).toMatchObject({ mode: "shared", token: 1 });
    expect((await reader).body).toMatchObject({ mode: "shared", token: 2 });
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
  const BOB = "bob-holder-key-00000001";
  it("counts one holder's holds up and down under one token, each released by its own leaseId", async () => {
    const name = lockName("re");
    const first = await acquire(name, { ttlMs: 10_000, owner: "alice", reentrant: true, holderKey: ALICE });
    const second = await acquire(name, { ttlMs: 10_000, owner: "alice", reentrant: true, holderKey: ALICE });
    expect(second.body).toMatchObject({ token: 1, holdCount: 2 });
    expect(
      (await acquire(name, { ttlMs: 10_000, owner: "bob", reentrant: true, holderKey: BOB })).body.code,
    ).toBe("lock_held");
    expect((await release(name, second.body.leaseId)).body).toEqual({ released: true, holdCount: 1 });
    expect((await inspect(name)).body.holders).toMatchObject([{ owner: "alice", holdCount: 1 }]);
    expect((await release(name, first.body.leaseId)).body).toEqual({ released: true, holdCount: 0 });
    expect(
      (await acquire(name, { ttlMs: 10_000, owner: "bob", reentrant: true, holderKey: BOB })).body.token,
    ).toBe(2);
  });

  it("without the opt-in, a second acquire by the same owner is refused", async () => {
    const name = lockName("non-re");
    await acquire(name, { ttlMs: 10_000, owner: "alice" });
    expect((await acquire(name, { ttlMs: 10_000, owner: "alice" })).body.code).toBe("lock_held");
  });

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

  it("refuses an acquire during the delay with lock_delay, distinct from lock_held", async () => {
    const name = lockName("delay-code");
    await acquire(name, { ttlMs: 60_000, lockDelayMs: 60_000 });
    await expireAllByAlarm(name);
    const r = await acquire(name, { ttlMs: 1_000 });
    expect(r).toMatchObject({ status: 409, body: { code: "lock_delay" } });
    const view = (await inspect(name)).body;
    expect(view.held).toBe(false);
    expect(view.lockDelayUntil).toBeGreaterThan(Date.now() + 50_000);
  });

  it("frees the lock at once after a normal release", async () => {
    const name = lockName("delay-release");
    const a = await acquire(name, { ttlMs: 10_000, lockDelayMs: 60_000 });
    await release(name, a.body.leaseId);
    expect((await acquire(name, { ttlMs: 1_000 })).status).toBe(200);
  });
});
