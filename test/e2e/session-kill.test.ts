/**
 * A session holder is a real OS process that is kill -9ed: no release, no close frame. The lock must free
 * within seconds (the runtime reports the dead socket), not at the lease's 60 s TTL, and the next waiter,
 * over HTTP or over a session of its own, is granted.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { expect, it } from "vitest";
import { uniqueName } from "./helpers/lock-http.ts";
import { useServer } from "./helpers/wrangler-dev.ts";

const HOLDER = resolve(import.meta.dirname, "helpers/session-holder.mjs");
const server = useServer();

/** Starts a session holder process and resolves once it holds the lock. */
function holdInAProcess(name: string): Promise<{ child: ChildProcess; token: number }> {
  const child = spawn(process.execPath, [HOLDER, server.url, name, "60000"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((done, fail) => {
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on("data", (d: Buffer) => {
      const m = /^held (\S+) (\d+)/m.exec(d.toString());
      if (m !== null) done({ child, token: Number(m[2]) });
    });
    child.once("exit", (code) => fail(new Error(`holder exited (${code}) before holding: ${err}`)));
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    child.once("exit", () => done());
    child.kill("SIGKILL");
  });
}

it("frees a killed session holder's lock for an HTTP waiter within 3 s, not at its 60 s TTL", async () => {
  const name = uniqueName("session-kill");
  const { child, token } = await holdInAProcess(name);
  const waiting = fetch(`${server.url}/v1/locks/${name}/acquire`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ttlMs: 5_000, waitMs: 20_000 }),
  });
  await new Promise((r) => setTimeout(r, 200));
  await killed(child);
  const killedAt = Date.now();
  const res = await waiting;
  const grantedAfterMs = Date.now() - killedAt;
  expect(res.status).toBe(200);
  expect(((await res.json()) as { token: number }).token).toBe(token + 1);
  expect(grantedAfterMs).toBeLessThan(3_000);
});

it("frees it for the next session holder too", async () => {
  const name = uniqueName("session-kill-session");
  const first = await holdInAProcess(name);
  const second = holdInAProcess(name);
  await new Promise((r) => setTimeout(r, 200));
  const killedAt = Date.now();
  await killed(first.child);
  const next = await second;
  expect(next.token).toBe(first.token + 1);
  expect(Date.now() - killedAt).toBeLessThan(3_000);
  await killed(next.child);
});

it("answers a client's close frame at once, so the client is not left waiting for one", async () => {
  const ws = new WebSocket(`${server.url.replace(/^http/, "ws")}/v1/locks/${uniqueName("close")}/session`);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const closing = Date.now();
  const closed = new Promise<CloseEvent>((resolve) => {
    ws.onclose = resolve;
  });
  ws.close(1000, "done");
  const event = await closed;
  expect(event.code).toBe(1000);
  expect(Date.now() - closing).toBeLessThan(2_000);
});
