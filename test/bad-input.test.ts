import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { acquire, call, inspect } from "./helpers/api.ts";
import { leaseId, lockName } from "./helpers/names.ts";

const name = lockName("bad-input");
const ok = { ttlMs: 10_000 };

type Case = [label: string, path: string, body: unknown, code: string, status?: number];

const acquirePath = `/v1/locks/${name}/acquire`;
const renewPath = `/v1/locks/${name}/renew`;
const releasePath = `/v1/locks/${name}/release`;

const cases: Case[] = [
  ["malformed JSON", acquirePath, '{"ttlMs":', "malformed_json"],
  ["a JSON array", acquirePath, "[1,2]", "invalid_body"],
  ["JSON null", acquirePath, "null", "invalid_body"],
  ["an unknown field", acquirePath, { ...ok, ttl: 5 }, "invalid_body"],
  ["missing ttlMs", acquirePath, {}, "invalid_ttl"],
  ["ttlMs as a string", acquirePath, { ttlMs: "1000" }, "invalid_ttl"],
  ["ttlMs below the minimum", acquirePath, { ttlMs: 99 }, "invalid_ttl"],
  ["ttlMs above the maximum", acquirePath, { ttlMs: 86_400_001 }, "invalid_ttl"],
  ["fractional ttlMs", acquirePath, { ttlMs: 1000.5 }, "invalid_ttl"],
  ["negative waitMs", acquirePath, { ...ok, waitMs: -1 }, "invalid_wait"],
  ["waitMs above the cap", acquirePath, { ...ok, waitMs: 25_001 }, "invalid_wait"],
  ["an empty owner", acquirePath, { ...ok, owner: "" }, "invalid_owner"],
  ["an oversized owner", acquirePath, { ...ok, owner: "o".repeat(257) }, "invalid_owner"],
  ["an owner with control characters", acquirePath, { ...ok, owner: "a\nb" }, "invalid_owner"],
  ["a numeric owner", acquirePath, { ...ok, owner: 7 }, "invalid_owner"],
  ["a short leaseId", acquirePath, { ...ok, leaseId: "short" }, "invalid_lease_id"],
  ["an oversized leaseId", acquirePath, { ...ok, leaseId: "x".repeat(129) }, "invalid_lease_id"],
  [
    "a leaseId with bad characters",
    acquirePath,
    { ...ok, leaseId: "lease id with spaces!" },
    "invalid_lease_id",
  ],
  ["an unknown mode", acquirePath, { ...ok, mode: "read" }, "invalid_mode"],
  ["shared mode on a semaphore", acquirePath, { ...ok, mode: "shared", limit: 3 }, "invalid_mode"],
  ["limit 0", acquirePath, { ...ok, limit: 0 }, "invalid_limit"],
  ["limit too large", acquirePath, { ...ok, limit: 10_001 }, "invalid_limit"],
  ["permits without a limit", acquirePath, { ...ok, permits: 2 }, "invalid_permits"],
  ["permits 0", acquirePath, { ...ok, permits: 0, limit: 3 }, "invalid_permits"],
  ["permits above the limit", acquirePath, { ...ok, permits: 3, limit: 2 }, "permits_exceed_limit"],
  ["reentrant as a string", acquirePath, { ...ok, reentrant: "yes", owner: "o" }, "invalid_reentrant"],
  [
    "reentrant without a holderKey",
    acquirePath,
    { ...ok, reentrant: true, owner: "o" },
    "holder_key_required",
  ],
  ["a short holderKey", acquirePath, { ...ok, reentrant: true, holderKey: "k" }, "invalid_holder_key"],
  ["repoll as a string", acquirePath, { ...ok, repoll: "yes" }, "invalid_repoll"],
  ["lockDelayMs above the maximum", acquirePath, { ...ok, lockDelayMs: 60_001 }, "invalid_lock_delay"],
  ["renew without a leaseId", renewPath, {}, "invalid_lease_id"],
  ["renew with a bad ttlMs", renewPath, { leaseId: leaseId(), ttlMs: 0 }, "invalid_ttl"],
  ["renew with a bad mode", renewPath, { leaseId: leaseId(), mode: "both" }, "invalid_mode"],
  ["release without a leaseId", releasePath, {}, "invalid_lease_id"],
  ["release with an unknown field", releasePath, { leaseId: leaseId(), force: true }, "invalid_body"],
  ["a name with a space", "/v1/locks/a%20b/acquire", ok, "invalid_name"],
  ["a name with a slash", "/v1/locks/a%2Fb/acquire", ok, "invalid_name"],
  ["a name with non-ASCII letters", "/v1/locks/%C3%BC/acquire", ok, "invalid_name"],
  ["a name of 201 characters", `/v1/locks/${"n".repeat(201)}/acquire`, ok, "invalid_name"],
  ["broken percent-encoding in the name", "/v1/locks/a%zz/acquire", ok, "invalid_name"],
  ["an unknown route", `/v1/locks/${name}/steal`, ok, "not_found", 404],
  ["an unknown top-level path", "/v2/locks", ok, "not_found", 404],
];

async function raw(method: string, path: string, init: RequestInit = {}) {
  const res = await exports.default.fetch(`http://edgelock.test${path}`, { method, ...init });
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    headers: res.headers,
    body: await res.json(),
  };
}

describe("bad input", () => {
  it.each(cases)(
    "refuses %s with a problem and changes nothing",
    async (_label, path, body, code, status = 400) => {
      await acquire(name, { ttlMs: 60_000, owner: "holder" });
      const before = (await inspect(name)).body;
      const r = await call("POST", path, body);
      expect(r.status).toBe(status);
      expect(r.type).toBe("application/problem+json");
      expect(r.body).toMatchObject({ code, status });
      expect(r.body.type).toContain(`#${code}`);
      expect(r.body.title.length).toBeGreaterThan(0);
      expect(r.body.detail.length).toBeGreaterThan(0);
      expect((await inspect(name)).body).toEqual(before);
    },
  );

  it("refuses a body that is not sent as JSON", async () => {
    const r = await raw("POST", acquirePath, {
      body: JSON.stringify(ok),
      headers: { "content-type": "text/plain" },
    });
    expect(r).toMatchObject({
      status: 415,
      type: "application/problem+json",
      body: { code: "unsupported_media_type" },
    });
    const none = await raw("POST", acquirePath, { body: JSON.stringify(ok) });
    expect(none.status).toBe(415);
  });

  it("refuses an oversized body", async () => {
    const body = JSON.stringify({ ...ok, owner: "x".repeat(10_000) });
    const r = await raw("POST", acquirePath, { body, headers: { "content-type": "application/json" } });
    expect(r).toMatchObject({ status: 413, body: { code: "body_too_large" } });
  });

  it.each([
    ["GET", acquirePath, "POST"],
    ["PUT", renewPath, "POST"],
    ["DELETE", `/v1/locks/${name}`, "GET, HEAD"],
    ["POST", "/healthz", "GET, HEAD"],
  ])("answers %s %s with 405 and Allow", async (method, path, allow) => {
    const r = await raw(method, path);
    expect(r).toMatchObject({
      status: 405,
      type: "application/problem+json",
      body: { code: "method_not_allowed" },
    });
    expect(r.headers.get("allow")).toBe(allow);
  });

  it.each([
    ["an unknown field in place of ttlMs", { ttl: 1000 }, "invalid_body", /unknown field\(s\): ttl$/],
    ["a fractional ttlMs", { ttlMs: 1.5 }, "invalid_ttl", /^ttlMs must be an integer from \d+ to \d+$/],
    ["a missing ttlMs", {}, "invalid_ttl", /\(missing\)$/],
  ])("names the field at fault for %s", async (_label, body, code, detail) => {
    const r = await call("POST", acquirePath, body);
    expect(r.body).toMatchObject({ code, status: 400 });
    expect(r.body.detail).toMatch(detail);
  });

  it("refuses a bad name on inspection too", async () => {
    expect((await call("GET", "/v1/locks/a%20b")).body.code).toBe("invalid_name");
  });
});
