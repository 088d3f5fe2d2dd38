/**
 * The lock contract (test/contract/lock-contract.ts) through the client's sessions: every acquire goes over
 * a session socket (one per lock and holder), with its grant pushed; renewals and releases of the leases it
 * granted go over the same socket. A mode change on renew, which a `Lease` does not offer, goes over HTTP.
 */
import type { Lease, LockSession } from "../../client/src/index.ts";
import { acquireOptionsOf, clientSubject, resultOf, wireOf } from "../contract/client-subject.ts";
import { describeLockContract, type LockSubject } from "../contract/lock-contract.ts";

const sessionSubject = (): LockSubject => {
  const http = clientSubject("session-contract-holder");
  const sessions = new Map<string, LockSession>();
  const leases = new Map<string, Lease>();
  const sessionFor = (name: string, holderKey?: string): LockSession => {
    const key = `${holderKey ?? ""}/${name}`;
    let session = sessions.get(key);
    if (session === undefined) {
      session = http.clientFor(holderKey).session(name);
      sessions.set(key, session);
    }
    return session;
  };
  return {
    ...http,
    acquire: (name, r) =>
      resultOf(
        sessionFor(name, r.holderKey)
          .acquire(acquireOptionsOf(r))
          .then((lease) => {
            leases.set(lease.leaseId, lease);
            return wireOf(lease);
          }),
      ),
    renew: (name, leaseId, change = {}) => {
      const lease = leases.get(leaseId);
      if (lease === undefined || change.mode !== undefined) return http.renew(name, leaseId, change);
      return resultOf(lease.renew(change.ttlMs === undefined ? {} : { ttl: change.ttlMs }).then(wireOf));
    },
    release: (name, leaseId) => {
      const lease = leases.get(leaseId);
      return lease === undefined ? http.release(name, leaseId) : resultOf(lease.release());
    },
  };
};

describeLockContract("the client's sessions", sessionSubject);
