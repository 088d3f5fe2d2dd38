/**
 * The client's sessions and watches against the real Worker and lock objects inside the Workers runtime:
 * the client opens its sockets with a `fetch` upgrade through the Worker's own entry point, as it does in
 * any Worker. Losses are caused the way they happen: the lock expiring or force-releasing a lease, the lock
 * object closing the socket. No part of the server is mocked.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  type AcquireOptions,
  AuthError,
  EdgelockClient,
  type EdgelockRpcApi,
  type Lease,
  LeaseLostError,
  LockHeldError,
  type LockSession,
  type LockView,
  ValidationError,
} from "../../client/src/index.ts";
import { app } from "../../worker/app.ts";
import { acquire, call, inspect, type Reply, release } from "../helpers/api.ts";
import { KEYS, secured } from "../helpers/auth.ts";
import { workerClient } from "../helpers/client.ts";
import { lockName } from "../helpers/names.ts";
import { expireAllByAlarm, stubOf, untilWaiters } from "../helpers/runtime.ts";

const client = workerClient({ owner: "session-test" });

/** Closes every session socket of the lock from the lock object's side, as a dropped connection would. */
async function dropSockets(name: string): Promise<number> {
  return runInDurableObject(stubOf(name), (_object, state) => {
    const sockets = state.getWebSockets();
    for (const ws of sockets) ws.close(1011, "dropped by the test");
    return sockets.length;
  });
}

async function openSockets(name: string): Promise<number> {
  return runInDurableObject(stubOf(name), (_object, state) => state.getWebSockets().length);
}

/**
 * Holds the session's lock over HTTP, then acquires through the session (a 10 s lease, `options` on top);
 * resolves once the lock counts that waiter, with the holder and the session's pending lease.
 */
async function waitBehindHttpHolder(
  session: LockSession,
  options: AcquireOptions,
): Promise<[Reply, Promise<Lease>]> {
  const holder = await acquire(session.name, { ttlMs: 10_000 });
  const waiting = session.acquire({ ttl: "10s", ...options });
  await untilWaiters(session.name, 1);
  return [holder, waiting];
}

/** Resolves with the signal's reason when it aborts. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    else signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });
}

describe("client.session", () => {
  it("acquires, renews and releases over one socket, with HTTP's token counter", async () => {
    const name = lockName("cs-basic");
    const http = await acquire(name, { ttlMs: 1_000 });
    await release(name, http.body.leaseId);
    await using session = client.session(name);
    const lease = await session.acquire({ ttl: "10s" });
    expect(lease).toMatchObject({ name, token: 2, owner: "session-test", holdCount: 1 });
    expect(lease.held).toBe(true);
    expect(lease.deadline).toBeLessThanOrEqual(lease.expiresAt);
    expect((await acquire(name, { ttlMs: 1_000 })).body).toMatchObject({ code: "lock_held" });
    await lease.renew({ ttl: "20s" });
    expect(lease.ttlMs).toBe(20_000);
    expect(await lease.release()).toMatchObject({ released: true });
    expect((await inspect(name)).body.held).toBe(false);
    expect(await openSockets(name)).toBe(1);
    session.close();
    await expect.poll(() => openSockets(name)).toBe(0);
  });

  it("is pushed its grant when an HTTP holder releases, in one FIFO queue with HTTP waiters", async () => {
    const name = lockName("cs-wait");
    await using session = client.session(name);
    const [holder, waiting] = await waitBehindHttpHolder(session, { wait: "1m" });
    const httpWaiter = acquire(name, { ttlMs: 1_000, waitMs: 10_000 });
    await untilWaiters(name, 2);
    await release(name, holder.body.leaseId);
    const lease = await waiting;
    expect(lease.token).toBe(2);
    await lease.release();
    expect((await httpWaiter).body.token).toBe(3);
  });

  it("aborts a lease's signal on a lost push for expiry, before the next holder is granted", async () => {
    const name = lockName("cs-expired");
    await using session = client.session(name);
    const lease = await session.acquire({ ttl: "60s" });
    const order: string[] = [];
    const lost = aborted(lease.signal).then((reason) => {
      order.push("lost");
      return reason;
    });
    // The next holder waits in a session too: sessions outlive the eviction that makes the lock reread
    // the edited rows, a parked HTTP request would not.
    await using other = client.session(name);
    const next = other.acquire({ ttl: "1s", wait: "10s" }).then((l) => {
      order.push("granted");
      return l;
    });
    await untilWaiters(name, 1);
    await expireAllByAlarm(name);
    const reason = await lost;
    expect(reason).toBeInstanceOf(LeaseLostError);
    expect(reason).toMatchObject({ code: "not_held", reason: "expired" });
    expect(lease.lost).toBe(reason);
    expect(lease.held).toBe(false);
    expect((await next).token).toBe(lease.token + 1);
    expect(order).toEqual(["lost", "granted"]);
    // Already lost on the server: release says so without asking.
    await expect(lease.release()).rejects.toBe(reason);
  });

  it("aborts a lease's signal on a force-release, naming who forced it", async () => {
    const name = lockName("cs-forced");
    await using session = client.session(name);
    const lease = await session.acquire({ ttl: "60s" });
    const lost = aborted(lease.signal);
    expect((await call("POST", `/v1/locks/${name}/force-release`)).status).toBe(200);
    expect(await lost).toMatchObject({ code: "not_held", reason: "forced" });
    expect(lease.lost?.detail).toContain("insecure-no-auth");
  });

  it("loses every lease when the socket drops, and reconnects for the next acquire", async () => {
    const name = lockName("cs-drop");
    await using session = client.session(name);
    const lease = await session.acquire({ ttl: "60s", autoRenew: true });
    const lost = aborted(lease.signal);
    expect(await dropSockets(name)).toBe(1);
    expect(await lost).toMatchObject({ code: "not_held", reason: "session_closed" });
    expect(session.connected).toBe(false);
    // The lock ended it too: the session's close frees it for anyone.
    await expect.poll(async () => (await inspect(name)).body.held).toBe(false);
    await expect(lease.renew()).rejects.toMatchObject({ reason: "session_closed" });

    const next = await session.acquire({ ttl: "10s" });
    expect(session.connected).toBe(true);
    expect(next.token).toBe(lease.token + 1);
    await next.release();
  });

  it("goes on waiting over a new socket when the socket drops during the wait", async () => {
    const name = lockName("cs-drop-wait");
    await using session = client.session(name);
    const [holder, waiting] = await waitBehindHttpHolder(session, { wait: "20s" });
    await dropSockets(name);
    // The wait withdrawn with the old socket is queued again from the new one.
    await expect.poll(async () => (await inspect(name)).body.waiters, { timeout: 5_000 }).toBe(1);
    await release(name, holder.body.leaseId);
    const lease = await waiting;
    expect(lease.token).toBe(2);
    await lease.release();
  });

  it("cancels a wait on abort: the lock drops the waiter at once", async () => {
    const name = lockName("cs-abort");
    await using session = client.session(name);
    const controller = new AbortController();
    const [holder, waiting] = await waitBehindHttpHolder(session, { wait: "1m", signal: controller.signal });
    controller.abort(new Error("changed my mind"));
    await expect(waiting).rejects.toThrow("changed my mind");
    await untilWaiters(name, 0);
    await release(name, holder.body.leaseId);
    expect((await inspect(name)).body.held).toBe(false);
  });

  it("throws LockHeldError when the wait runs out", async () => {
    const name = lockName("cs-held");
    const holder = await acquire(name, { ttlMs: 10_000, owner: "first" });
    await using session = client.session(name);
    const error = await session.acquire({ ttl: "1s", wait: 200 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockHeldError);
    expect(error).toMatchObject({ code: "lock_held", holder: { owner: "first" } });
    await release(name, holder.body.leaseId);
  });

  it("refuses to be used after close", async () => {
    const session = client.session(lockName("cs-closed"));
    session.close();
    await expect(session.acquire()).rejects.toBeInstanceOf(ValidationError);
  });

  it("answers a refused key with AuthError, not a network error", async () => {
    const env = await secured();
    const keyed = new EdgelockClient({
      url: "https://edgelock.test",
      apiKey: KEYS.billingWrite,
      fetch: (input, init) => Promise.resolve(app.request(input, init, env)),
    });
    const error = await keyed
      .session(lockName("payments:"))
      .acquire()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ code: "forbidden_scope", status: 403 });
  });

  it("needs a url: a client with only a binding cannot open one", () => {
    const binding = { acquire: () => Promise.reject(new Error("unused")) } as unknown as EdgelockRpcApi;
    const rpcOnly = new EdgelockClient({ binding });
    expect(() => rpcOnly.session("x")).toThrow(ValidationError);
  });
});

describe("withLock({ session: true })", () => {
  it("holds the lock through a session that is closed when fn returns", async () => {
    const name = lockName("cs-with");
    const result = await client.withLock(
      name,
      async (lease) => {
        expect(await openSockets(name)).toBe(1);
        expect((await inspect(name)).body.holders[0]?.token).toBe(lease.token);
        return "done";
      },
      { ttl: "10s", session: true },
    );
    expect(result).toBe("done");
    expect((await inspect(name)).body.held).toBe(false);
    await expect.poll(() => openSockets(name)).toBe(0);
  });

  it("rejects with the loss when the socket drops while fn runs", async () => {
    const name = lockName("cs-with-drop");
    const error = await client
      .withLock(
        name,
        async (lease) => {
          await dropSockets(name);
          await aborted(lease.signal);
          return "finished anyway";
        },
        { ttl: "10s", session: true },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(error).toMatchObject({ reason: "session_closed" });
  });

  it("withLocks takes every lock through its own session", async () => {
    const [a, b] = [lockName("cs-multi-a"), lockName("cs-multi-b")];
    await client.withLocks(
      [b, a],
      async ([lb, la]) => {
        expect([lb?.name, la?.name]).toEqual([b, a]);
        expect([await openSockets(a), await openSockets(b)]).toEqual([1, 1]);
      },
      { ttl: "10s", session: true },
    );
    expect((await inspect(a)).body.held).toBe(false);
    await expect.poll(async () => (await openSockets(a)) + (await openSockets(b))).toBe(0);
  });
});

describe("client.watch", () => {
  it("yields the lock's state at once and on every change; break closes its socket", async () => {
    const name = lockName("cs-watch");
    const seen: LockView[] = [];
    let holder: { leaseId: string } | undefined;
    for await (const state of client.watch(name)) {
      seen.push(state);
      if (seen.length === 1) {
        expect(state).toMatchObject({ name, held: false });
        holder = (await acquire(name, { ttlMs: 10_000, owner: "leader-a" })).body;
      } else if (state.held) {
        expect(state.holders[0]).toMatchObject({ owner: "leader-a", token: 1 });
        await release(name, holder?.leaseId ?? "");
      } else {
        break;
      }
    }
    expect(seen.map((s) => s.held)).toEqual([false, true, false]);
    await expect.poll(() => openSockets(name)).toBe(0);
  });

  it("waits until a lock is free", async () => {
    const name = lockName("cs-watch-free");
    const holder = await acquire(name, { ttlMs: 10_000 });
    const free = (async () => {
      for await (const state of client.watch(name)) if (!state.held) return state;
      throw new Error("the watch ended");
    })();
    await expect.poll(() => openSockets(name)).toBe(1);
    await release(name, holder.body.leaseId);
    expect(await free).toMatchObject({ held: false, lastToken: 1 });
  });

  it("reopens its socket when it drops, and goes on with the state as it is then", async () => {
    const name = lockName("cs-watch-drop");
    const watch = client.watch(name);
    expect((await watch.next()).value).toMatchObject({ held: false });
    await dropSockets(name);
    await acquire(name, { ttlMs: 10_000, owner: "while-away" });
    // Either the new socket's first state or the change it was pushed: both show the holder.
    expect((await watch.next()).value).toMatchObject({ held: true, holders: [{ owner: "while-away" }] });
    await watch.return();
    await expect.poll(() => openSockets(name)).toBe(0);
  });

  it("ends with the signal's reason when it aborts", async () => {
    const controller = new AbortController();
    const watch = client.watch(lockName("cs-watch-abort"), { signal: controller.signal });
    await watch.next();
    controller.abort(new Error("enough"));
    await expect(watch.next()).rejects.toThrow("enough");
    expect(await watch.next()).toEqual({ value: undefined, done: true });
  });
});
