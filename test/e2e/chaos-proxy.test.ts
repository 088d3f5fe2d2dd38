/**
 * The chaos proxy's session relay (chaos/session-relay.ts) against a real server and the client library: a
 * session passes through it with every frame logged as the exchange it stands for, and its two cuts do what
 * the chaos run counts on. A reset is seen by both ends at once: the holder loses its lease and the lock goes
 * to a waiter long before the lease's TTL. A silent cut (a pulled cable) reaches nobody: the client gives
 * the socket up first, then the lock closes the session for silence, and only then frees the lock.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { ChaosProxy, Exchange, ProxyRecord } from "../../chaos/proxy.ts";
import { startProxy } from "../../chaos/proxy.ts";
import { makeRng } from "../../chaos/rng.ts";
import type { SessionRecord } from "../../chaos/session-relay.ts";
import { EdgelockClient, LeaseLostError } from "../../client/src/index.ts";
import { SESSION_TIMEOUT_MS } from "../../client/src/protocol.ts";
import { uniqueName } from "./helpers/lock-http.ts";
import { useServer } from "./helpers/wrangler-dev.ts";

const server = useServer();
const records: ProxyRecord[] = [];
/** Resolves the first record after now that `match` accepts. */
let waiters: { match: (r: ProxyRecord) => boolean; resolve: (r: ProxyRecord) => void }[] = [];
let proxy: ChaosProxy;

beforeAll(async () => {
  proxy = await startProxy({
    rng: makeRng(1),
    dropRate: 0,
    log: {
      write: (r) => {
        const record = r as unknown as ProxyRecord;
        records.push(record);
        waiters = waiters.filter((w) => {
          if (!w.match(record)) return true;
          w.resolve(record);
          return false;
        });
      },
      close: async () => undefined,
    },
  });
  proxy.setUpstream(server.url);
});
afterAll(async () => {
  await proxy.close();
});

function next(match: (r: ProxyRecord) => boolean): Promise<ProxyRecord> {
  return new Promise((resolve) => waiters.push({ match, resolve }));
}

function lost(signal: AbortSignal): Promise<{ error: unknown; at: number }> {
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve({ error: signal.reason, at: Date.now() }), { once: true }),
  );
}

/** An HTTP acquire straight to the server, waiting up to `waitMs`. */
async function waiter(
  name: string,
  waitMs: number,
): Promise<{ status: number; token?: number; expiresAt: number; ttlMs: number }> {
  const res = await fetch(`${server.url}/v1/locks/${name}/acquire`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ttlMs: 5_000, waitMs }),
  });
  return {
    status: res.status,
    ...((await res.json()) as { token?: number; expiresAt: number; ttlMs: number }),
  };
}

const sessionEnd = (session: number) => (r: ProxyRecord) =>
  r.kind === "session" && r.event === "end" && r.session === session;

it("relays a session, logs its frames as exchanges, and a reset frees the lock for a waiter at once", async () => {
  const name = uniqueName("relay-reset");
  const client = new EdgelockClient({ url: proxy.url });
  const session = client.session(name);
  const lease = await session.acquire({ ttl: "60s", owner: "relayed" });
  const grant = records.find(
    (r): r is Exchange => r.kind === "exchange" && r.method === "WS" && r.path.endsWith(`/${name}/acquire`),
  );
  if (grant === undefined) throw new Error("no session acquire in the proxy's log");
  expect(grant).toMatchObject({ status: 200, request: { ttlMs: 60_000, owner: "relayed" } });
  expect((grant.response as { token: number }).token).toBe(lease.token);
  const sessionId = grant.session as number;

  const waiting = waiter(name, 20_000);
  const ended = next(sessionEnd(sessionId));
  const lostLease = lost(lease.signal);
  expect(proxy.cutSession(makeRng(2), "reset")).toBe(sessionId);
  // Granted within its 20 s wait, so long before the lease's 60 s TTL: the reset ended the session.
  expect(await waiting).toMatchObject({ status: 200, token: lease.token + 1 });
  const { error } = await lostLease;
  expect(error).toBeInstanceOf(LeaseLostError);
  expect((error as LeaseLostError).reason).toBe("session_closed");
  const end = (await ended) as Extract<SessionRecord, { event: "end" }>;
  expect(end).toMatchObject({ endedBy: "cut-reset", serverEndedAt: null });
  expect(end.endSentUpstreamAt).toBe(end.endedAt);
  session.close();
});

it("a silent cut: the client gives up on the socket first, then the lock closes the session for silence", async () => {
  const name = uniqueName("relay-silent");
  const client = new EdgelockClient({ url: proxy.url });
  const session = client.session(name);
  const lease = await session.acquire({ ttl: "60s" });
  const sessionId = (
    records.findLast((r) => r.kind === "session" && r.event === "open" && r.name === name) as SessionRecord
  ).session;
  const ended = next(sessionEnd(sessionId));
  const lostLease = lost(lease.signal);
  expect(proxy.cutSession(makeRng(3), "silent")).toBe(sessionId);

  const { error, at: clientGaveUpAt } = await lostLease;
  expect((error as LeaseLostError).reason).toBe("session_closed");
  // Still held at the lock, which has not heard the last of the session yet; granted when it does.
  const waiting = waiter(name, 25_000);
  const end = (await ended) as Extract<SessionRecord, { event: "end" }>;
  expect(end).toMatchObject({ endedBy: "cut-silent", endSentUpstreamAt: null, serverNeverClosed: false });
  const serverEndedAt = end.serverEndedAt as number;
  // Nothing passed on after the cut: the lock closed it for silence, not before its limit, and the
  // holder had heard of its loss before then.
  expect(serverEndedAt - end.lastForwardedAt).toBeGreaterThanOrEqual(SESSION_TIMEOUT_MS);
  expect(clientGaveUpAt).toBeLessThan(serverEndedAt);
  const granted = await waiting;
  expect(granted).toMatchObject({ status: 200, token: lease.token + 1 });
  // By the server's clock (this machine's): not before the lock could tell the session was silent.
  expect(granted.expiresAt - granted.ttlMs).toBeGreaterThanOrEqual(end.lastForwardedAt + SESSION_TIMEOUT_MS);
  session.close();
});
