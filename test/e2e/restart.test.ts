import { afterEach, expect, it } from "vitest";
import { liveInGroup } from "../../scripts/local-server.ts";
import { type DevServer, startWranglerDev } from "./helpers/wrangler-dev.ts";

let server: DevServer | undefined;
afterEach(async () => {
  await server?.stop();
});

async function post(url: string, path: string, body: unknown) {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

it("keeps held leases, their expiry and the token counter across a restart of the local server", async () => {
  server = await startWranglerDev();
  const { url, persistDir } = server;
  for (let i = 0; i < 3; i++) {
    const a = await post(url, "/v1/locks/cron/acquire", { ttlMs: 10_000 });
    await post(url, "/v1/locks/cron/release", { leaseId: a.body.leaseId });
  }
  const held = await post(url, "/v1/locks/cron/acquire", { ttlMs: 60_000, owner: "survivor" });
  const short = await post(url, "/v1/locks/short/acquire", { ttlMs: 1_500 });
  expect(held.body.token).toBe(4);
  const { pid } = server;
  await server.stop();
  // Nothing of the old server lives on to hold its ports or state (wrangler restarts a runtime that dies).
  expect(liveInGroup(pid).map((p) => `${p.pid} ${p.comm}`)).toEqual([]);

  server = await startWranglerDev({ persistDir });
  const view = await (await fetch(`${server.url}/v1/locks/cron`)).json();
  expect(view).toMatchObject({
    held: true,
    lastToken: 4,
    holders: [{ owner: "survivor", token: 4, expiresAt: held.body.expiresAt }],
  });
  expect((await post(server.url, "/v1/locks/cron/acquire", { ttlMs: 1_000 })).status).toBe(409);
  const renewed = await post(server.url, "/v1/locks/cron/renew", { leaseId: held.body.leaseId });
  expect(renewed.body.token).toBe(4);
  await post(server.url, "/v1/locks/cron/release", { leaseId: held.body.leaseId });
  expect((await post(server.url, "/v1/locks/cron/acquire", { ttlMs: 1_000 })).body.token).toBe(5);

  // The short lease expired while the server was down (or soon after): it is gone, and its token is not reused.
  const waited = await post(server.url, "/v1/locks/short/acquire", { ttlMs: 1_000, waitMs: 5_000 });
  expect(waited.status).toBe(200);
  expect(waited.body.token).toBe(short.body.token + 1);
  expect(Date.now()).toBeGreaterThanOrEqual(short.body.expiresAt);
});
