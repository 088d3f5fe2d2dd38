/**
 * The textbook single-instance Redis lock: `SET key token NX PX ttl` to take it, a compare-and-delete Lua
 * script to release it, and a client that polls every `pollMs` while the lock is held. Every command sent
 * to Redis is counted (ioredis's sendCommand), so a polling client pays for each poll.
 */
import { randomBytes } from "node:crypto";
import Redis from "ioredis";
import { REDIS_POLL_MS } from "../config.mjs";

const RELEASE_SCRIPT = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/** An ioredis client whose commands are counted in `stats.requests`. */
export async function countedRedis(port, stats) {
  const client = new Redis({ host: "127.0.0.1", port, lazyConnect: true, enableAutoPipelining: false });
  await client.connect();
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command, stream) => {
    stats.requests++;
    return send(command, stream);
  };
  return client;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export async function createRedis({ port, pollMs = REDIS_POLL_MS, label = "redis SET NX" }) {
  const stats = { requests: 0 };
  const client = await countedRedis(port, stats);
  client.defineCommand("releaseIfOwner", { numberOfKeys: 1, lua: RELEASE_SCRIPT });
  return {
    label,
    stats,
    async acquire(name, { ttlMs, waitMs = 0 }) {
      const token = randomBytes(12).toString("base64url");
      const deadline = Date.now() + waitMs;
      for (;;) {
        const expiresAt = Date.now() + ttlMs;
        if ((await client.set(name, token, "PX", ttlMs, "NX")) === "OK") return { name, token, expiresAt };
        if (Date.now() + pollMs > deadline) return null;
        await sleep(pollMs);
      }
    },
    async release(lease) {
      if ((await client.releaseIfOwner(lease.name, lease.token)) !== 1) {
        throw new Error(`release ${lease.name}: not the owner any more`);
      }
    },
    async close() {
      client.disconnect();
    },
  };
}
