import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Lease, LockView } from "../client/src/protocol.ts";
import { callAs, envWith, KEYS, type KeyName, keysConfig } from "./helpers/auth.ts";
import { leaseId, lockName } from "./helpers/names.ts";

type Route = { action: string; method: "GET" | "POST"; body: (id: string) => unknown };
const ROUTES: Route[] = [
  { action: "acquire", method: "POST", body: (id) => ({ ttlMs: 60_000, leaseId: id }) },
  { action: "renew", method: "POST", body: (id) => ({ leaseId: id }) },
  { action: "release", method: "POST", body: (id) => ({ leaseId: id }) },
  { action: "force-release", method: "POST", body: () => undefined },
  { action: "", method: "GET", body: () => undefined },
];

const path = (name: string, action: string) => `/v1/locks/${name}${action === "" ? "" : `/${action}`}`;

async function acquire(name: string, key: KeyName, extra: Record<string, unknown> = {}): Promise<Lease> {
  const res = await callAs(path(name, "acquire"), {
    key,
    body: { ttlMs: 60_000, leaseId: leaseId("h"), ...extra },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json<Lease>();
}

async function inspect(name: string): Promise<LockView> {
  const res = await callAs(path(name, ""), { key: "admin" });
  expect(res.status).toBe(200);
  return res.json<LockView>();
}

async function expectProblem(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code });
  return body;
}

/** Sends one route's request; for renew and release the body names the real holder's leaseId. */
function send(
  route: Route,
  name: string,
  holderLeaseId: string,
  auth: { key?: KeyName; authorization?: string },
) {
  const body = route.body(holderLeaseId);
  return callAs(path(name, route.action), {
    method: route.method,
    ...auth,
    ...(body === undefined ? {} : { body }),
  });
}

describe.each(ROUTES)("$method /v1/locks/{name}/$action refuses before touching the lock", (route) => {
  // A held lock with a waiter: any state change (grant, renew, release, force) would show in inspect.
  async function setUp(prefix: string) {
    const name = lockName(prefix);
    const lease = await acquire(name, "admin");
    const before = await inspect(name);
    return { name, lease, before };
  }

  async function expectUnchanged(name: string, before: LockView) {
    expect(await inspect(name)).toEqual(before);
  }

  it("answers 401 with WWW-Authenticate when no key is sent", async () => {
    const { name, lease, before } = await setUp("billing:");
    const res = await send(route, name, lease.leaseId, {});
    const body = await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="edgelock"');
    expect(body.detail).toContain("Authorization: Bearer");
    await expectUnchanged(name, before);
  });

  it.each([
    ["Basic dXNlcjpwYXNz", "invalid_request"],
    ["Bearer", "invalid_request"],
    ["Bearer ", "invalid_request"],
    [`Bearer ${KEYS.admin} extra`, "invalid_request"],
    [`Bearer ${KEYS.admin}, Bearer ${KEYS.admin}`, "invalid_request"],
    [`Bearer ${"a".repeat(300)}`, "invalid_request"],
    [`Token ${KEYS.admin}`, "invalid_request"],
    // Well-formed, but no key has that hash.
    [`Bearer ${KEYS.admin}x`, "invalid_token"],
    ["Bearer elk_unknown", "invalid_token"],
    [`bearer ${KEYS.admin.slice(1)}`, "invalid_token"],
  ])("answers 401 to the header %j with error=%s", async (authorization, error) => {
    const { name, lease, before } = await setUp("billing:");
    const res = await send(route, name, lease.leaseId, { authorization });
    await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("www-authenticate")).toBe(`Bearer realm="edgelock", error="${error}"`);
    await expectUnchanged(name, before);
  });

  it("answers 403 forbidden_scope to a key scoped to other names, even one that knows the leaseId", async () => {
    const { name, lease, before } = await setUp("payments:");
    for (const key of ["billingWrite", "billingRead", "billingAdmin"] as const) {
      const body = await expectProblem(
        await send(route, name, lease.leaseId, { key }),
        403,
        "forbidden_scope",
      );
      expect(body.detail).toContain('"billing:"');
    }
    await expectUnchanged(name, before);
  });

  it("answers 403 forbidden to a key whose role is too weak", async () => {
    const { name, lease, before } = await setUp("billing:");
    const weak: KeyName[] =
      route.action === "force-release"
        ? ["billingRead", "billingWrite"]
        : route.action === ""
          ? []
          : ["billingRead"];
    for (const key of weak) {
      const body = await expectProblem(await send(route, name, lease.leaseId, { key }), 403, "forbidden");
      expect(body.detail).toMatch(/has role (read|write)/);
    }
    await expectUnchanged(name, before);
  });

  it("checks the key before the lock name: an invalid name without a key is 401, with one 400", async () => {
    await expectProblem(await send(route, "bad name!", "x".repeat(16), {}), 401, "unauthorized");
    await expectProblem(await send(route, "bad*name", "x".repeat(16), { key: "admin" }), 400, "invalid_name");
  });
});

describe("keys within their scope and role", () => {
  it("lets a write key acquire, renew, inspect and release its own locks", async () => {
    const name = lockName("billing:");
    const lease = await acquire(name, "billingWrite");
    const renewed = await callAs(path(name, "renew"), {
      key: "billingWrite",
      body: { leaseId: lease.leaseId },
    });
    expect(renewed.status).toBe(200);
    const view = await callAs(path(name, ""), { key: "billingWrite" });
    expect((await view.json<LockView>()).holders).toHaveLength(1);
    const released = await callAs(path(name, "release"), {
      key: "billingWrite",
      body: { leaseId: lease.leaseId },
    });
    expect(await released.json()).toEqual({ released: true, holdCount: 0 });
  });

  it("lets a read key inspect its own locks", async () => {
    const name = lockName("billing:");
    await acquire(name, "billingWrite", { owner: "job-7" });
    const res = await callAs(path(name, ""), { key: "billingRead" });
    expect(res.status).toBe(200);
    expect((await res.json<LockView>()).holders[0]?.owner).toBe("job-7");
  });

  it("answers with no-store and nosniff, so no cache keeps a lease", async () => {
    const res = await callAs(path(lockName("billing:"), "acquire"), {
      key: "billingWrite",
      body: { ttlMs: 1000 },
    });
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });
});

describe("tenant isolation", () => {
  it("keeps two keys with disjoint prefixes from seeing each other's locks", async () => {
    const suffix = crypto.randomUUID().slice(0, 8);
    const billing = `billing:jobs-${suffix}`;
    const payments = `payments:jobs-${suffix}`;
    await acquire(billing, "billingWrite");
    await acquire(payments, "paymentsWrite");
    await expectProblem(await callAs(path(payments, ""), { key: "billingWrite" }), 403, "forbidden_scope");
    await expectProblem(await callAs(path(billing, ""), { key: "paymentsWrite" }), 403, "forbidden_scope");
    expect(
      (await (await callAs(path(billing, ""), { key: "billingWrite" })).json<LockView>()).lastToken,
    ).toBe(1);
  });

  it("scope-checks the decoded name that the lock object is called with", async () => {
    const name = lockName("payments:");
    await acquire(name, "admin");
    const before = await inspect(name);
    const encoded = encodeURIComponent(name);
    expect(encoded).toContain("%3A");
    await expectProblem(await callAs(path(encoded, ""), { key: "billingWrite" }), 403, "forbidden_scope");
    const sneaky = `billing:..%2F${encoded}`;
    await expectProblem(
      await callAs(path(sneaky, "acquire"), { key: "billingWrite", body: { ttlMs: 1000 } }),
      400,
      "invalid_name",
    );
    // Hono decodes the path once: the admin's encoded request names the same lock.
    expect((await (await callAs(path(encoded, ""), { key: "admin" })).json<LockView>()).lastToken).toBe(
      before.lastToken,
    );
    expect(await inspect(name)).toEqual(before);
  });

  it("matches prefixes exactly: billing: does not cover billing-archive: or BILLING:", async () => {
    for (const name of [lockName("billing-archive:"), lockName("BILLING:"), lockName("billing")]) {
      await expectProblem(await callAs(path(name, ""), { key: "billingRead" }), 403, "forbidden_scope");
    }
  });

  it("lets a key with several prefixes use each of them", async () => {
    await acquire(lockName("payments:"), "paymentsWrite");
    await acquire(lockName("shared."), "paymentsWrite");
    await expectProblem(
      await callAs(path(lockName("shared-"), ""), { key: "paymentsWrite" }),
      403,
      "forbidden_scope",
    );
  });
});

describe("force-release", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("records which admin key did it: in the answer, the log line, and the forced holder's not_held", async () => {
    const log = vi.spyOn(console, "log");
    const name = lockName("billing:");
    const stuck = await acquire(name, "billingWrite", { owner: "stuck" });
    const forced = await callAs(path(name, "force-release"), { method: "POST", key: "billingAdmin" });
    expect(await forced.json()).toEqual({ name, forced: true, count: 1, by: "billing-admin" });
    const audit = log.mock.calls
      .map((args) => JSON.parse(String(args[0])))
      .find((l) => l.event === "force-release");
    expect(audit).toEqual({
      level: "info",
      event: "force-release",
      requestId: forced.headers.get("x-request-id"),
      lock: name,
      by: "billing-admin",
      count: 1,
    });
    const renew = await callAs(path(name, "renew"), {
      key: "billingWrite",
      body: { leaseId: stuck.leaseId },
    });
    expect(await expectProblem(renew, 409, "not_held")).toMatchObject({
      reason: "forced",
      by: "billing-admin",
    });
  });
});

describe("no response shows another holder's leaseId", () => {
  it("holds for every answer a second client can get", async () => {
    const name = lockName("billing:");
    const secret = leaseId("secret");
    await acquire(name, "billingWrite", { leaseId: secret, owner: "a" });
    const other = leaseId("other");
    const answers = await Promise.all([
      callAs(path(name, "acquire"), { key: "billingWrite", body: { ttlMs: 1000, leaseId: other } }),
      callAs(path(name, "acquire"), {
        key: "billingWrite",
        body: { ttlMs: 1000, leaseId: other, waitMs: 50 },
      }),
      callAs(path(name, "renew"), { key: "billingWrite", body: { leaseId: other } }),
      callAs(path(name, "release"), { key: "billingWrite", body: { leaseId: other } }),
      callAs(path(name, ""), { key: "billingRead" }),
      callAs(path(name, ""), { key: "admin" }),
      callAs(path(name, ""), { key: "paymentsWrite" }),
      callAs(path(name, "acquire"), { key: "paymentsWrite", body: { ttlMs: 1000 } }),
    ]);
    for (const res of answers) expect(await res.text()).not.toContain(secret);
    const forced = await callAs(path(name, "force-release"), { method: "POST", key: "admin" });
    expect(await forced.text()).not.toContain(secret);
  });
});

describe("fail closed", () => {
  const entry = (over: Record<string, unknown>) =>
    JSON.stringify([{ name: "a", sha256: "0".repeat(64), role: "admin", prefixes: ["*"], ...over }]);

  it.each([
    ["unset", undefined],
    ["empty", "  "],
    ["not JSON", "elk_a_raw_key"],
    [
      "raw keys instead of hashes",
      JSON.stringify([{ name: "a", sha256: KEYS.admin, role: "admin", prefixes: ["*"] }]),
    ],
    ["an empty list", "[]"],
    ["an entry with no prefixes", entry({ prefixes: [] })],
    ["an unknown role", entry({ role: "root" })],
    ["a prefix with a slash", entry({ prefixes: ["billing/"] })],
    ["the same hash twice", JSON.stringify([JSON.parse(entry({}))[0], JSON.parse(entry({ name: "b" }))[0]])],
  ])("refuses every lock request with 503 when EDGELOCK_KEYS is %s", async (_, keys) => {
    const env = envWith({ EDGELOCK_KEYS: keys });
    const name = lockName("billing:");
    for (const key of [undefined, "admin"] as const) {
      for (const route of ROUTES) {
        const body = route.body(leaseId("x"));
        const res = await callAs(path(name, route.action), {
          method: route.method,
          env,
          ...(key === undefined ? {} : { key }),
          ...(body === undefined ? {} : { body }),
        });
        const problem = await expectProblem(res, 503, "auth_not_configured");
        expect(problem.detail).toContain("EDGELOCK_KEYS");
        expect(problem.detail).toContain("docs/security.md");
        // What exactly is wrong with the secret is for the operator's log, not for any caller.
        expect(problem.detail).not.toMatch(/ at \d|role|prefix|sha256|hash|JSON/);
      }
    }
    expect((await callAs("/healthz", { env })).status).toBe(200);
    expect((await callAs("/openapi.json", { env })).status).toBe(200);
    // Nothing reached the lock object.
    expect((await inspect(name)).lastToken).toBe(0);
  });

  it("says how to set keys up when none are configured", async () => {
    const res = await callAs(path("a", ""), { env: envWith({ EDGELOCK_KEYS: undefined }) });
    const problem = await expectProblem(res, 503, "auth_not_configured");
    expect(problem.detail).toContain("wrangler secret put EDGELOCK_KEYS");
    expect(problem.detail).toContain("npm start");
  });

  it("opens only for EDGELOCK_INSECURE_NO_AUTH=true exactly, and marks every such answer", async () => {
    for (const value of ["1", "yes", "TRUE ", "false", ""]) {
      const env = envWith({ EDGELOCK_KEYS: undefined, EDGELOCK_INSECURE_NO_AUTH: value });
      const res = await callAs(path(lockName("any:"), ""), { env });
      await expectProblem(res, 503, "auth_not_configured");
    }
    const open = envWith({ EDGELOCK_KEYS: await keysConfig(), EDGELOCK_INSECURE_NO_AUTH: "true" });
    const res = await callAs(path(lockName("any:"), "acquire"), { env: open, body: { ttlMs: 1000 } });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-edgelock-auth")).toBe("insecure-no-auth");
  });

  it("is what the test Worker itself runs with: auth off, explicitly, and said so on every answer", async () => {
    const res = await exports.default.fetch(`http://x/v1/locks/${lockName("any:")}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-edgelock-auth")).toBe("insecure-no-auth");
  });
});
