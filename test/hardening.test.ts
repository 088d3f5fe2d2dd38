/**
 * What a client that lies, shares a label or floods can and cannot do, through the real Worker and lock
 * object with authentication on: reentrancy belongs to its holder, reentrant acquires get what they ask for,
 * each hold has its own leaseId, answers stay small, bodies are cut off at the limit, reads write nothing,
 * ended lease ids stay ended under any traffic, and owner labels render as what they are.
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  HOLDERS_PAGE_SIZE,
  MAX_BODY_BYTES,
  MAX_HOLDERS_IN_PROBLEM,
  MAX_OWNER_LENGTH,
} from "../client/src/protocol.ts";
import { callAs, type KeyName } from "./helpers/auth.ts";
import { leaseId, lockName } from "./helpers/names.ts";
import { untilWaiters } from "./helpers/runtime.ts";

const path = (name: string, action = "") => `/v1/locks/${name}${action === "" ? "" : `/${action}`}`;

async function post(name: string, action: string, key: KeyName, body: Record<string, unknown>) {
  const res = await callAs(path(name, action), { key, body });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: assertions read arbitrary JSON members
  return { status: res.status, size: text.length, body: JSON.parse(text) as any };
}

const alice = { ttlMs: 60_000, owner: "alice", reentrant: true, holderKey: "alice-process-0001" };

describe("reentrancy belongs to its holder", () => {
  it("gives each hold its own leaseId, released in any order", async () => {
    const name = lockName("billing:");
    const outer = await post(name, "acquire", "billingWrite", alice);
    const inner = await post(name, "acquire", "billingWrite", alice);
    expect(inner.body).toMatchObject({ token: outer.body.token, holdCount: 2 });
    expect(inner.body.leaseId).not.toBe(outer.body.leaseId);
    // The outer hold is given back first; the inner one still holds, and still answers to its own id.
    expect((await post(name, "release", "billingWrite", { leaseId: outer.body.leaseId })).body).toEqual({
      released: true,
      holdCount: 1,
    });
    expect((await post(name, "renew", "billingWrite", { leaseId: inner.body.leaseId })).status).toBe(200);
    expect((await post(name, "release", "billingWrite", { leaseId: inner.body.leaseId })).body).toEqual({
      released: true,
      holdCount: 0,
    });
    const view = await (await callAs(path(name), { key: "billingRead" })).json();
    expect(view).toMatchObject({ held: false, holderCount: 0 });
  });

  it("refuses another key that sends the holder's owner label and even its holderKey", async () => {
    const name = lockName("billing:");
    const held = await post(name, "acquire", "billingWrite", alice);
    expect(held.status).toBe(200);
    const intruder = await post(name, "acquire", "billingWrite2", alice);
    expect(intruder.status).toBe(409);
    expect(intruder.body.code).toBe("lock_held");
    expect(JSON.stringify(intruder.body)).not.toContain(held.body.leaseId);
    // Two releases by the intruder, with the only ids it knows, change nothing.
    const sameKeyOtherProcess = await post(name, "acquire", "billingWrite", {
      ...alice,
      holderKey: "alice-process-0002",
    });
    expect(sameKeyOtherProcess.body.code).toBe("lock_held");
    const view = await callAs(path(name), { key: "billingRead" });
    expect(await view.json()).toMatchObject({ holderCount: 1, holders: [{ owner: "alice", holdCount: 1 }] });
    // The holder itself re-enters.
    expect((await post(name, "acquire", "billingWrite", alice)).body).toMatchObject({
      token: held.body.token,
      holdCount: 2,
    });
  });

  it("gives a reentrant acquire the mode, limit and permits it asks for, or a clear refusal", async () => {
    const rw = lockName("billing:");
    await post(rw, "acquire", "billingWrite", { ...alice, mode: "shared" });
    expect((await post(rw, "acquire", "billingWrite", { ...alice, mode: "exclusive" })).body).toMatchObject({
      status: 409,
      code: "reentrant_mismatch",
      mode: "shared",
    });
    const sem = lockName("billing:");
    await post(sem, "acquire", "billingWrite", { ...alice, limit: 5 });
    const mutexAsk = await post(sem, "acquire", "billingWrite", alice);
    expect(mutexAsk.body).toMatchObject({ code: "limit_mismatch", limit: 5 });
    const bigAsk = await post(sem, "acquire", "billingWrite", { ...alice, limit: 9, permits: 9 });
    expect(bigAsk.body).toMatchObject({ code: "limit_mismatch", limit: 5 });
    const morePermits = await post(sem, "acquire", "billingWrite", { ...alice, limit: 5, permits: 2 });
    expect(morePermits.body).toMatchObject({ code: "reentrant_mismatch", permits: 1 });
  });

  it("releases the hold of the leaseId a reentrant acquire was sent with, once", async () => {
    const name = lockName("billing:");
    const first = await post(name, "acquire", "billingWrite", alice);
    const aliasId = leaseId("alias");
    const second = await post(name, "acquire", "billingWrite", { ...alice, leaseId: aliasId });
    expect(second.body).toMatchObject({ leaseId: aliasId, token: first.body.token, holdCount: 2 });
    // The client whose answer was lost abandons by the id it sent: that hold ends, and only that one.
    expect((await post(name, "release", "billingWrite", { leaseId: aliasId })).body).toEqual({
      released: true,
      holdCount: 1,
    });
    expect((await post(name, "release", "billingWrite", { leaseId: aliasId })).body).toEqual({
      released: true,
    });
    expect((await post(name, "acquire", "billingWrite", { ...alice, leaseId: aliasId })).body).toMatchObject({
      code: "lease_ended",
    });
    expect((await post(name, "release", "billingWrite", { leaseId: first.body.leaseId })).body).toEqual({
      released: true,
      holdCount: 0,
    });
  });

  it("answers a reentrant acquire that carries a queued waiter's leaseId as that waiter, not as a hold", async () => {
    const name = lockName("billing:");
    await post(name, "acquire", "billingWrite", alice);
    const waiterId = leaseId("waiter");
    const waiting = post(name, "acquire", "billingWrite", {
      ttlMs: 60_000,
      waitMs: 2_000,
      leaseId: waiterId,
    });
    await untilWaiters(name, 1);
    const twisted = await post(name, "acquire", "billingWrite", { ...alice, leaseId: waiterId, waitMs: 0 });
    expect(twisted.body).toMatchObject({ code: "lock_held", position: 1, leaseId: waiterId });
    expect((await waiting).body).toMatchObject({ code: "lock_held" });
    const view = await (await callAs(path(name), { key: "billingRead" })).json();
    expect(view).toMatchObject({ holders: [{ owner: "alice", holdCount: 1 }] });
  });
});

describe("answers stay small", () => {
  it("lists a few holders in a 409 and pages them on GET, whatever the semaphore holds", async () => {
    const name = lockName("billing:");
    const count = 250;
    const owner = (i: number) => `${String(i).padStart(4, "0")}${"o".repeat(MAX_OWNER_LENGTH - 4)}`;
    for (let i = 0; i < count; i++) {
      const r = await post(name, "acquire", "billingWrite", { ttlMs: 60_000, limit: count, owner: owner(i) });
      expect(r.status).toBe(200);
    }
    const refused = await post(name, "acquire", "billingWrite", { ttlMs: 60_000, limit: count });
    expect(refused.body).toMatchObject({ code: "lock_held", holderCount: count });
    expect(refused.body.holders).toHaveLength(MAX_HOLDERS_IN_PROBLEM);
    expect(refused.size).toBeLessThan(4_096);
    const seen: string[] = [];
    let after: number | null = 0;
    while (after !== null) {
      const res = await callAs(`${path(name)}?after=${after}`, { key: "billingRead" });
      const text = await res.text();
      const page = JSON.parse(text);
      expect(page.holders.length).toBeLessThanOrEqual(HOLDERS_PAGE_SIZE);
      expect(text.length).toBeLessThan(HOLDERS_PAGE_SIZE * (MAX_OWNER_LENGTH + 200));
      expect(page.holderCount).toBe(count);
      seen.push(...page.holders.map((h: { owner: string }) => h.owner));
      after = page.nextAfter;
    }
    expect(seen).toEqual(Array.from({ length: count }, (_, i) => owner(i)));
    expect((await callAs(`${path(name)}?after=x`, { key: "billingRead" })).status).toBe(400);
  });

  it("stops reading a body without a length at the limit", async () => {
    const name = lockName("billing:");
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += chunk.byteLength;
        if (pulled > 50 * 1024 * 1024) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await exports.default.fetch(`http://edgelock.test${path(name, "acquire")}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: "body_too_large" });
    // A few chunks of read-ahead at most, never the 50 MB.
    expect(pulled).toBeLessThan(MAX_BODY_BYTES + 8 * chunk.byteLength);
  });
});

describe("reads write nothing", () => {
  it("leaves no table behind when a never-used name is inspected", async () => {
    const name = lockName("billing:");
    expect((await callAs(path(name), { key: "billingRead" })).status).toBe(200);
    const tables = await runInDurableObject(env.LOCK.getByName(name), (_o, state) =>
      state.storage.sql.exec("SELECT name FROM sqlite_master").toArray(),
    );
    expect(tables).toEqual([]);
    // The first write creates them, in the commit of that write.
    await post(name, "acquire", "billingWrite", { ttlMs: 1_000 });
    const after = await runInDurableObject(env.LOCK.getByName(name), (_o, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM lock_meta").one(),
    );
    expect(after).toEqual({ n: 1 });
  });
});

describe("ended lease ids", () => {
  it("stay ended for a late retry however many leases ended since", async () => {
    const name = lockName("billing:");
    const first = leaseId("first");
    await post(name, "acquire", "billingWrite", { ttlMs: 60_000, leaseId: first });
    await post(name, "release", "billingWrite", { leaseId: first });
    for (let i = 0; i < 300; i++) {
      const r = await post(name, "acquire", "billingWrite", { ttlMs: 60_000 });
      await post(name, "release", "billingWrite", { leaseId: r.body.leaseId });
    }
    const late = await post(name, "acquire", "billingWrite", { ttlMs: 86_400_000, leaseId: first });
    expect(late.body).toMatchObject({ code: "lease_ended", reason: "released" });
    const view = await (await callAs(path(name), { key: "billingRead" })).json();
    expect(view).toMatchObject({ held: false, lastToken: 301 });
  }, 30_000);
});

describe("owner labels", () => {
  it.each([
    ["a lone surrogate", "\ud800x"],
    ["a right-to-left override", "alice\u202Eecila"],
    ["a zero-width space", "ali\u200Bce"],
    ["a line separator", "alice\u2028granted to bob"],
    ["a newline", "alice\ngranted"],
  ])("refuses %s", async (_label, owner) => {
    const name = lockName("billing:");
    const res = await callAs(path(name, "acquire"), {
      key: "billingWrite",
      headers: { "content-type": "application/json" },
      // JSON.stringify would escape a lone surrogate as \ud800, which still parses back to one.
      body: { ttlMs: 1_000, owner },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: "invalid_owner" });
  });

  it("accepts letters of any script, accents and emoji", async () => {
    const name = lockName("billing:");
    for (const owner of ["José Müller", "山田太郎", "Ωμέγα-3", "deploy 🚀 bot"]) {
      const r = await post(name, "acquire", "billingWrite", { ttlMs: 1_000, owner, limit: 10 });
      expect(r.body).toMatchObject({ owner });
    }
  });
});

describe("error details", () => {
  it("says a field is missing only when it is", async () => {
    const name = lockName("billing:");
    const wrongType = await post(name, "acquire", "billingWrite", { ttlMs: "1000" });
    expect(wrongType.body.code).toBe("invalid_ttl");
    expect(wrongType.body.detail).not.toContain("missing");
    const fraction = await post(name, "acquire", "billingWrite", { ttlMs: 1.5 });
    expect(fraction.body.detail).not.toContain("missing");
    const missing = await post(name, "acquire", "billingWrite", {});
    expect(missing.body.detail).toContain("missing");
    // A typo is the real mistake, not the field it leaves missing.
    const typo = await post(name, "acquire", "billingWrite", { ttl: 1000 });
    expect(typo.body).toMatchObject({ code: "invalid_body" });
    expect(typo.body.detail).toContain("ttl");
  });
});

describe("authentication off", () => {
  it("marks every answer, errors and health checks included", async () => {
    // The test Worker runs with EDGELOCK_INSECURE_NO_AUTH=true (vitest.config.ts).
    for (const [method, url, body] of [
      ["GET", "/healthz", undefined],
      ["GET", "/no/such/route", undefined],
      ["POST", `/v1/locks/${lockName("x")}/acquire`, "{}"],
      ["POST", `/v1/locks/${lockName("x")}/acquire`, '{"ttlMs": 1000}'],
    ] as const) {
      const res = await exports.default.fetch(`http://edgelock.test${url}`, {
        method,
        ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }),
      });
      await res.arrayBuffer();
      expect(res.headers.get("x-edgelock-auth"), `${method} ${url} → ${res.status}`).toBe("insecure-no-auth");
    }
  });
});
