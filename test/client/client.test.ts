/**
 * The client library against the real Worker and lock objects inside the Workers runtime: every request
 * goes through the injected `fetch` to the Worker's own entry point. No part of the server is mocked.
 */
import { describe, expect, it } from "vitest";
import {
  EdgelockClient,
  FencedWriteError,
  type FetchLike,
  fencedWrite,
  isEdgelockError,
  LeaseLostError,
  LockHeldError,
  ReadWriteLock,
  Semaphore,
  ServiceError,
  ValidationError,
} from "../../client/src/index.ts";
import { workerClient, workerFetch } from "../helpers/client.ts";

const client = workerClient({ owner: "runtime-test" });

/** A client whose requests are recorded (action and body) on their way to the real Worker. */
function recordingClient(options: { owner?: string; holderKey?: string; fetch?: FetchLike } = {}) {
  const sent: { action: string; body: Record<string, unknown> }[] = [];
  const recording = workerClient({
    owner: options.owner,
    holderKey: options.holderKey,
    fetch: (input, init) => {
      const action = new URL(input).pathname.split("/")[4] ?? "inspect";
      sent.push({ action, body: typeof init.body === "string" ? JSON.parse(init.body) : {} });
      return (options.fetch ?? workerFetch)(input, init);
    },
  });
  return { client: recording, sent };
}

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
    const lossy = workerClient({
      retry: { retries: 3, minDelayMs: 1, maxDelayMs: 1 },
      fetch: async (input, init) => {
        const res = await workerFetch(input, init);
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
    await workerFetch(`https://edgelock.test/v1/locks/${name}/release`, {
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

  it("refuses options without a service URL or binding with a ValidationError, not a TypeError", () => {
    expect(() => new EdgelockClient({ url: undefined })).toThrow(ValidationError);
    expect(() => new EdgelockClient({ url: "locks.example.com" })).toThrow(/options.url/);
    expect(() => new EdgelockClient(undefined as unknown as { url: string })).toThrow(ValidationError);
    expect(() => new EdgelockClient({ url: "https://x", holderKey: "short" })).toThrow(/holderKey/);
  });

  it("retries a restarting lock object (unavailable) but not the server's own bug (internal)", async () => {
    const name = lockName("retry-codes");
    const answers = { unavailable: 0, internal: 0 };
    const failingOnce = (code: "unavailable" | "internal", status: number): EdgelockClient =>
      workerClient({
        retry: { retries: 2, minDelayMs: 1, maxDelayMs: 1 },
        fetch: async (input, init) => {
          answers[code] += 1;
          if (answers[code] > 1) return workerFetch(input, init);
          const body = { type: "t", title: code, status, detail: code, code };
          return Response.json(body, { status, headers: { "content-type": "application/problem+json" } });
        },
      });
    const lease = await failingOnce("unavailable", 503).acquire(name, { ttl: "10s" });
    expect(answers.unavailable).toBe(2);
    await lease.release();
    await expect(failingOnce("internal", 500).acquire(name, { ttl: "10s" })).rejects.toMatchObject({
      code: "internal",
    });
    expect(answers.internal).toBe(1);
  });

  it("sends a holderKey with reentrant acquires only, and re-enters with it", async () => {
    const name = lockName("reentrant");
    const { client: reentrant, sent } = recordingClient({ owner: "re", holderKey: "holder-key-of-test-1" });
    const first = await reentrant.acquire(name, { ttl: "10s", reentrant: true });
    const second = await reentrant.acquire(name, { ttl: "10s", reentrant: true });
    expect(second.token).toBe(first.token);
    expect(second.holdCount).toBe(2);
    const acquires = sent.filter((r) => r.action === "acquire").map((r) => r.body);
    expect(acquires).toEqual([
      expect.objectContaining({ reentrant: true, holderKey: "holder-key-of-test-1" }),
      expect.objectContaining({ reentrant: true, holderKey: "holder-key-of-test-1" }),
    ]);
    // Another client (another random holderKey) is another holder: it does not re-enter.
    const other = workerClient();
    await expect(other.acquire(name, { ttl: "10s", reentrant: true })).rejects.toBeInstanceOf(LockHeldError);
    const plain = await reentrant.acquire(lockName("plain"), { ttl: "10s" });
    expect(sent.at(-1)?.body).not.toHaveProperty("holderKey");
    await plain.release();
    await second.release();
    await first.release();
    expect((await client.status(name)).held).toBe(false);
  });

  it("never lets rw.write() run under the shared lease its holder already has", async () => {
    const rw = new ReadWriteLock(workerClient({ owner: "rw" }), lockName("rw-reentrant"));
    const read = await rw.read({ ttl: "10s", reentrant: true });
    let wrote = false;
    const error = await rw
      .withWrite(
        () => {
          wrote = true;
        },
        { reentrant: true },
      )
      .catch((e: unknown) => e);
    expect(wrote).toBe(false);
    expect(error).toBeInstanceOf(ValidationError);
    // The client's own check (grant_mismatch), or the server's refusal (reentrant_mismatch).
    expect(["grant_mismatch", "reentrant_mismatch"]).toContain((error as ValidationError).code);
    // Whatever hold the write added was given back: the reader's single hold remains.
    expect((await client.status(rw.name)).holders).toEqual([
      expect.objectContaining({ token: read.token, mode: "shared", holdCount: 1 }),
    ]);
    await read.release();
  });

  it("refuses a grant of another mode than asked, and releases the hold it added", async () => {
    const name = lockName("mismatch");
    // The transport sees a shared lease where the server granted an exclusive one.
    const { client: lying } = recordingClient({
      fetch: async (input, init) => {
        const res = await workerFetch(input, init);
        if (!input.endsWith("/acquire") || res.status !== 200) return res;
        return Response.json({ ...(await res.json<object>()), mode: "shared" });
      },
    });
    const error = await lying.acquire(name, { ttl: "10s" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: "ValidationError", code: "grant_mismatch" });
    expect((error as Error).message).toMatch(/exclusive.*shared/);
    const view = await client.status(name);
    expect(view).toMatchObject({ held: false, lastToken: 1 });
  });

  it("sends the cancel of an aborted wait from the abort itself, before the holder's release", async () => {
    const name = lockName("cancel");
    const holder = await client.acquire(name, { ttl: "10s" });
    const { client: waiter, sent } = recordingClient();
    const controller = new AbortController();
    const waiting = waiter.acquire(name, { ttl: "10s", wait: "5s", signal: controller.signal });
    await expect.poll(async () => (await client.status(name)).waiters).toBe(1);
    controller.abort(new Error("changed my mind"));
    // Already on its way when abort() returns: not after the aborted request has failed, by when the
    // holder's release (next line) could have handed the lock to a waiter nobody waits for (issue 13).
    expect(sent.map((r) => r.action)).toEqual(["acquire", "release"]);
    const released = holder.release();
    await expect(waiting).rejects.toThrow("changed my mind");
    await released;
    // Cancelled before the release, or granted and given back at once: either way nobody holds it.
    expect(await client.status(name)).toMatchObject({ held: false, waiters: 0 });
    expect(sent.filter((r) => r.action === "release")).toHaveLength(1);
  });

  it("sends no repoll on a wait that one request covers", async () => {
    const name = lockName("no-repoll");
    const { client: recorded, sent } = recordingClient();
    const lease = await recorded.acquire(name, { ttl: "10s", wait: "5s" });
    expect(sent[0]?.body).toMatchObject({ waitMs: 5_000 });
    expect(sent[0]?.body).not.toHaveProperty("repoll");
    await lease.release();
  });

  describe("withLocks", () => {
    it("acquires in sorted order, hands leases back in the caller's order, releases in reverse", async () => {
      const [a, b, c] = ["a", "b", "c"].map((x) => `${lockName("multi")}-${x}`) as [string, string, string];
      const { client: recorded, sent } = recordingClient();
      const tokens = await recorded.withLocks([c, a, b], async (leases, signal) => {
        expect(leases.map((l) => l.name)).toEqual([c, a, b]);
        expect(signal.aborted).toBe(false);
        for (const name of [a, b, c]) expect((await client.status(name)).held).toBe(true);
        return leases.map((l) => l.token);
      });
      expect(tokens).toHaveLength(3);
      const order = (action: string) =>
        sent.filter((r) => r.action === action).map((r) => r.body.leaseId as string);
      const acquired = order("acquire");
      expect(acquired).toHaveLength(3);
      expect(order("release")).toEqual([...acquired].reverse());
      for (const name of [a, b, c]) expect((await client.status(name)).held).toBe(false);
    });

    it("is all or nothing: a lock it cannot get in time releases the ones it took", async () => {
      const [a, b, c] = ["a", "b", "c"].map((x) => `${lockName("all")}-${x}`) as [string, string, string];
      const blocker = await client.acquire(b, { ttl: "10s", owner: "blocker" });
      let ran = false;
      const error = await client
        .withLocks(
          [c, b, a],
          () => {
            ran = true;
          },
          { wait: 300 },
        )
        .catch((e: unknown) => e);
      expect(ran).toBe(false);
      expect(error).toBeInstanceOf(LockHeldError);
      expect((await client.status(a)).held).toBe(false);
      // Sorted order: c comes after b, so it was never taken.
      expect((await client.status(c)).lastToken).toBe(0);
      await blocker.release();
    });

    it("never deadlocks two callers that name the same locks in opposite orders", async () => {
      const [a, b] = ["a", "b"].map((x) => `${lockName("dl")}-${x}`) as [string, string];
      const inside: string[] = [];
      const work = (who: string) => async () => {
        inside.push(`${who} in`);
        await new Promise((r) => setTimeout(r, 50));
        inside.push(`${who} out`);
      };
      await Promise.all([
        client.withLocks([a, b], work("first"), { ttl: "10s", wait: "5s" }),
        client.withLocks([b, a], work("second"), { ttl: "10s", wait: "5s" }),
      ]);
      expect(inside).toHaveLength(4);
      expect(inside[1]).toBe(inside[0]?.replace("in", "out"));
    });

    it("aborts fn's signal when one lease is lost, releases the others and rejects with the loss", async () => {
      const [a, b] = ["a", "b"].map((x) => `${lockName("lost")}-${x}`) as [string, string];
      const error = await client
        .withLocks(
          [a, b],
          async ([, second], signal) => {
            await workerFetch(`https://edgelock.test/v1/locks/${b}/release`, {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ leaseId: second?.leaseId }),
            });
            await new Promise((resolve) => signal.addEventListener("abort", resolve));
            return "done";
          },
          { ttl: 600 },
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseLostError);
      expect(error).toMatchObject({ reason: "released" });
      expect((await client.status(a)).held).toBe(false);
    });

    it("refuses an empty list and a name given twice", async () => {
      await expect(client.withLocks([], () => 1)).rejects.toBeInstanceOf(ValidationError);
      await expect(client.withLocks(["x1", "x1"], () => 1)).rejects.toThrow(/listed twice/);
    });
  });
});
