import {
  abortAllDurableObjects,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_WAITERS } from "../client/src/protocol.ts";
import { acquire, call, inspect, release, renew, tick } from "./helpers/api.ts";
import { leaseId, lockName } from "./helpers/names.ts";
import { expireAllByAlarm, queued, stubOf, untilWaiters } from "./helpers/runtime.ts";

describe("acquire, renew, release", () => {
  it("grants a free lock with a lease, a token and an expiry", async () => {
    const name = lockName("basic");
    const before = Date.now();
    const r = await acquire(name, { ttlMs: 10_000, owner: "job@host" });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name, owner: "job@host", token: 1, ttlMs: 10_000 });
    expect(r.body.leaseId).toMatch(/^[A-Za-z0-9_-]{16,128}$/);
    expect(r.body.expiresAt).toBeGreaterThanOrEqual(before + 10_000);
  });

  it("stores a granted lease before answering", async () => {
    const name = lockName("durable");
    const r = await acquire(name, { ttlMs: 10_000 });
    const rows = await runInDurableObject(stubOf(name), (_o, state) =>
      state.storage.sql.exec("SELECT lease_id, token FROM lease").toArray(),
    );
    expect(rows).toEqual([{ lease_id: r.body.leaseId, token: 1 }]);
  });

  it("refuses a second holder with lock_held, retryAfterMs and Retry-After", async () => {
    const name = lockName("held");
    await acquire(name, { ttlMs: 10_000, owner: "first" });
    const r = await acquire(name, { ttlMs: 10_000 });
    expect(r.status).toBe(409);
    expect(r.type).toBe("application/problem+json");
    expect(r.body).toMatchObject({ code: "lock_held", status: 409, holders: [{ owner: "first", token: 1 }] });
    expect(r.body.retryAfterMs).toBeGreaterThan(9_000);
    expect(r.headers.get("retry-after")).toBe(String(Math.ceil(r.body.retryAfterMs / 1000)));
  });

  it("renews the holder's lease and moves its expiry", async () => {
    const name = lockName("renew");
    const a = await acquire(name, { ttlMs: 1_000 });
    const r = await renew(name, { leaseId: a.body.leaseId, ttlMs: 60_000 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ token: 1, ttlMs: 60_000, leaseId: a.body.leaseId });
    expect(r.body.expiresAt).toBeGreaterThan(a.body.expiresAt + 50_000);
  });

  it("refuses renew and release with a wrong leaseId and leaves the lock untouched", async () => {
    const name = lockName("wrong");
    const a = await acquire(name, { ttlMs: 10_000 });
    const before = (await inspect(name)).body;
    const badRenew = await renew(name, { leaseId: leaseId("intruder") });
    const badRelease = await release(name, leaseId("intruder"));
    expect(badRenew).toMatchObject({ status: 409, body: { code: "not_held", reason: "unknown" } });
    expect(badRelease).toMatchObject({ status: 409, body: { code: "not_held", reason: "unknown" } });
    expect((await inspect(name)).body).toEqual(before);
    expect((await release(name, a.body.leaseId)).body).toEqual({ released: true, holdCount: 0 });
  });

  it("lets release and renew be retried", async () => {
    const name = lockName("retry-release");
    const a = await acquire(name, { ttlMs: 10_000 });
    expect((await renew(name, { leaseId: a.body.leaseId })).status).toBe(200);
    expect((await renew(name, { leaseId: a.body.leaseId })).status).toBe(200);
    expect((await release(name, a.body.leaseId)).body).toEqual({ released: true, holdCount: 0 });
    expect((await release(name, a.body.leaseId)).body).toEqual({ released: true });
    expect((await renew(name, { leaseId: a.body.leaseId })).body).toMatchObject({
      code: "not_held",
      reason: "released",
    });
  });

  it("answers a repeated acquire with the same leaseId with the same lease, not a second grant", async () => {
    const name = lockName("idem");
    const id = leaseId();
    const first = await acquire(name, { ttlMs: 10_000, leaseId: id });
    const again = await acquire(name, { ttlMs: 10_000, leaseId: id, waitMs: 5_000 });
    expect(again.status).toBe(200);
    const { validForMs: _first, ...lease } = first.body;
    const { validForMs: _again, ...same } = again.body;
    expect(same).toEqual(lease);
    expect((await inspect(name)).body).toMatchObject({ lastToken: 1, waiters: 0 });
  });

  it("never shows a leaseId in inspection", async () => {
    const name = lockName("secret");
    const a = await acquire(name, { ttlMs: 10_000, owner: "o" });
    const view = await inspect(name);
    expect(view.body).toMatchObject({
      name,
      held: true,
      waiters: 0,
      lastToken: 1,
      holders: [{ owner: "o" }],
    });
    expect(JSON.stringify(view.body)).not.toContain(a.body.leaseId);
  });
});

describe("validForMs: how long a grant lasts from the request's arrival", () => {
  it("equals the TTL for an immediate grant and a renew", async () => {
    const name = lockName("valid-now");
    const a = await acquire(name, { ttlMs: 10_000 });
    expect(a.body.validForMs).toBeGreaterThanOrEqual(10_000);
    expect(a.body.validForMs).toBeLessThan(10_100);
    const r = await renew(name, { leaseId: a.body.leaseId, ttlMs: 20_000 });
    expect(r.body.validForMs).toBeGreaterThanOrEqual(20_000);
    expect(r.body.validForMs).toBeLessThan(20_100);
  });

  it("includes the time a waiter waited, since its lease starts at the grant", async () => {
    const name = lockName("valid-wait");
    const holder = await acquire(name, { ttlMs: 10_000 });
    const waiting = await queued(name, { ttlMs: 1_000, waitMs: 20_000 }, 1);
    await tick(300);
    await release(name, holder.body.leaseId);
    const w = await waiting.answer;
    expect(w.body.ttlMs).toBe(1_000);
    expect(w.body.validForMs).toBeGreaterThanOrEqual(1_250);
  });

  it("shrinks for a retry that collects a lease granted earlier", async () => {
    const name = lockName("valid-retry");
    const id = leaseId();
    await acquire(name, { ttlMs: 10_000, leaseId: id });
    await tick(300);
    const retry = await acquire(name, { ttlMs: 10_000, leaseId: id });
    expect(retry.body.validForMs).toBeLessThanOrEqual(9_750);
    expect(retry.body.validForMs).toBeGreaterThan(9_000);
  });
});

describe("mutual exclusion", () => {
  it("admits one holder at a time among 50 concurrent acquirers, in token order", async () => {
    const name = lockName("mutex50");
    let inside = 0;
    let peak = 0;
    const tokens: number[] = [];
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const r = await acquire(name, { ttlMs: 10_000, waitMs: 25_000, owner: `c${i}` });
        expect(r.status).toBe(200);
        inside += 1;
        peak = Math.max(peak, inside);
        tokens.push(r.body.token);
        await tick(1);
        inside -= 1;
        expect((await release(name, r.body.leaseId)).status).toBe(200);
      }),
    );
    expect(peak).toBe(1);
    expect(tokens).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect((await inspect(name)).body).toMatchObject({ held: false, waiters: 0, lastToken: 50 });
  });
});

describe("waiting", () => {
  it("grants waiters in arrival order, each the moment the lock frees", async () => {
    const name = lockName("fifo");
    const holder = await acquire(name, { ttlMs: 10_000 });
    const order: string[] = [];
    const waits = [];
    for (const who of ["w1", "w2", "w3", "w4"]) {
      waits.push(
        acquire(name, { ttlMs: 10_000, waitMs: 20_000, owner: who }).then(async (r) => {
          order.push(who);
          await release(name, r.body.leaseId);
          return r;
        }),
      );
      await untilWaiters(name, order.length + waits.length);
    }
    await release(name, holder.body.leaseId);
    const grants = await Promise.all(waits);
    expect(order).toEqual(["w1", "w2", "w3", "w4"]);
    expect(grants.map((g) => g.body.token)).toEqual([2, 3, 4, 5]);
  });

  it("queues a waitMs 0 newcomer's refusal behind waiters even when the lock is momentarily free", async () => {
    const name = lockName("no-jump");
    const holder = await acquire(name, { ttlMs: 10_000 });
    const waiter = await queued(name, { ttlMs: 10_000, waitMs: 20_000 }, 1);
    const [, jumper] = await Promise.all([
      release(name, holder.body.leaseId),
      acquire(name, { ttlMs: 1_000 }),
    ]);
    expect((await waiter.answer).body.token).toBe(2);
    expect(jumper.status).toBe(409);
  });

  it("hands an expired lease to the waiter by alarm, with no other request", async () => {
    const name = lockName("expiry-handoff");
    const holder = await acquire(name, { ttlMs: 300 });
    const waiter = await acquire(name, { ttlMs: 10_000, waitMs: 10_000 });
    expect(waiter.status).toBe(200);
    expect(waiter.body.token).toBe(2);
    expect(Date.now()).toBeGreaterThanOrEqual(holder.body.expiresAt);
    expect((await renew(name, { leaseId: holder.body.leaseId })).body.reason).toBe("expired");
  });

  it("re-arms an alarm that was left early, and still hands an expired lease on", async () => {
    const name = lockName("early-alarm");
    const first = await acquire(name, { ttlMs: 150 });
    await release(name, first.body.leaseId);
    // The alarm stays at the first lease's expiry; it fires early for this one and must re-arm.
    const holder = await acquire(name, { ttlMs: 600 });
    const alarmAt = await runInDurableObject(stubOf(name), (_o, state) => state.storage.getAlarm());
    expect(alarmAt).toBe(first.body.expiresAt);
    const waiter = await acquire(name, { ttlMs: 10_000, waitMs: 10_000 });
    expect(waiter.body.token).toBe(3);
    expect(Date.now()).toBeGreaterThanOrEqual(holder.body.expiresAt);
  });

  it("answers lock_held with the waiter's position when its wait runs out", async () => {
    const name = lockName("timeout");
    await acquire(name, { ttlMs: 10_000 });
    const a = await acquire(name, { ttlMs: 1_000, waitMs: 150, leaseId: leaseId() });
    expect(a.status).toBe(409);
    expect(a.body).toMatchObject({ code: "lock_held", position: 1 });
  });

  it("keeps a re-polling waiter's place across the per-request cap", async () => {
    const name = lockName("repoll");
    const holder = await acquire(name, { ttlMs: 10_000 });
    const b = leaseId("b");
    expect((await acquire(name, { ttlMs: 10_000, waitMs: 100, leaseId: b })).body).toMatchObject({
      code: "lock_held",
      position: 1,
      leaseId: b,
    });
    const c = await queued(name, { ttlMs: 10_000, waitMs: 20_000, owner: "c" }, 1);
    const bAgain = await queued(name, { ttlMs: 10_000, waitMs: 20_000, leaseId: b }, 2);
    await release(name, holder.body.leaseId);
    expect((await bAgain.answer).body).toMatchObject({ leaseId: b, token: 2 });
    await release(name, b);
    expect((await c.answer).body).toMatchObject({ owner: "c", token: 3 });
  });

  it("cancels a waiter by release of its leaseId, and never grants it", async () => {
    const name = lockName("cancel");
    const holder = await acquire(name, { ttlMs: 10_000 });
    const w = leaseId("w");
    const waiting = await queued(name, { ttlMs: 10_000, waitMs: 20_000, leaseId: w }, 1);
    expect((await release(name, w)).body).toEqual({ released: false, cancelled: true });
    expect(await waiting.answer).toMatchObject({ status: 409, body: { code: "wait_cancelled" } });
    await release(name, holder.body.leaseId);
    expect((await inspect(name)).body).toMatchObject({ held: false, waiters: 0, lastToken: 1 });
    expect((await acquire(name, { ttlMs: 1_000, leaseId: w })).body.code).toBe("lease_ended");
  });

  it("keeps a waiter's place across a restart of the lock object, and grants it on re-poll", async () => {
    const name = lockName("restart-wait");
    const holder = await acquire(name, { ttlMs: 10_000 });
    const b = leaseId("b");
    const parked = await queued(name, { ttlMs: 10_000, waitMs: 20_000, leaseId: b }, 1);
    // Like a deploy: the object is reset and its in-flight requests are cut off.
    await abortAllDurableObjects();
    const cut = await parked.answer;
    expect(cut).toMatchObject({ status: 503, body: { code: "unavailable" } });
    const c = await queued(name, { ttlMs: 10_000, waitMs: 20_000, owner: "c" }, 2);
    await release(name, holder.body.leaseId);
    // b was granted while it was not connected; its re-poll collects the same lease.
    const again = await acquire(name, { ttlMs: 10_000, waitMs: 0, leaseId: b });
    expect(again.body).toMatchObject({ leaseId: b, token: 2 });
    expect((await acquire(name, { ttlMs: 10_000, leaseId: b })).body.token).toBe(2);
    await release(name, b);
    expect((await c.answer).body.token).toBe(3);
  });

  it("keeps the queue's order across restarts when no other change followed the last waiters in", async () => {
    // Queuing writes only the waiter's row, so the lock's stored state says nothing of the places handed
    // out since its last grant: a restart must still put a newcomer behind every stored waiter.
    const name = lockName("restart-order");
    const holder = await acquire(name, { ttlMs: 10_000 });
    const b = await queued(name, { ttlMs: 10_000, waitMs: 20_000, owner: "b", leaseId: leaseId("b") }, 1);
    const c = await queued(name, { ttlMs: 10_000, waitMs: 20_000, owner: "c", leaseId: leaseId("c") }, 2);
    await abortAllDurableObjects();
    await Promise.all([b.answer, c.answer]);
    const d = await queued(name, { ttlMs: 10_000, waitMs: 20_000, owner: "d" }, 3);
    await abortAllDurableObjects();
    expect((await d.answer).status).toBe(503);
    const { queue } = (await inspect(name)).body as { queue: { owner: string }[] };
    expect(queue.map((w) => w.owner)).toEqual(["b", "c", "d"]);
    await release(name, holder.body.leaseId);
    expect((await inspect(name)).body).toMatchObject({ holders: [{ owner: "b" }] });
  });
});

describe("expiry and fencing", () => {
  it("expires a lease when the alarm runs, and the next grant has a larger token", async () => {
    const name = lockName("alarm");
    const a = await acquire(name, { ttlMs: 60_000 });
    await expireAllByAlarm(name);
    expect((await inspect(name)).body).toMatchObject({ held: false, lastToken: 1 });
    expect((await renew(name, { leaseId: a.body.leaseId })).body.reason).toBe("expired");
    expect(await runDurableObjectAlarm(stubOf(name))).toBe(false);
    expect((await acquire(name, { ttlMs: 1_000 })).body.token).toBe(2);
  });

  it("keeps leases, expiry and the token counter across a restart of the object", async () => {
    const name = lockName("restart");
    const a = await acquire(name, { ttlMs: 60_000 });
    await release(name, a.body.leaseId);
    const b = await acquire(name, { ttlMs: 60_000, owner: "b" });
    await evictDurableObject(stubOf(name));
    expect((await inspect(name)).body).toMatchObject({
      held: true,
      lastToken: 2,
      holders: [{ owner: "b", token: 2, expiresAt: b.body.expiresAt }],
    });
    expect((await acquire(name, { ttlMs: 1_000 })).status).toBe(409);
    await release(name, b.body.leaseId);
    await evictDurableObject(stubOf(name));
    expect((await acquire(name, { ttlMs: 1_000 })).body.token).toBe(3);
  });

  it("treats a repeated alarm as harmless", async () => {
    const name = lockName("alarm-twice");
    await acquire(name, { ttlMs: 60_000 });
    await expireAllByAlarm(name);
    const b = await acquire(name, { ttlMs: 60_000 });
    await runInDurableObject(stubOf(name), (o) => o.alarm());
    expect((await inspect(name)).body).toMatchObject({ held: true, holders: [{ token: b.body.token }] });
  });
});

describe("force-release", () => {
  it("ends the holder's lease, grants the next waiter a larger token, and tells the forced holder", async () => {
    const name = lockName("forced");
    const stuck = await acquire(name, { ttlMs: 60_000, owner: "stuck" });
    const waiting = await queued(name, { ttlMs: 10_000, waitMs: 20_000, owner: "next" }, 1);
    expect((await call("POST", `/v1/locks/${name}/force-release`)).body).toMatchObject({
      forced: true,
      count: 1,
    });
    const granted = (await waiting.answer).body;
    expect(granted).toMatchObject({ owner: "next", token: 2 });
    expect((await renew(name, { leaseId: stuck.body.leaseId })).body).toMatchObject({
      code: "not_held",
      reason: "forced",
    });
  });

  it("on a free lock ends nothing, and the next grant still gets a larger token", async () => {
    const name = lockName("forced-free");
    const first = await acquire(name, { ttlMs: 10_000 });
    await release(name, first.body.leaseId);
    expect((await call("POST", `/v1/locks/${name}/force-release`)).body).toMatchObject({ count: 0 });
    expect((await acquire(name, { ttlMs: 10_000 })).body.token).toBe(2);
  });
});

describe("the waiter cap", () => {
  it(`queues at most ${MAX_WAITERS} waiters: the next gets 429 too_many_waiters with Retry-After`, async () => {
    const name = lockName("cap");
    await acquire(name, { ttlMs: 60_000 });
    const ids = Array.from({ length: MAX_WAITERS }, (_, i) => leaseId(`w${i}`));
    const waiting = ids.map((id) => acquire(name, { ttlMs: 1_000, waitMs: 20_000, leaseId: id }));
    await untilWaiters(name, MAX_WAITERS);
    const over = await acquire(name, { ttlMs: 1_000, waitMs: 5_000 });
    expect(over).toMatchObject({ status: 429, body: { code: "too_many_waiters" } });
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    // Leave no parked requests behind: each waiter cancels its own wait.
    await Promise.all(ids.map((id) => release(name, id)));
    expect(new Set((await Promise.all(waiting)).map((r) => r.body.code))).toEqual(
      new Set(["wait_cancelled"]),
    );
  }, 60_000);
});
