/**
 * Builds a lock system from a plain, serialisable spec, so that the parent and the forked contended-counter
 * workers construct the same thing. Every system has the same shape:
 * `{ label, stats: { requests }, acquire(name, { ttlMs, waitMs }) → lease | null, release(lease), close() }`.
 */
import { createBaton } from "./baton.mjs";
import { createEdgelock } from "./edgelock.mjs";
import { createEdgelockSession } from "./edgelock-session.mjs";
import { createEtcd } from "./etcd.mjs";
import { createRedis } from "./redis.mjs";
import { createRedlock } from "./redlock.mjs";

export async function makeSystem(spec) {
  switch (spec.kind) {
    case "baton":
      return createBaton(spec);
    case "edgelock":
      return createEdgelock(spec);
    case "edgelock-session":
      return createEdgelockSession(spec);
    case "redis":
      return createRedis(spec);
    case "redlock":
      return createRedlock(spec);
    case "etcd":
      return createEtcd(spec);
    default:
      throw new Error(`unknown system kind ${spec.kind}`);
  }
}
