/**
 * The lock contract (test/contract/lock-contract.ts) through the client's sessions: every acquire goes over
 * a session socket (one per lock and holder), with its grant pushed; renewals and releases of the leases it
 * granted go over the same socket. A mode change on renew, which a `Lease` does not offer, goes over HTTP.
 */
import { exports } from "cloudflare:workers";
import { EdgelockClient, isEdgelockError, type Lease, type LockSession } from "../../client/src/index.ts";
import type { Lease as WireLease } from "../../client/src/protocol.ts";
import { describeLockContract, type LockSubject, type Result } from "../contract/lock-contract.ts";
import { expireAllByAlarm, untilWaiters } from "../helpers/runtime.ts";

const clients = new Map<string, EdgelockClient>();
function clientFor(holderKey = "session-contract-holder"): EdgelockClient {
  let client = clients.get(holderKey);
  if (client === undefined) {
    client = new EdgelockClient({
      url: "https://edgelock.test",
      fetch: (input, init) => exports.default.fetch(input, init),
      holderKey,
    });
    clients.set(holderKey, client);
  }
  return client;
}

async function result<T>(call: Promise<T>): Promise<Result<T>> {
  try {
    return { ok: true, value: await call };
  } catch (error) {
    if (isEdgelockError(error)) return { ok: false, code: error.code };
    throw error;
  }
}

function wireOf(lease: Lease): WireLease {
  const { name, leaseId, owner, token, ttlMs, expiresAt, mode, permits, holdCount, limit } = lease;
  return { name, leaseId, owner, token, ttlMs, expiresAt, validForMs: 0, mode, permits, holdCount, limit };
}

const sessionSubject = (): LockSubject => {
  const sessions = new Map<string, LockSession>();
  const leases = new Map<string, Lease>();
  const sessionFor = (name: string, holderKey?: string): LockSession => {
    const key = `${holderKey ?? ""}/${name}`;
    let session = sessions.get(key);
    if (session === undefined) {
      session = clientFor(holderKey).session(name);
      sessions.set(key, session);
    }
    return session;
  };
  return {
    acquire: (name, r) =>
      result(
        sessionFor(name, r.holderKey)
          .acquire({
            ttl: r.ttlMs,
            wait: r.waitMs ?? 0,
            ...(r.leaseId === undefined ? {} : { leaseId: r.leaseId }),
            ...(r.owner === undefined ? {} : { owner: r.owner }),
            ...(r.mode === undefined ? {} : { mode: r.mode }),
            ...(r.limit === undefined ? {} : { limit: r.limit }),
            ...(r.permits === undefined ? {} : { permits: r.permits }),
            ...(r.reentrant === undefined ? {} : { reentrant: r.reentrant }),
            ...(r.lockDelayMs === undefined ? {} : { lockDelay: r.lockDelayMs }),
          })
          .then((lease) => {
            leases.set(lease.leaseId, lease);
            return wireOf(lease);
          }),
      ),
    renew: (name, leaseId, { ttlMs, mode } = {}) => {
      const lease = leases.get(leaseId);
      if (lease === undefined || mode !== undefined) {
        return result(
          clientFor().renewById(name, leaseId, {
            ...(ttlMs === undefined ? {} : { ttl: ttlMs }),
            ...(mode === undefined ? {} : { mode }),
          }),
        );
      }
      return result(lease.renew(ttlMs === undefined ? {} : { ttl: ttlMs }).then(wireOf));
    },
    release: (name, leaseId) => {
      const lease = leases.get(leaseId);
      return result(lease === undefined ? clientFor().releaseById(name, leaseId) : lease.release());
    },
    expire: expireAllByAlarm,
    untilWaiters,
  };
};

describeLockContract("the client's sessions", sessionSubject);
