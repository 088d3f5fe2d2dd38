import { describe, expect, it } from "vitest";
import { MAX_BODY_BYTES } from "../client/src/protocol.ts";
import { callAs, envWith, KEYS, keysConfig } from "./helpers/auth.ts";
import { lockName } from "./helpers/names.ts";

const ORIGIN = "https://app.example";

async function corsEnv(origins: string | undefined) {
  return envWith({ EDGELOCK_KEYS: await keysConfig(), EDGELOCK_CORS_ORIGINS: origins });
}

function preflight(path: string, origin: string, env: Env) {
  return callAs(path, {
    method: "OPTIONS",
    env,
    headers: {
      origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, content-type",
    },
  });
}

describe("CORS", () => {
  it("is off by default: no CORS headers, and a preflight is not a route", async () => {
    const env = await corsEnv(undefined);
    const res = await preflight("/v1/locks/billing:x/acquire", ORIGIN, env);
    expect(res.status).toBe(405);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const get = await callAs("/v1/locks/billing:x", { key: "billingRead", env, headers: { origin: ORIGIN } });
    expect(get.status).toBe(200);
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers a preflight from an allowed origin without a key", async () => {
    const env = await corsEnv(`https://other.example, ${ORIGIN}`);
    const res = await preflight("/v1/locks/billing:x/acquire", ORIGIN, env);
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(res.headers.get("access-control-allow-methods")).toBe("GET,POST");
    expect(res.headers.get("access-control-allow-headers")).toBe("authorization,content-type");
    expect(res.headers.get("access-control-allow-credentials")).toBeNull();
    expect(res.headers.get("vary")).toContain("Origin");
  });

  it("lets an allowed origin read answers, errors included, but never opens auth", async () => {
    const env = await corsEnv(ORIGIN);
    const ok = await callAs("/v1/locks/billing:x", { key: "billingRead", env, headers: { origin: ORIGIN } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    const denied = await callAs("/v1/locks/billing:x", { env, headers: { origin: ORIGIN } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(denied.headers.get("access-control-expose-headers")).toContain("www-authenticate");
  });

  it("gives other origins no allow-origin header", async () => {
    const env = await corsEnv(ORIGIN);
    const res = await preflight("/v1/locks/billing:x/acquire", "https://evil.example", env);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const get = await callAs("/v1/locks/billing:x", {
      key: "billingRead",
      env,
      headers: { origin: "https://evil.example" },
    });
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("abuse limits", () => {
  it("refuses an oversized body with 413, and only after the key is checked", async () => {
    const big = { ttlMs: 1000, owner: "x".repeat(MAX_BODY_BYTES) };
    const path = `/v1/locks/${lockName("billing:")}/acquire`;
    expect((await callAs(path, { body: big })).status).toBe(401);
    expect((await callAs(path, { key: "billingWrite", body: big })).status).toBe(413);
  });

  it("refuses an Authorization header longer than any key without hashing it", async () => {
    const res = await callAs("/v1/locks/billing:x", {
      authorization: `Bearer ${KEYS.admin}${"x".repeat(10_000)}`,
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain("invalid_request");
  });
});
