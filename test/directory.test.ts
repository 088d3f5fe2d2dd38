/**
 * The directory of active locks through the real Worker, lock objects and shard objects: a lock appears
 * when it is taken and goes when it is freed (release or expiry), listings are scoped to the key and paged,
 * entries are spread over shards, and a report the directory lost is repaired by the lock's next change or
 * alarm. Reports are asynchronous by design, so tests wait for the listing to change, never for a time.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { DirectoryEntry, LockDirectory } from "../client/src/protocol.ts";
import { DIRECTORY_SHARDS, shardOf } from "../durable-objects/directory.ts";
import { lockDirectorySchema } from "../worker/wire.ts";
import { acquire, call, release, renew } from "./helpers/api.ts";
import { callAs as authCall, type KeyName } from "./helpers/auth.ts";
import { lockName } from "./helpers/names.ts";
import { expireAllByAlarm, stubOf } from "./helpers/runtime.ts";

async function list(query: string, key?: KeyName): Promise<LockDirectory> {
  const res =
    key === undefined
      ? await call("GET", `/v1/locks${query}`)
      : await authCall(`/v1/locks${query}`, { key }).then(async (r) => ({
          status: r.status,
          body: await r.json(),
        }));
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return lockDirectorySchema.parse(res.body);
}

/** Waits until the listing under `prefix` satisfies `ok` (reports arrive a moment after each change). */
async function until(
  prefix: string,
  ok: (locks: DirectoryEntry[]) => boolean,
  key?: KeyName,
): Promise<DirectoryEntry[]> {
  let last: DirectoryEntry[] = [];
  for (let i = 0; i < 300; i++) {
    last = (await list(`?prefix=${encodeURIComponent(prefix)}`, key)).locks;
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the directory under ${prefix} never matched; last: ${JSON.stringify(last)}`);
}

const names = (locks: DirectoryEntry[]) => locks.map((l) => l.name);

describe("GET /v1/locks", () => {
  it("lists a lock while it is held or waited for, with holders, waiters and since when", async () => {
    const prefix = `${lockName("dir-basic")}:`;
    const name = `${prefix}a`;
    const before = Date.now();
    const a = await acquire(name, { ttlMs: 30_000 });
    const waiting = acquire(name, { ttlMs: 30_000, waitMs: 10_000 });
    const [entry] = await until(prefix, (l) => l[0]?.waiters === 1);
    expect(entry).toMatchObject({ name, kind: "mutex", holderCount: 1, waiters: 1 });
    expect(entry?.since).toBeGreaterThanOrEqual(before);
    expect(entry?.until).toBeGreaterThan(Date.now());
    await release(name, a.body.leaseId);
    const b = await waiting;
    await until(prefix, (l) => l[0]?.waiters === 0 && l[0]?.holderCount === 1);
    await release(name, b.body.leaseId);
    expect(await until(prefix, (l) => l.length === 0)).toEqual([]);
  });

  it("drops a lock whose lease expired, by the lock's alarm", async () => {
    const prefix = `${lockName("dir-expiry")}:`;
    await acquire(`${prefix}x`, { ttlMs: 60_000 });
    await until(prefix, (l) => l.length === 1);
    await expireAllByAlarm(`${prefix}x`);
    await until(prefix, (l) => l.length === 0);
  });

  it("spreads names over shards, and lists them all in name order, a page at a time", async () => {
    const prefix = `${lockName("dir-shards")}:`;
    const lockNames = Array.from({ length: 12 }, (_, i) => `${prefix}${String(i).padStart(2, "0")}`);
    for (const n of lockNames) await acquire(n, { ttlMs: 30_000 });
    expect(new Set(lockNames.map(shardOf)).size).toBeGreaterThan(1);
    expect(names(await until(prefix, (l) => l.length === 12))).toEqual(lockNames);
    // Each entry is kept by its own shard only.
    for (const n of lockNames.slice(0, 3)) {
      const rows = await runInDurableObject(env.DIRECTORY.getByName(shardOf(n)), (_o, state) =>
        state.storage.sql.exec("SELECT name FROM entry WHERE name = ?", n).toArray(),
      );
      expect(rows).toHaveLength(1);
    }
    const first = await list(`?prefix=${prefix}&limit=5`);
    expect(names(first.locks)).toEqual(lockNames.slice(0, 5));
    const second = await list(`?prefix=${prefix}&limit=5&after=${first.nextAfter}`);
    expect(names(second.locks)).toEqual(lockNames.slice(5, 10));
    const third = await list(`?prefix=${prefix}&limit=5&after=${second.nextAfter}`);
    expect(names(third.locks)).toEqual(lockNames.slice(10));
    expect(third.nextAfter).toBeNull();
    expect(first.lagMs).toBeGreaterThan(0);
    expect(DIRECTORY_SHARDS).toBeGreaterThan(1);
  });

  it("repairs a lost report on the lock's next change, and on its alarm", async () => {
    const prefix = `${lockName("dir-lost")}:`;
    const name = `${prefix}a`;
    const a = await acquire(name, { ttlMs: 30_000 });
    await until(prefix, (l) => l.length === 1);
    const lose = () =>
      runInDurableObject(env.DIRECTORY.getByName(shardOf(name)), (_o, state) => {
        state.storage.sql.exec("DELETE FROM entry WHERE name = ?", name);
      });
    await lose();
    expect((await list(`?prefix=${prefix}`)).locks).toEqual([]);
    await renew(name, { leaseId: a.body.leaseId });
    await until(prefix, (l) => l.length === 1);
    await lose();
    expect(await runDurableObjectAlarm(stubOf(name))).toBe(true);
    await until(prefix, (l) => l.length === 1);
  });

  it("lists only what the key may see: its own prefixes under a wider one, 403 outside them", async () => {
    const tag = lockName("dirscope").replaceAll("-", "");
    const billing = `billing:${tag}`;
    const payments = `payments:${tag}`;
    await authCall(`/v1/locks/${billing}/acquire`, { key: "billingWrite", body: { ttlMs: 30_000 } });
    await authCall(`/v1/locks/${payments}/acquire`, { key: "paymentsWrite", body: { ttlMs: 30_000 } });
    const mine = (l: DirectoryEntry[]) => l.filter((e) => e.name.endsWith(tag));
    expect(names(mine(await until("", (l) => mine(l).length === 2, "admin")))).toEqual([billing, payments]);
    expect(names(mine(await until("", (l) => mine(l).length === 1, "billingRead")))).toEqual([billing]);
    expect(names(await until("billing:", (l) => mine(l).length === 1, "billingRead"))).toContain(billing);
    expect((await list(`?prefix=billing:${tag}`, "billingRead")).locks.map((e) => e.name)).toEqual([billing]);
    const refused = await authCall("/v1/locks?prefix=payments:", { key: "billingRead" });
    expect(refused.status).toBe(403);
    expect((await refused.json<{ code: string }>()).code).toBe("forbidden_scope");
    expect((await authCall("/v1/locks", {})).status).toBe(401);
  });

  it("refuses bad parameters", async () => {
    for (const q of ["?prefix=a%20b", "?limit=0", "?limit=501", "?after=%2F"]) {
      const r = await call("GET", `/v1/locks${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.code).toBe("invalid_query");
    }
  });
});
