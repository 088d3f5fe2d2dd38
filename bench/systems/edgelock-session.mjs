/**
 * edgelock over sessions (docs/api.md "sessions"), raw frames on Node 22's global WebSocket, not the client
 * library: one socket per lock name per client, opened on first use and kept; `acquire` and `release` frames
 * with ids, the grant pushed when the turn comes (no per-request cap, no re-polls). Sends `ping` every
 * SESSION_PING_MS as the protocol asks. The key, when the bench has one, goes as the `bearer.` subprotocol.
 */
import { randomBytes } from "node:crypto";
import { SESSION_PING_MS, SESSION_PROTOCOL } from "../../client/src/protocol.ts";
import { BUSY } from "./edgelock.mjs";

/** One open session: frames out, answers matched to their ids. */
async function openSession(url, name, apiKey) {
  const wsUrl = `${url.replace(/^http/, "ws")}/v1/locks/${encodeURIComponent(name)}/session`;
  const protocols = apiKey === undefined ? [SESSION_PROTOCOL] : [SESSION_PROTOCOL, `bearer.${apiKey}`];
  const ws = new WebSocket(wsUrl, protocols);
  const answers = new Map(); // frame id → { resolve, reject }
  let closed = null;
  const fail = (reason) => {
    closed ??= reason;
    for (const { reject } of answers.values()) reject(new Error(`session ${name}: ${reason}`));
    answers.clear();
  };
  ws.addEventListener("message", (event) => {
    if (event.data === "pong") return;
    const frame = JSON.parse(event.data);
    const waiting = answers.get(frame.id);
    if (waiting === undefined) return; // `lost` and `state` pushes: the bench does not watch
    answers.delete(frame.id);
    waiting.resolve(frame);
  });
  ws.addEventListener("close", (event) => fail(`closed (${event.code} ${event.reason})`));
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error(`session ${name}: could not open ${wsUrl}`)), {
      once: true,
    });
  });
  const ping = setInterval(() => ws.send("ping"), SESSION_PING_MS);
  ping.unref();
  let nextId = 1;
  return {
    /**
     * Sends a frame; resolves the server's answer to it (`granted`, `released` or `error`) and when the
     * frame was handed to the socket (epoch ms).
     */
    call(frame) {
      if (closed !== null) return Promise.reject(new Error(`session ${name}: ${closed}`));
      const id = nextId++;
      const answer = new Promise((resolve, reject) => answers.set(id, { resolve, reject }));
      ws.send(JSON.stringify({ ...frame, id }));
      const sentAt = performance.timeOrigin + performance.now();
      return answer.then((reply) => ({ reply, sentAt }));
    },
    close() {
      clearInterval(ping);
      closed ??= "closed by the bench";
      ws.close(1000, "bench done");
    },
  };
}

export function createEdgelockSession({ url, apiKey, label = "edgelock session" }) {
  const stats = { requests: 0 };
  const sessions = new Map(); // lock name → Promise of its session

  function sessionFor(name) {
    let session = sessions.get(name);
    if (session === undefined) {
      session = openSession(url, name, apiKey);
      sessions.set(name, session);
    }
    return session;
  }

  return {
    label,
    stats,
    /** Resolves the lease (`requestedAt`: when its acquire frame was sent), or null when `waitMs` ran out. */
    async acquire(name, { ttlMs, waitMs = 0 }) {
      const session = await sessionFor(name);
      const leaseId = randomBytes(12).toString("base64url");
      stats.requests++;
      const { reply: answer, sentAt } = await session.call({ type: "acquire", ttlMs, waitMs, leaseId });
      if (answer.type === "granted") {
        const reachedAt = answer.expiresAt - answer.validForMs; // when the frame reached the lock, by its clock
        return {
          name,
          leaseId,
          token: answer.token,
          expiresAt: answer.expiresAt,
          requestedAt: sentAt,
          reachedAt,
        };
      }
      // A wait that ran out is answered with the 409 that says what still blocks it.
      if (answer.type === "error" && BUSY.has(answer.code)) return null;
      throw new Error(`acquire ${name}: ${answer.type} ${answer.code ?? ""}`);
    },
    async release(lease) {
      const session = await sessionFor(lease.name);
      stats.requests++;
      const { reply: answer } = await session.call({ type: "release", leaseId: lease.leaseId });
      if (answer.type !== "released") throw new Error(`release ${lease.name}: ${answer.code}`);
    },
    async close() {
      for (const session of sessions.values()) (await session.catch(() => null))?.close();
      sessions.clear();
    },
  };
}
