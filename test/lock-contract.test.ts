/**
 * The lock contract (test/contract/lock-contract.ts) against the Worker and its lock objects over HTTP,
 * through the Worker's real fetch entry in workerd; expiry by the lock object's own alarm.
 */
import type { Lease } from "../client/src/protocol.ts";
import { describeLockContract, type LockSubject, type Result } from "./contract/lock-contract.ts";
import { acquire, release, renew } from "./helpers/api.ts";
import { expireAllByAlarm, untilWaiters } from "./helpers/runtime.ts";

const result = <T>(r: { status: number; body: unknown }): Result<T> =>
  r.status === 200
    ? { ok: true, value: r.body as T }
    : { ok: false, code: (r.body as { code: string }).code };

const httpSubject = (): LockSubject => ({
  acquire: async (name, request) => result<Lease>(await acquire(name, { ...request })),
  renew: async (name, leaseId, change = {}) => result<Lease>(await renew(name, { leaseId, ...change })),
  release: async (name, leaseId) => result(await release(name, leaseId)),
  expire: expireAllByAlarm,
  untilWaiters,
});

describeLockContract("the Worker over HTTP", httpSubject);
