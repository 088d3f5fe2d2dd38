/**
 * Sessions over WebSockets against the real Worker and lock object: frames in, frames out, one queue and one
 * token counter with HTTP, everything a session holds or waits for ended when it closes (cleanly, by
 * silence, or while the object was evicted), `lost` pushed before anyone else is granted, and watchers told
 * of every change.
 */
import {
  abortAllDurableObjects,
  evictDurableObject,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SESSION_PROTOCOL, SESSION_TIMEOUT_MS } from "../client/src/protocol.ts";
import { app } from "../worker/app.ts";
import { BEARER_SUBPROTOCOL } from "../worker/auth.ts";
import { acquire, call, inspect, type Reply, release } from "./helpers/api.ts";
import { KEYS, secured } from "./helpers/auth.ts";
import { leaseId, lockName } from "./helpers/names.ts";
import { queued, untilWaiters } from "./helpers/runtime.ts";
import { type Frame, openAndAcquire, openSession, type TestSession } from "./helpers/session.ts";

const stub = (name: string) => env.LOCK.getByName(name);

/** Holds `name` over HTTP, and opens a session whose acquire (`frame`) is queued behind that holder. */
async function sessionWaitingBehindHolder(name: string, frame: Frame): Promise<[Reply, TestSession]> {
  const holder = await acquire(name, { ttlMs: 60_000 });
  const s = await openSession(name);
  s.send({ type: "acquire", ...frame });
  await untilWaiters(name, 1);
  return [holder, s];
}

describe("a session", () => {
  it("acquires, renews and releases with the HTTP shapes, sharing the token counter with HTTP", async () => {
    const name = lockName("s-basic");
    const http = await acquire(name, { ttlMs: 1_000 });
    await release(name, http.body.leaseId);
    const [s, granted] = await openAndAcquire(name, { ttlMs: 10_000, owner: "ws" });
    expect(granted).toMatchObject({ type: "granted", id: 1, name, owner: "ws", token: 2, holdCount: 1 });
    expect((await acquire(name, { ttlMs: 1_000 })).body).toMatchObject({ code: "lock_held", holderCount: 1 });
    s.send({ type: "renew", id: "r", leaseId: granted.leaseId, ttlMs: 20_000 });
    expect(await s.next((f) => f.id === "r")).toMatchObject({ type: "granted", ttlMs: 20_000, token: 2 });
    s.send({ type: "release", id: 3, leaseId: granted.leaseId });
    expect(await s.next((f) => f.id === 3)).toEqual({
      type: "released",
      id: 3,
      released: true,
      holdCount: 0,
    });
    expect((await acquire(name, { ttlMs: 1_000 })).body.token).toBe(3);
    s.close();
  });

  it("answers bad frames with error frames and stays open", async () => {
    const s = await openSession(lockName("s-bad"));
    s.send("not json");
    expect(await s.next()).toMatchObject({ type: "error", id: null, code: "malformed_json", status: 400 });
    s.send({ type: "steal", id: 1 });
    expect(await s.next()).toMatchObject({ type: "error", id: 1, code: "invalid_frame" });
    s.send({ type: "acquire", id: 2, ttlMs: 5 });
    expect(await s.next()).toMatchObject({ type: "error", id: 2, code: "invalid_ttl" });
    s.send({ type: "acquire", id: 3, ttlMs: 1_000, owner: "x".repeat(9_000) });
    expect(await s.next()).toMatchObject({ type: "error", id: null, code: "body_too_large" });
    s.send({ type: "acquire", id: 4, ttlMs: 1_000 });
    expect(await s.next()).toMatchObject({ type: "granted", id: 4, token: 1 });
    expect((await s.next((f) => f.id === 4, 10).catch(() => null)) ?? null).toBeNull();
    s.close();
  });

  it("is refused before the upgrade without Upgrade: websocket", async () => {
    const r = await call("GET", `/v1/locks/${lockName("s-plain")}/session`);
    expect(r).toMatchObject({ status: 426, body: { code: "upgrade_required" } });
  });
});

describe("what a session holds or waits for", () => {
  it("ends when it closes: the next waiter is granted at once, and the lease says why it ended", async () => {
    const name = lockName("s-close");
    const [s, { leaseId }] = await openAndAcquire(name, { ttlMs: 60_000 });
    const waiting = await queued(name, { ttlMs: 1_000, waitMs: 10_000, owner: "next" }, 1);
    s.close();
    expect((await waiting.answer).body).toMatchObject({ owner: "next", token: 2 });
    expect((await release(name, leaseId)).body).toMatchObject({ code: "not_held", reason: "session_closed" });
  });

  it("keeps a lost holder's lock-delay after the session closes", async () => {
    const name = lockName("s-delay");
    const [s] = await openAndAcquire(name, { ttlMs: 60_000, lockDelayMs: 2_000 });
    s.close();
    await untilDelay(name);
    expect((await acquire(name, { ttlMs: 1_000 })).body).toMatchObject({ code: "lock_delay" });
  });

  it("withdraws its waits when it closes, so they are never granted", async () => {
    const name = lockName("s-wait-close");
    const [holder, s] = await sessionWaitingBehindHolder(name, { id: 1, ttlMs: 60_000, waitMs: 600_000 });
    s.close();
    await untilWaiters(name, 0);
    await release(name, holder.body.leaseId);
    expect((await inspect(name)).body).toMatchObject({ held: false, lastToken: 1 });
  });

  it("ends when a restart of the lock object took the session's socket with it", async () => {
    const name = lockName("s-restart");
    const [, { leaseId }] = await openAndAcquire(name, { ttlMs: 60_000 });
    // Like a deploy or a crash: the object and its sockets are gone, the lease is in storage.
    await abortAllDurableObjects();
    expect((await inspect(name)).body).toMatchObject({ held: false, lastToken: 1 });
    expect((await release(name, leaseId)).body).toMatchObject({ code: "not_held", reason: "session_closed" });
  });

  it("ends when the session goes silent past its heartbeat deadline", async () => {
    const name = lockName("s-silent");
    const [s] = await openAndAcquire(name, { ttlMs: 60_000 });
    // A pulled cable: no close, no frame, no ping. Age the session's last sign of life and run the alarm.
    await runInDurableObject(stub(name), (_o, state) => {
      for (const ws of state.getWebSockets()) {
        const a = ws.deserializeAttachment() as { lastSeen: number };
        a.lastSeen = Date.now() - SESSION_TIMEOUT_MS - 1;
        ws.serializeAttachment(a);
      }
    });
    expect(await runDurableObjectAlarm(stub(name))).toBe(true);
    expect((await inspect(name)).body).toMatchObject({ held: false });
    await s.closed;
  });
});

describe("session waiters", () => {
  it("are pushed their grant past the HTTP per-request cap, in one FIFO queue with HTTP waiters", async () => {
    const name = lockName("s-fifo");
    const [holder, s] = await sessionWaitingBehindHolder(name, { id: "long", ttlMs: 5_000, waitMs: 600_000 });
    const http = await queued(name, { ttlMs: 1_000, waitMs: 10_000, owner: "http" }, 2);
    await release(name, holder.body.leaseId);
    const granted = await s.next((f) => f.id === "long");
    expect(granted).toMatchObject({ type: "granted", token: 2 });
    s.send({ type: "release", id: "r", leaseId: granted.leaseId });
    expect((await http.answer).body).toMatchObject({ owner: "http", token: 3 });
    s.close();
  });

  it("are refused when their wait ends, like an HTTP request", async () => {
    const name = lockName("s-wait-end");
    await acquire(name, { ttlMs: 60_000 });
    const [s, answer] = await openAndAcquire(name, { ttlMs: 5_000, waitMs: 200 });
    expect(answer).toMatchObject({ type: "error", code: "lock_held", position: 1 });
    s.close();
  });

  it("are granted after the lock object was evicted mid-session", async () => {
    const name = lockName("s-evict");
    const [holder, s] = await sessionWaitingBehindHolder(name, { id: 9, ttlMs: 5_000, waitMs: 600_000 });
    await evictDurableObject(stub(name));
    await release(name, holder.body.leaseId);
    expect(await s.next((f) => f.id === 9)).toMatchObject({ type: "granted", token: 2 });
    s.close();
  });

  it("500 sessions are granted in arrival order, each exactly once", async () => {
    const name = lockName("s-500");
    const holder = await acquire(name, { ttlMs: 60_000 });
    const sessions = [];
    for (let i = 0; i < 500; i++) {
      const s = await openSession(name);
      s.send({ type: "acquire", id: i, ttlMs: 10_000, waitMs: 600_000, leaseId: leaseId(`w${i}`) });
      sessions.push(s);
    }
    await untilWaiters(name, 500);
    await release(name, holder.body.leaseId);
    const tokens: number[] = [];
    for (const [i, s] of sessions.entries()) {
      const granted = await s.next((f) => f.id === i, 10_000);
      tokens.push(granted.token);
      s.send({ type: "release", id: "r", leaseId: granted.leaseId });
    }
    expect(tokens).toEqual(Array.from({ length: 500 }, (_, i) => i + 2));
    for (const s of sessions) expect(s.received.filter((f) => f.type === "granted")).toHaveLength(1);
    for (const s of sessions) s.close();
  }, 60_000);
});

describe("lost and watch", () => {
  it("pushes lost to a holder whose lease expired, before the next holder is granted", async () => {
    const name = lockName("s-lost");
    const [s, { leaseId }] = await openAndAcquire(name, { ttlMs: 300 });
    const order: string[] = [];
    const next = acquire(name, { ttlMs: 1_000, waitMs: 5_000 }).then((r) => {
      order.push("granted");
      return r;
    });
    const lost = s
      .next((f) => f.type === "lost")
      .then((f) => {
        order.push("lost");
        return f;
      });
    expect(await lost).toEqual({ type: "lost", leaseId, reason: "expired" });
    expect((await next).body.token).toBe(2);
    expect(order).toEqual(["lost", "granted"]);
    s.close();
  });

  it("pushes lost with the admin key's name on a force-release", async () => {
    const name = lockName("s-forced");
    const [s, { leaseId }] = await openAndAcquire(name, { ttlMs: 60_000 });
    await call("POST", `/v1/locks/${name}/force-release`);
    expect(await s.next((f) => f.type === "lost")).toEqual({
      type: "lost",
      leaseId,
      reason: "forced",
      by: "insecure-no-auth",
    });
    s.close();
  });

  it("pushes lost when the lease is released by its leaseId over another channel", async () => {
    const name = lockName("s-released-elsewhere");
    const [s, { leaseId }] = await openAndAcquire(name, { ttlMs: 60_000 });
    await release(name, leaseId);
    expect(await s.next((f) => f.type === "lost")).toEqual({ type: "lost", leaseId, reason: "released" });
    // Its own release over the session is no loss: it gets the answer, and no lost frame.
    s.send({ type: "acquire", id: 2, ttlMs: 60_000 });
    const again = await s.next((f) => f.id === 2);
    s.send({ type: "release", id: 3, leaseId: again.leaseId });
    await s.next((f) => f.id === 3);
    expect(s.received.filter((f) => f.type === "lost")).toHaveLength(1);
    s.close();
  });

  it("sends the state at once on watch, and on every change of holders or waiters", async () => {
    const name = lockName("s-watch");
    const watcher = await openSession(name);
    watcher.send({ type: "watch", id: "w" });
    expect(await watcher.next((f) => f.id === "w")).toMatchObject({ type: "state", name, held: false });
    const held = await acquire(name, { ttlMs: 60_000, owner: "a" });
    expect(await watcher.next((f) => f.type === "state" && f.held)).toMatchObject({
      holders: [{ owner: "a", token: 1 }],
    });
    const waiting = acquire(name, { ttlMs: 1_000, waitMs: 5_000, owner: "b" });
    expect(await watcher.next((f) => f.type === "state" && f.waiters === 1)).toMatchObject({ held: true });
    await release(name, held.body.leaseId);
    expect(await watcher.next((f) => f.type === "state" && f.holders[0]?.owner === "b")).toMatchObject({
      waiters: 0,
      lastToken: 2,
    });
    await waiting;
    // Nobody's leaseId is ever pushed to a watcher.
    expect(JSON.stringify(watcher.received)).not.toContain(held.body.leaseId);
    watcher.close();
  });
});

async function untilDelay(name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await inspect(name)).body.lockDelayUntil !== null) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error("never saw the lock-delay");
}

describe("session auth", () => {
  const viaApp = (env: Env) => (url: string, init: RequestInit) =>
    Promise.resolve(app.request(url, init, env));

  it("refuses a session before the upgrade without a key, or outside the key's scope", async () => {
    const env = await secured();
    const none = await app.request(
      `/v1/locks/${lockName("billing:")}/session`,
      { headers: { upgrade: "websocket" } },
      env,
    );
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    const scoped = await app.request(
      `/v1/locks/${lockName("payments:")}/session`,
      { headers: { upgrade: "websocket", authorization: `Bearer ${KEYS.billingWrite}` } },
      env,
    );
    expect(scoped.status).toBe(403);
    expect(await scoped.json()).toMatchObject({ code: "forbidden_scope" });
  });

  it("lets a read key watch but not acquire", async () => {
    const name = lockName("billing:");
    const s = await openSession(
      name,
      { authorization: `Bearer ${KEYS.billingRead}` },
      viaApp(await secured()),
    );
    s.send({ type: "acquire", id: 1, ttlMs: 1_000 });
    expect(await s.next()).toMatchObject({ type: "error", id: 1, code: "forbidden", status: 403 });
    s.send({ type: "watch", id: 2 });
    expect(await s.next()).toMatchObject({ type: "state", id: 2, held: false });
    s.close();
  });

  it("takes a browser's key from the subprotocols, and answers with the protocol only", async () => {
    const name = lockName("billing:");
    const env = await secured();
    const res = await app.request(
      `/v1/locks/${name}/session`,
      {
        headers: {
          upgrade: "websocket",
          "sec-websocket-protocol": `${SESSION_PROTOCOL}, ${BEARER_SUBPROTOCOL}${KEYS.billingWrite}`,
        },
      },
      env,
    );
    expect(res.status).toBe(101);
    expect(res.headers.get("sec-websocket-protocol")).toBe(SESSION_PROTOCOL);
    res.webSocket?.accept();
    res.webSocket?.close();
  });
});
