/**
 * The client library from Node against `wrangler dev` over real HTTP: renewal past several TTLs, lost
 * leases, `await using`, cancelled waits, long waits past one request's cap, retries after a lost answer,
 * and the caller's deadline. Faults are injected only in the client's transport (a wrapped `fetch`);
 * the service is the real one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EdgelockClient,
  type FetchLike,
  type Lease,
  LeaseLostError,
  LockHeldError,
  MAX_WAIT_MS,
} from "../../client/src/index.ts";
import { NO_AUTH, rawRelease, rawStatus, uniqueName } from "./helpers/lock-http.ts";
import { type DevServer, startWranglerDev } from "./helpers/wrangler-dev.ts";

let dev: DevServer;
beforeAll(async () => {
  dev = await startWranglerDev({ vars: NO_AUTH });
});
afterAll(async () => {
  await dev?.stop();
});

const realFetch: FetchLike = (input, init) => fetch(input, init);
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
function makeClient(fetchImpl: FetchLike = realFetch, owner = "e2e"): EdgelockClient {
  return new EdgelockClient({ url: dev.url, fetch: fetchImpl, owner });
}
/** A withLock body that never finishes on its own: it rejects with the loss when the lease's signal fires. */
function untilLost(lease: Lease, onLost: (reason: unknown) => void): Promise<never> {
  return new Promise((_, reject) => {
    lease.signal.addEventListener("abort", () => {
      onLost(lease.signal.reason);
      reject(lease.signal.reason);
    });
  });
}
function isAction(input: string, action: string): boolean {
  return new URL(input).pathname.endsWith(`/${action}`);
}

describe("client against wrangler dev", () => {
  it("withLock renews past several TTLs and nobody else gets the lock meanwhile", async () => {
    const name = uniqueName("renew");
    let renewals = 0;
    const counting = makeClient((input, init) => {
      if (isAction(input, "renew")) renewals += 1;
      return fetch(input, init);
    });
    const other = makeClient(realFetch, "other");
    const refusals: string[] = [];
    const token = await counting.withLock(
      name,
      async (lease) => {
        const until = Date.now() + 3_500;
        while (Date.now() < until) {
          const error = await other.acquire(name, { ttl: "1s", wait: 0 }).catch((e: unknown) => e);
          refusals.push(error instanceof LockHeldError ? "held" : `got ${String(error)}`);
          await delay(250);
        }
        expect(lease.lost).toBeNull();
        expect(lease.signal.aborted).toBe(false);
        return lease.token;
      },
      { ttl: "1s" },
    );
    expect(refusals.length).toBeGreaterThan(5);
    expect(new Set(refusals)).toEqual(new Set(["held"]));
    expect(renewals).toBeGreaterThanOrEqual(3);
    const view = await rawStatus(dev.url, name);
    expect(view).toMatchObject({ held: false, lastToken: token });
  });

  it("fires the lease's signal when renewals fail until the deadline", async () => {
    const name = uniqueName("lost-net");
    const failingRenew = makeClient((input, init) =>
      isAction(input, "renew") ? Promise.reject(new TypeError("fetch failed")) : fetch(input, init),
    );
    let seen: unknown;
    const outcome = await failingRenew
      .withLock(
        name,
        (lease) =>
          untilLost(lease, (reason) => {
            seen = reason;
          }),
        { ttl: "1s" },
      )
      .catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(LeaseLostError);
    expect(outcome).toBe(seen);
    expect(outcome).toMatchObject({ code: "lease_expired", reason: "expired" });
  });

  it("fires the lease's signal with the server's reason when the lease is released behind its back", async () => {
    const name = uniqueName("lost-server");
    const client = makeClient();
    const outcome = await client
      .withLock(
        name,
        async (lease) => {
          expect((await rawRelease(dev.url, name, lease.leaseId)).status).toBe(200);
          await new Promise((resolve) => lease.signal.addEventListener("abort", resolve));
          return "finished after the loss";
        },
        { ttl: "1s" },
      )
      .catch((e: unknown) => e);
    // fn resolved, but its work may have overlapped another holder's: withLock reports the loss.
    expect(outcome).toBeInstanceOf(LeaseLostError);
    expect(outcome).toMatchObject({ code: "not_held", reason: "released" });
  });

  it("releases on scope exit with await using, so the next acquirer gets the lock at once", async () => {
    const name = uniqueName("using");
    const client = makeClient();
    let token = 0;
    {
      await using lease = await client.acquire(name, { ttl: "30s" });
      token = lease.token;
      expect((await rawStatus(dev.url, name)).held).toBe(true);
    }
    expect((await rawStatus(dev.url, name)).held).toBe(false);
    const next = await client.acquire(name, { ttl: "30s", wait: 0 });
    expect(next.token).toBe(token + 1);
    await next.release();
  });

  it("an aborted wait leaves the queue, so a later acquirer is not held up by it", async () => {
    const name = uniqueName("abort");
    const client = makeClient();
    const holder = await client.acquire(name, { ttl: "30s" });
    const controller = new AbortController();
    const waiting = client.acquire(name, { ttl: "30s", wait: "20s", signal: controller.signal });
    await expect.poll(async () => (await rawStatus(dev.url, name)).waiters).toBe(1);
    controller.abort(new Error("no longer needed"));
    await expect(waiting).rejects.toThrow("no longer needed");
    expect((await rawStatus(dev.url, name)).waiters).toBe(0);
    await holder.release();
    // With the aborted waiter still queued, FIFO order would refuse this `wait: 0` acquire.
    const later = await client.acquire(name, { ttl: "30s", wait: 0 });
    expect(later.token).toBe(holder.token + 1);
    await later.release();
  });

  it("retries an acquire whose answer was lost and gets the one lease it was granted", async () => {
    const name = uniqueName("retry");
    let acquires = 0;
    const dropping = makeClient(async (input, init) => {
      if (!isAction(input, "acquire")) return fetch(input, init);
      acquires += 1;
      const response = await fetch(input, init);
      if (acquires === 1) {
        await response.arrayBuffer();
        throw new TypeError("connection reset after the server answered");
      }
      return response;
    });
    const lease = await dropping.acquire(name, { ttl: "30s" });
    expect(acquires).toBe(2);
    const view = await rawStatus(dev.url, name);
    expect(view.lastToken).toBe(1);
    expect(view.holders).toEqual([expect.objectContaining({ token: lease.token })]);
    expect(lease.token).toBe(1);
    await lease.release();
  });

  it("fires the signal before the caller's deadline instead of overrunning it", async () => {
    const name = uniqueName("deadline");
    const client = makeClient();
    const deadline = Date.now() + 1_500;
    let firedAt = 0;
    const outcome = await client
      .withLock(
        name,
        (lease) =>
          untilLost(lease, () => {
            firedAt = Date.now();
          }),
        { ttl: "1s", deadline },
      )
      .catch((e: unknown) => e);
    expect(outcome).toMatchObject({ code: "deadline", reason: "deadline" });
    expect(firedAt).toBeGreaterThan(0);
    expect(firedAt).toBeLessThan(deadline);
    expect((await rawStatus(dev.url, name)).held).toBe(false);
  });

  it(
    "waits past one request's cap by re-polling with the same leaseId",
    async () => {
      const name = uniqueName("long-wait");
      const client = makeClient();
      let acquires = 0;
      const bodies: { waitMs?: number; repoll?: boolean; leaseId?: string }[] = [];
      const counting = makeClient((input, init) => {
        if (isAction(input, "acquire")) {
          acquires += 1;
          bodies.push(JSON.parse(String(init.body)));
        }
        return fetch(input, init);
      });
      const holder = await client.acquire(name, { ttl: "60s" });
      const waiting = counting.acquire(name, { ttl: "10s", wait: MAX_WAIT_MS + 20_000 });
      // Release only once the first request's wait has run out, so the grant needs the re-poll.
      await expect.poll(() => acquires, { timeout: MAX_WAIT_MS + 5_000, interval: 200 }).toBe(2);
      await holder.release();
      const lease = await waiting;
      expect(lease.token).toBe(holder.token + 1);
      // Every request after which the client re-polls promised it; the last one (its wait reaches the
      // end of the budget) did not. All carried the same leaseId.
      expect(bodies).toHaveLength(2);
      expect(bodies[0]).toMatchObject({ waitMs: MAX_WAIT_MS, repoll: true });
      expect(bodies[1]).not.toHaveProperty("repoll");
      expect(new Set(bodies.map((b) => b.leaseId)).size).toBe(1);
      await lease.release();
    },
    MAX_WAIT_MS + 60_000,
  );
});
