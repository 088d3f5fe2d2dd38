/**
 * The live pages as the Worker serves them (the browser test, test/e2e/live-page.test.ts, runs them), and
 * the request log: an id on every answer and one JSON line per request that never holds a key.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { callAs as authCall, envWith, KEYS, keysConfig } from "./helpers/auth.ts";
import { lockName } from "./helpers/names.ts";

afterEach(() => vi.restoreAllMocks());

describe("the live pages", () => {
  it("serve a page shell with no data, needing no key, under a nonce-only CSP", async () => {
    for (const path of ["/ui/", `/ui/locks/${lockName("billing:")}`]) {
      const res = await authCall(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      const csp = res.headers.get("content-security-policy") ?? "";
      const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
      expect(nonce).toBeTruthy();
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("connect-src 'self'");
      const page = await res.text();
      const scripts = page.match(/<script[^>]*>/g) ?? [];
      expect(scripts.length).toBeGreaterThan(0);
      for (const tag of scripts) expect(tag).toContain(`nonce="${nonce}"`);
      // No external assets: nothing is loaded from anywhere (the SVG namespace URI is a name, not a load).
      expect(page).not.toMatch(/\ssrc=|@import|url\(|href="(https?:)?\/\//);
      expect(page).toContain('name="viewport"');
    }
    // Another response, another nonce.
    const a = (await authCall("/ui/")).headers.get("content-security-policy");
    expect((await authCall("/ui/")).headers.get("content-security-policy")).not.toBe(a);
  });

  it("put the lock's name into the page as text, and refuse a bad name", async () => {
    const name = lockName("billing:");
    expect(await (await authCall(`/ui/locks/${name}`)).text()).toContain(`data-lock="${name}"`);
    const bad = await authCall("/ui/locks/%3Cscript%3E");
    expect(bad.status).toBe(400);
    expect((await bad.json<{ code: string }>()).code).toBe("invalid_name");
    const redirect = await authCall("/ui");
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get("location")).toBe("/ui/");
  });
});

describe("request logs", () => {
  const logged = () => {
    const spy = vi.spyOn(console, "log").mockImplementation(() => {});
    return () =>
      spy.mock.calls
        .map((args) => JSON.parse(String(args[0])) as Record<string, unknown>)
        .filter((l) => l.event === "request");
  };

  it("give every request an id, answered and logged, with its route, status, code and key name", async () => {
    const env = envWith({ EDGELOCK_KEYS: await keysConfig(), EDGELOCK_REQUEST_LOG: undefined });
    const lines = logged();
    const name = lockName("billing:");
    const ok = await authCall(`/v1/locks/${name}/acquire`, {
      key: "billingWrite",
      body: { ttlMs: 1_000 },
      env,
    });
    const refused = await authCall(`/v1/locks/${name}`, { key: "paymentsWrite", env });
    const own = await authCall("/healthz", { env, headers: { "x-request-id": "caller-id.42" } });
    const forged = await authCall("/healthz", { env, headers: { "x-request-id": 'x"} {"level":"error' } });
    const ids = [ok, refused, own, forged].map((r) => r.headers.get("x-request-id"));
    expect(ids[2]).toBe("caller-id.42");
    expect(ids[3]).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(ids).size).toBe(4);
    const [first, second, third] = lines();
    expect(first).toMatchObject({
      level: "info",
      requestId: ids[0],
      method: "POST",
      route: "/v1/locks/:name/acquire",
      status: 200,
      code: null,
      key: "billing-rw",
      lock: name,
    });
    expect(second).toMatchObject({ requestId: ids[1], status: 403, code: "forbidden_scope", key: null });
    expect(third).toMatchObject({ requestId: "caller-id.42", route: "/healthz", status: 200 });
    const text = JSON.stringify(lines());
    for (const key of Object.values(KEYS)) expect(text).not.toContain(key);
  });

  it("are off with EDGELOCK_REQUEST_LOG=off, and the id is answered still", async () => {
    const lines = logged();
    const res = await authCall("/healthz", { env: envWith({ EDGELOCK_REQUEST_LOG: "off" }) });
    expect(res.headers.get("x-request-id")).toBeTruthy();
    expect(lines()).toEqual([]);
  });
});
