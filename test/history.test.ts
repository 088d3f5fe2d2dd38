/**
 * A lock's history through the real Worker and lock object: every event kind, newest first, paged, bounded
 * by count and age, renewals coalesced, public fields only, scope-checked; and the token check.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  EVENTS_PAGE_SIZE,
  HISTORY_MAX_AGE_MS,
  HISTORY_MAX_EVENTS,
  type LockEvent,
} from "../client/src/protocol.ts";
import { SWEEP_EVERY } from "../durable-objects/history-store.ts";
import { lockEventsSchema, tokenCheckSchema } from "../worker/wire.ts";
import { acquire, call, release, renew } from "./helpers/api.ts";
import { callAs as authCall } from "./helpers/auth.ts";
import { leaseId, lockName } from "./helpers/names.ts";
import { expireAllByAlarm, queued, stubOf } from "./helpers/runtime.ts";
import { openSession } from "./helpers/session.ts";

async function events(name: string, query = ""): Promise<LockEvent[]> {
  const r = await call("GET", `/v1/locks/${name}/events${query}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return lockEventsSchema.parse(r.body).events;
}

const kinds = (list: LockEvent[]) => list.map((e) => e.kind);

/** Every event the API shows for `name`, page by page, newest first. */
async function allEvents(name: string): Promise<LockEvent[]> {
  const all: LockEvent[] = [];
  for (let before: number | null = null; ; ) {
    const r = await call(
      "GET",
      `/v1/locks/${name}/events?limit=${EVENTS_PAGE_SIZE}${before === null ? "" : `&before=${before}`}`,
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const page = lockEventsSchema.parse(r.body);
    all.push(...page.events);
    if (page.nextBefore === null) return all;
    before = page.nextBefore;
  }
}

describe("GET /v1/locks/{name}/events", () => {
  it("records grants, waits and releases, newest first, with wait and hold times", async () => {
    const name = lockName("h-basic");
    const a = await acquire(name, { ttlMs: 10_000, owner: "alice" });
    const waiting = await queued(name, { ttlMs: 10_000, owner: "bob", waitMs: 5_000 }, 1);
    await release(name, a.body.leaseId);
    const b = await waiting.answer;
    await release(name, b.body.leaseId);
    const list = await events(name);
    expect(kinds(list)).toEqual(["released", "granted", "released", "granted"]);
    expect(list.map((e) => [e.owner, e.token])).toEqual([
      ["bob", 2],
      ["bob", 2],
      ["alice", 1],
      ["alice", 1],
    ]);
    expect(list[1]?.waitMs).toBeGreaterThan(0);
    expect(list[3]?.waitMs).toBe(0);
    expect(list[2]?.holdMs).toBeGreaterThanOrEqual(0);
    expect(list.map((e) => e.id)).toEqual([...list.map((e) => e.id)].sort((x, y) => y - x));
  });

  it("coalesces a run of renewals of one lease into one event, moved up at each renewal", async () => {
    const name = lockName("h-renew");
    const a = await acquire(name, { ttlMs: 10_000, limit: 2 });
    const b = await acquire(name, { ttlMs: 10_000, limit: 2 });
    for (let i = 0; i < 4; i++) {
      await renew(name, { leaseId: a.body.leaseId });
      await renew(name, { leaseId: b.body.leaseId });
    }
    await renew(name, { leaseId: a.body.leaseId });
    const list = await events(name);
    expect(list.map((e) => [e.kind, e.token, e.renewals])).toEqual([
      ["renewed", 1, 5],
      ["renewed", 2, 4],
      ["granted", 2, null],
      ["granted", 1, null],
    ]);
  });

  it("records expiry, force-release with the admin key, cancelled, timed-out and session waits", async () => {
    const name = lockName("billing:");
    const call = (path: string, init: Parameters<typeof authCall>[1]) => authCall(path, init);
    await call(`/v1/locks/${name}/acquire`, { key: "billingWrite", body: { ttlMs: 60_000, owner: "stuck" } });
    const cancel = leaseId("cancel-me");
    const parked = call(`/v1/locks/${name}/acquire`, {
      key: "billingWrite",
      body: { ttlMs: 1_000, waitMs: 10_000, leaseId: cancel, owner: "c" },
    });
    const gaveUp = await call(`/v1/locks/${name}/acquire`, {
      key: "billingWrite",
      body: { ttlMs: 1_000, waitMs: 50, owner: "g" },
    });
    expect(gaveUp.status).toBe(409);
    await call(`/v1/locks/${name}/release`, { key: "billingWrite", body: { leaseId: cancel } });
    expect((await parked).status).toBe(409);
    const forced = await call(`/v1/locks/${name}/force-release`, { method: "POST", key: "admin" });
    expect(forced.status).toBe(200);

    // The give-up's kept place lapses at its end: brought forward in storage, then the alarm sees it.
    await runInDurableObject(stubOf(name), (_o, state) => {
      state.storage.sql.exec("UPDATE waiter SET hold_until = ?", Date.now() - 1);
    });
    await evictDurableObject(stubOf(name));
    await runDurableObjectAlarm(stubOf(name));

    const s = await openSession(name);
    s.send({ type: "acquire", id: 1, ttlMs: 60_000, owner: "ws" });
    await s.next((f) => f.id === 1);
    s.close();
    await untilKinds(name, ["session_closed"], "billingRead");

    const expiring = lockName("h-expiry");
    await acquire(expiring, { ttlMs: 60_000, owner: "late" });
    await expireAllByAlarm(expiring);

    const list = lockEventsSchema.parse(
      await (await call(`/v1/locks/${name}/events`, { key: "billingRead" })).json(),
    ).events;
    expect(kinds(list).reverse()).toEqual([
      "granted",
      "cancelled",
      "forced",
      "timed_out",
      "granted",
      "session_closed",
    ]);
    expect(list.find((e) => e.kind === "forced")).toMatchObject({
      by: "ops-admin",
      owner: "stuck",
      token: 1,
    });
    expect(list.find((e) => e.kind === "cancelled")).toMatchObject({ owner: "c", token: null });
    expect(list.find((e) => e.kind === "timed_out")).toMatchObject({ owner: "g", token: null, waitMs: 50 });
    expect(list.find((e) => e.kind === "session_closed")).toMatchObject({
      owner: "ws",
      token: 2,
      holdCount: 0,
    });
    expect(await events(expiring)).toMatchObject([{ kind: "expired", owner: "late" }, { kind: "granted" }]);
  });

  it("never shows a leaseId, a holderKey or the holder's key name", async () => {
    const name = lockName("billing:");
    const secretId = leaseId("secret-lease");
    const holderKey = "secret-holder-key-0123456789";
    const body = { ttlMs: 5_000, leaseId: secretId, reentrant: true, holderKey, owner: "visible" };
    await authCall(`/v1/locks/${name}/acquire`, { key: "billingWrite", body });
    await authCall(`/v1/locks/${name}/renew`, { key: "billingWrite", body: { leaseId: secretId } });
    await authCall(`/v1/locks/${name}/release`, { key: "billingWrite", body: { leaseId: secretId } });
    const text = await (await authCall(`/v1/locks/${name}/events`, { key: "billingRead" })).text();
    expect(text).toContain("visible");
    for (const secret of [secretId, holderKey, "billing-rw"]) expect(text).not.toContain(secret);
  });

  it("pages with before, filters with since, and refuses bad parameters", async () => {
    const name = lockName("h-page");
    for (let i = 0; i < 3; i++) {
      const l = await acquire(name, { ttlMs: 5_000 });
      await release(name, l.body.leaseId);
    }
    const all = await events(name);
    expect(all).toHaveLength(6);
    const first = await call("GET", `/v1/locks/${name}/events?limit=4`);
    expect(first.body.events).toHaveLength(4);
    const second = await call("GET", `/v1/locks/${name}/events?limit=4&before=${first.body.nextBefore}`);
    expect(second.body.nextBefore).toBeNull();
    expect([...first.body.events, ...second.body.events]).toEqual(all);
    const since = all[1]?.at ?? 0;
    expect((await events(name, `?since=${since}`)).every((e) => e.at >= since)).toBe(true);
    for (const q of ["?limit=0", "?limit=201", "?before=x", "?since=-1"]) {
      const r = await call("GET", `/v1/locks/${name}/events${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.code).toBe("invalid_query");
    }
  });

  it("keeps the newest HISTORY_MAX_EVENTS events and none older than HISTORY_MAX_AGE_MS", async () => {
    const name = lockName("h-bound");
    await release(name, (await acquire(name, { ttlMs: 5_000 })).body.leaseId);
    const old = Date.now() - HISTORY_MAX_AGE_MS - 1_000;
    const stored = (where = "1") =>
      runInDurableObject(stubOf(name), (_o, state) =>
        Number(state.storage.sql.exec(`SELECT COUNT(*) AS n FROM lock_event WHERE ${where}`).one().n),
      );
    await runInDurableObject(stubOf(name), (_o, state) => {
      // As if the lock had a long past: old events first, then more than the bound of recent ones.
      for (let i = 0; i < 10; i++) {
        state.storage.sql.exec(
          "INSERT INTO lock_event (at, kind, owner, token, mode, permits) VALUES (?, 'granted', 'old', 1, 'exclusive', 1)",
          old,
        );
      }
      for (let i = 0; i < HISTORY_MAX_EVENTS + 10; i++) {
        state.storage.sql.exec(
          "INSERT INTO lock_event (at, kind, owner, token, mode, permits) VALUES (?, 'granted', 'filler', 1, 'exclusive', 1)",
          Date.now(),
        );
      }
    });
    // Reads hold both bounds whatever is stored: none too old, only the newest HISTORY_MAX_EVENTS.
    expect(await stored()).toBe(HISTORY_MAX_EVENTS + 22);
    expect(await allEvents(name)).toHaveLength(HISTORY_MAX_EVENTS);
    // Writes delete the rows past the bounds in batches, once every SWEEP_EVERY events: never a row past them
    // on each write, and never SWEEP_EVERY rows or more beyond HISTORY_MAX_EVENTS.
    for (let i = 0; i < SWEEP_EVERY; i++) {
      await release(name, (await acquire(name, { ttlMs: 5_000, owner: "newest" })).body.leaseId);
      const count = await stored();
      expect(count).toBeGreaterThanOrEqual(HISTORY_MAX_EVENTS);
      expect(count).toBeLessThan(HISTORY_MAX_EVENTS + SWEEP_EVERY);
    }
    expect(await stored("owner = 'old'")).toBe(0);
    const shown = await allEvents(name);
    expect(shown).toHaveLength(HISTORY_MAX_EVENTS);
    expect(shown.slice(0, 2).map((e) => [e.kind, e.owner])).toEqual([
      ["released", "newest"],
      ["granted", "newest"],
    ]);
  });

  it("is read scope: a read key reads it, a key of other prefixes does not", async () => {
    const name = lockName("billing:");
    expect((await authCall(`/v1/locks/${name}/events`, { key: "billingRead" })).status).toBe(200);
    const other = await authCall(`/v1/locks/${name}/events`, { key: "paymentsWrite" });
    expect(other.status).toBe(403);
    expect((await other.json<{ code: string }>()).code).toBe("forbidden_scope");
    expect((await authCall(`/v1/locks/${name}/events`, {})).status).toBe(401);
  });

  it("creates nothing for a name nobody used", async () => {
    const name = lockName("h-unused");
    expect(await events(name)).toEqual([]);
    const tables = await runInDurableObject(stubOf(name), (_o, state) =>
      state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray(),
    );
    expect(tables.filter((t) => !String(t.name).startsWith("_cf"))).toEqual([]);
  });
});

describe("GET /v1/locks/{name}/tokens/{token}", () => {
  it("says whether a token holds the lock now", async () => {
    const name = lockName("t-check");
    const a = await acquire(name, { ttlMs: 10_000, owner: "a" });
    const held = await call("GET", `/v1/locks/${name}/tokens/${a.body.token}`);
    expect(tokenCheckSchema.parse(held.body)).toMatchObject({
      name,
      token: 1,
      held: true,
      holder: { owner: "a", token: 1 },
      lastToken: 1,
    });
    await release(name, a.body.leaseId);
    await acquire(name, { ttlMs: 10_000, leaseId: leaseId("b") });
    expect((await call("GET", `/v1/locks/${name}/tokens/1`)).body).toMatchObject({
      held: false,
      holder: null,
      lastToken: 2,
    });
    expect((await call("GET", `/v1/locks/${name}/tokens/99`)).body).toMatchObject({ held: false });
  });

  it("sees an expiry that no alarm has reached yet", async () => {
    const name = lockName("t-expired");
    const a = await acquire(name, { ttlMs: 100 });
    await runInDurableObject(stubOf(name), (_o, state) => {
      state.storage.sql.exec("UPDATE lease SET expires_at = ?", Date.now() - 1);
    });
    await evictDurableObject(stubOf(name));
    expect((await call("GET", `/v1/locks/${name}/tokens/${a.body.token}`)).body.held).toBe(false);
  });

  it("refuses a token that is not a positive integer, and keys of other prefixes", async () => {
    for (const t of ["0", "x", "1.5", "-3", "9999999999999999"]) {
      const r = await call("GET", `/v1/locks/${lockName("t-bad")}/tokens/${t}`);
      expect(r.status, t).toBe(400);
      expect(r.body.code).toBe("invalid_query");
    }
    const r = await authCall(`/v1/locks/${lockName("billing:")}/tokens/1`, { key: "paymentsWrite" });
    expect(r.status).toBe(403);
  });
});

/** Waits until the lock's history holds these kinds among its newest events (an event, never a sleep). */
async function untilKinds(name: string, wanted: string[], key?: "billingRead"): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const res =
      key === undefined
        ? (await call("GET", `/v1/locks/${name}/events`)).body
        : await (await authCall(`/v1/locks/${name}/events`, { key })).json<{ events: LockEvent[] }>();
    const seen = (res.events as LockEvent[]).map((e) => e.kind);
    if (wanted.every((k) => seen.includes(k as LockEvent["kind"]))) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never saw ${wanted.join(", ")} in the history of ${name}`);
}
