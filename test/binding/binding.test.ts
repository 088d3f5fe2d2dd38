/**
 * edgelock used from another Worker through a service binding, in workerd: the caller Worker (the Worker
 * under test, caller-worker.ts) drives `withLock` end to end over the `EdgelockRpc` entrypoint and over
 * HTTP; raw RPC calls get the same validation, authorization and answers as the HTTP routes.
 */
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EdgelockClient, LeaseLostError, LockHeldError } from "../../client/src/index.ts";
import type { EdgelockRpc } from "../../worker/rpc.ts";
import { type CallerEnv, clientFor } from "./caller-worker.ts";
import { BINDING_KEYS } from "./keys.ts";

const caller = env as unknown as CallerEnv;
const rpc = clientFor(caller, "rpc");

let counter = 0;
function lockName(tag: string): string {
  counter += 1;
  return `bound:${tag}-${counter}-${crypto.randomUUID().slice(0, 8)}`;
}

async function job(lock: string, via: "rpc" | "http" = "rpc") {
  const res = await exports.default.fetch(`https://caller/job?lock=${lock}&via=${via}`, { method: "POST" });
  expect(res.status).toBe(200);
  return res.json<{ token: number; heldDuringJob: boolean; holderToken: number; heldAfterJob: boolean }>();
}

/** The problem body the HTTP route answers for the same request, through the HTTP binding. */
async function overHttp(path: string, body: unknown, key: string = BINDING_KEYS.write) {
  const res = await caller.EDGELOCK_HTTP.fetch(`https://edgelock${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return res.json();
}

describe("a Worker bound to edgelock", () => {
  it("runs a job under withLock over the RPC entrypoint", async () => {
    const lock = lockName("job");
    expect(await job(lock)).toEqual({ token: 1, heldDuringJob: true, holderToken: 1, heldAfterJob: false });
    expect(await job(lock)).toMatchObject({ token: 2, heldAfterJob: false });
  });

  it("runs the same job over the HTTP binding", async () => {
    expect(await job(lockName("http"), "http")).toEqual({
      token: 1,
      heldDuringJob: true,
      holderToken: 1,
      heldAfterJob: false,
    });
  });

  it("serializes concurrent jobs: the second waits for the first", async () => {
    const lock = lockName("queue");
    const results = await Promise.all([job(lock), job(lock), job(lock, "http")]);
    expect(results.map((r) => r.token).sort()).toEqual([1, 2, 3]);
    // Each job saw itself as the holder (the next one may hold the lock by the time it looks again).
    for (const r of results) expect(r).toMatchObject({ heldDuringJob: true, holderToken: r.token });
  });

  it("renews over RPC while the work outlives the TTL", async () => {
    const lock = lockName("renew");
    const other = new EdgelockClient({ binding: caller.EDGELOCK, apiKey: BINDING_KEYS.write });
    const token = await rpc.withLock(
      lock,
      async (lease) => {
        await new Promise((r) => setTimeout(r, 1_200));
        await expect(other.acquire(lock)).rejects.toBeInstanceOf(LockHeldError);
        expect(lease.lost).toBeNull();
        return lease.token;
      },
      { ttl: 500 },
    );
    expect((await rpc.status(lock)).lastToken).toBe(token);
  });

  it("reports a lease lost over RPC when it is released behind the holder's back", async () => {
    const lock = lockName("lost");
    const lease = await rpc.acquire(lock, { ttl: "5s" });
    expect(
      await caller.EDGELOCK.release({
        name: lock,
        apiKey: BINDING_KEYS.write,
        request: { leaseId: lease.leaseId },
      }),
    ).toEqual({
      ok: true,
      value: { released: true, holdCount: 0 },
    });
    const error = await lease.renew().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(error).toMatchObject({ code: "not_held", reason: "released" });
  });

  it("refuses what the HTTP route refuses, with the same problem", async () => {
    const lock = lockName("bad");
    const bad = { ttlMs: 5, color: "red" };
    const answer = await caller.EDGELOCK.acquire({
      name: lock,
      apiKey: BINDING_KEYS.write,
      request: bad as never,
    });
    expect(answer).toEqual({ ok: false, problem: await overHttp(`/v1/locks/${lock}/acquire`, bad) });
    expect(answer).toMatchObject({ problem: { code: "invalid_body", status: 400 } });
    const short = await caller.EDGELOCK.acquire({
      name: lock,
      apiKey: BINDING_KEYS.write,
      request: { ttlMs: 5 },
    });
    expect(short).toMatchObject({ ok: false, problem: { code: "invalid_ttl", status: 400 } });
    const noName = await caller.EDGELOCK.inspect({ name: "no spaces", apiKey: BINDING_KEYS.write });
    expect(noName).toMatchObject({ ok: false, problem: { code: "invalid_name" } });
  });

  it("authorizes every call by its API key, as over HTTP", async () => {
    const lock = lockName("auth");
    const request = { ttlMs: 5_000 };
    expect(await caller.EDGELOCK.acquire({ name: lock, request })).toMatchObject({
      ok: false,
      problem: { code: "unauthorized", status: 401 },
    });
    expect(
      await caller.EDGELOCK.acquire({ name: lock, apiKey: "elk_not_a_known_key_000000000", request }),
    ).toMatchObject({
      ok: false,
      problem: { code: "unauthorized" },
    });
    const readOnly = { name: lock, apiKey: BINDING_KEYS.read, request };
    const refused = await caller.EDGELOCK.acquire(readOnly);
    expect(refused).toEqual({
      ok: false,
      problem: await overHttp(`/v1/locks/${lock}/acquire`, request, BINDING_KEYS.read),
    });
    expect(refused).toMatchObject({ problem: { code: "forbidden", status: 403 } });
    expect(await caller.EDGELOCK.inspect({ name: lock, apiKey: BINDING_KEYS.read })).toMatchObject({
      ok: true,
      value: { name: lock, held: false },
    });
    const outside = { name: "elsewhere:x", apiKey: BINDING_KEYS.write, request };
    expect(await caller.EDGELOCK.acquire(outside)).toMatchObject({
      ok: false,
      problem: { code: "forbidden_scope", status: 403 },
    });
  });

  it("gives the client typed errors over RPC: a held lock names its holder", async () => {
    const lock = lockName("held");
    const owner = new EdgelockClient({
      binding: caller.EDGELOCK,
      apiKey: BINDING_KEYS.write,
      owner: "first",
    });
    const lease = await owner.acquire(lock, { ttl: "5s" });
    const error = await rpc.acquire(lock).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockHeldError);
    expect(error).toMatchObject({
      code: "lock_held",
      status: 409,
      holder: { owner: "first", token: lease.token },
    });
    await lease.release();
  });

  it("accepts the binding's own type", () => {
    const typed = caller.EDGELOCK as unknown as Service<EdgelockRpc>;
    expect(new EdgelockClient({ binding: typed, apiKey: BINDING_KEYS.write })).toBeInstanceOf(EdgelockClient);
  });
});
