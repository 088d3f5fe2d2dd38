/**
 * The client library against the real Worker and lock objects inside the Workers runtime: every request
 * goes through the injected `fetch` to the Worker's own entry point. No part of the server is mocked.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  EdgelockClient,
  FencedWriteError,
  fencedWrite,
  isEdgelockError,
  LeaseLostError,
  LockHeldError,
  ReadWriteLock,
  Semaphore,
  ServiceError,
  ValidationError,
} from "../../client/src/index.ts";

const client = new EdgelockClient({
  url: "https://edgelock.test",
  fetch: (input, init) => exports.default.fetch(input, init),
  owner: "runtime-test",
});

let counter = 0;
function lockName(label: string): string {
  counter += 1;
  return `client-${label}-${counter}-${Date.now()}`;
}

describe("EdgelockClient in the Workers runtime", () => {
  it("acquires, renews and releases a lease with a fencing token", async () => {
    const name = lockName("basic");
    const lease = await client.acquire(name, { ttl: "10s" });
    expect(lease.name).toBe(name);
    expect(lease.token).toBeGreaterThan(0);
    expect(lease.owner).toBe("runtime-test");
    expect(lease.held).toBe(true);
    expect(lease.deadline).toBeLessThan(Date.now() + 10_000);

    await lease.renew({ ttl: "20s" });
    expect(lease.ttlMs).toBe(20_000);

    expect(await lease.release()).toMatchObject({ released: true });
    expect((await client.status(name)).held).toBe(false);
    // A second release is answered from the first one, not sent again.
    expect(await lease.release()).toMatchObject({ released: true });
  });

  it("keeps a lease granted after a wait longer than its TTL (the deadline counts from the grant)", async () => {
    const name = lockName("long-wait");
    const holder = await client.acquire(name, { ttl: "10s" });
    const waiting = client.acquire(name, { ttl: 300, wait: "10s" });
    await new Promise((r) => setTimeout(r, 600));
    await holder.release();
    const lease = await waiting;
    expect(lease.held).toBe(true);
    expect(lease.lost).toBeNull();
    expect(lease.signal.aborted).toBe(false);
    expect(lease.deadline).toBeGreaterThan(Date.now());
    await lease.release();
  });

  it("never puts a retried acquire's deadline after the lease's real expiry", async () => {
    const name = lockName("retry-deadline");
    let dropped = false;
    const lossy = new EdgelockClient({
      url: "https://edgelock.test",
      retry: { retries: 3, minDelayMs: 1, maxDelayMs: 1 },
      fetch: async (input, init) => {
        const res = await exports.default.fetch(input, init);
        if (!dropped && String(input).endsWith("/acquire")) {
          // The server granted; the answer is lost, and the retry goes out 300 ms after the grant.
          dropped = true;
          await new Promise((r) => setTimeout(r, 300));
          throw new TypeError("connection reset");
        }
        return res;
      },
    });
    const lease = await lossy.acquire(name, { ttl: "10s" });
    expect(dropped).toBe(true);
    expect(lease.token).toBe(1);
    // Same machine, same clock: the client's deadline must not be later than the server's expiry.
    expect(lease.deadline).toBeLessThanOrEqual(lease.expiresAt);
    await lease.release();
  });

  it("refuses a second holder with LockHeldError carrying retryAfterMs and the holder", async () => {
    const name = lockName("held");
    const first = await client.acquire(name, { ttl: "10s", owner: "first" });
    const error = await client.acquire(name, { ttl: "10s", wait: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockHeldError);
    const held = error as LockHeldError;
    expect(held.code).toBe("lock_held");
    expect(held.status).toBe(409);
    expect(held.retryAfterMs).toBeGreaterThan(0);
    expect(held.holder).toMatchObject({ owner: "first", token: first.token });
    expect(isEdgelockError(held)).toBe(true);
    await first.release();
  });

  it("hands the lock to a waiter when the holder releases", async () => {
    const name = lockName("wait");
    const first = await client.acquire(name, { ttl: "10s" });
    const waiting = client.acquire(name, { ttl: "10s", wait: "5s" });
    // The waiter is parked on the server before the release (status shows it), so this is a real handoff.
    await expect.poll(async () => (await client.status(name)).waiters).toBe(1);
    await first.release();
    const second = await waiting;
    expect(second.token).toBe(first.token + 1);
    await second.release();
  });

  it("releases on scope exit with await using", async () => {
    const name = lockName("using");
    {
      await using lease = await client.acquire(name, { ttl: "10s" });
      expect((await client.status(name)).holders[0]?.token).toBe(lease.token);
    }
    expect((await client.status(name)).held).toBe(false);
  });

  it("withLock returns fn's result and releases afterwards", async () => {
    const name = lockName("with");
    const result = await client.withLock(name, async (lease) => {
      expect((await client.status(name)).holders[0]?.token).toBe(lease.token);
      return "done";
    });
    expect(result).toBe("done");
    expect((await client.status(name)).held).toBe(false);
  });

  it("withLock releases when fn throws and rethrows fn's error", async () => {
    const name = lockName("throws");
    const boom = new Error("boom");
    await expect(
      client.withLock(name, () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect((await client.status(name)).held).toBe(false);
  });

  it("marks the lease lost and fires its signal when renew says not_held", async () => {
    const name = lockName("lost");
    const lease = await client.acquire(name, { ttl: "10s" });
    // Someone with the leaseId (here: the test) releases it behind the lease's back.
    await exports.default.fetch(`https://edgelock.test/v1/locks/${name}/release`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ leaseId: lease.leaseId }),
    });
    const error = await lease.renew().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseLostError);
    expect((error as LeaseLostError).reason).toBe("released");
    expect(lease.signal.aborted).toBe(true);
    expect(lease.signal.reason).toBe(error);
    expect(lease.lost).toBe(error);
    expect(lease.held).toBe(false);
  });

  it("maps server validation problems to ValidationError with the server's code", async () => {
    const error = await client.acquire(lockName("invalid"), { ttl: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe("invalid_ttl");
    expect((error as ValidationError).status).toBe(400);
  });

  it("refuses bad arguments before sending anything", async () => {
    await expect(client.acquire("bad name!")).rejects.toMatchObject({ code: "invalid_name" });
    await expect(client.acquire(lockName("dur"), { ttl: "5 parsecs" as "5s" })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });

  it("maps answers that are not the API to ServiceError without retrying 4xx", async () => {
    let calls = 0;
    const broken = new EdgelockClient({
      url: "https://edgelock.test",
      fetch: async () => {
        calls += 1;
        return new Response("<html>teapot</html>", { status: 418 });
      },
    });
    const error = await broken.acquire(lockName("teapot")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceError);
    expect(calls).toBe(1);
  });

  it("runs a semaphore with limit and permits", async () => {
    const pool = new Semaphore(client, lockName("sem"), 3);
    const a = await pool.acquire(2, { ttl: "10s" });
    const b = await pool.acquire(1, { ttl: "10s" });
    await expect(pool.acquire(1, { ttl: "10s" })).rejects.toBeInstanceOf(LockHeldError);
    expect((await client.status(pool.name)).permitsInUse).toBe(3);
    await a.release();
    await b.release();
  });

  it("lets readers share a read-write lock and keeps the writer out", async () => {
    const rw = new ReadWriteLock(client, lockName("rw"));
    const r1 = await rw.read({ ttl: "10s" });
    const r2 = await rw.read({ ttl: "10s" });
    await expect(rw.write({ ttl: "10s" })).rejects.toBeInstanceOf(LockHeldError);
    await r1.release();
    await r2.release();
    const value = await rw.withWrite(async (lease) => lease.mode);
    expect(value).toBe("exclusive");
  });

  it("fencedWrite refuses a write whose token is older than the stored fence", async () => {
    const stored = { fence: 0, value: "" };
    const write = (value: string) => (token: number) => {
      if (stored.fence > token) return 0;
      stored.fence = token;
      stored.value = value;
      return 1;
    };
    const name = lockName("fence");
    const old = await client.acquire(name, { ttl: "10s" });
    await old.release();
    const current = await client.acquire(name, { ttl: "10s" });
    await fencedWrite(current.token, write("new"));
    await expect(fencedWrite(old.token, write("stale"))).rejects.toBeInstanceOf(FencedWriteError);
    expect(stored).toEqual({ fence: current.token, value: "new" });
    await current.release();
  });
});
