/**
 * The lock contract (test/contract/lock-contract.ts) through the client library, whose requests reach the
 * real Worker in workerd through its `fetch` option; refusals are the typed errors' codes.
 */
import { exports } from "cloudflare:workers";
import { EdgelockClient, isEdgelockError } from "../../client/src/index.ts";
import type { Lease } from "../../client/src/protocol.ts";
import { describeLockContract, type LockSubject, type Result } from "../contract/lock-contract.ts";
import { expireAllByAlarm, untilWaiters } from "../helpers/runtime.ts";

/** One client per holderKey: the client sends its own holderKey with reentrant acquires. */
const clients = new Map<string, EdgelockClient>();
function clientFor(holderKey = "contract-default-holder"): EdgelockClient {
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

const clientSubject = (): LockSubject => ({
  acquire: (name, r) =>
    result(
      clientFor(r.holderKey)
        .acquire(name, {
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
        .then(
          (lease): Lease => ({
            name,
            leaseId: lease.leaseId,
            owner: lease.owner,
            token: lease.token,
            ttlMs: lease.ttlMs,
            expiresAt: lease.expiresAt,
            validForMs: 0,
            mode: lease.mode,
            permits: lease.permits,
            holdCount: lease.holdCount,
            limit: lease.limit,
          }),
        ),
    ),
  renew: (name, leaseId, { ttlMs, mode } = {}) =>
    result(
      clientFor().renewById(name, leaseId, {
        ...(ttlMs === undefined ? {} : { ttl: ttlMs }),
        ...(mode === undefined ? {} : { mode }),
      }),
    ),
  release: (name, leaseId) => result(clientFor().releaseById(name, leaseId)),
  expire: expireAllByAlarm,
  untilWaiters,
});

describeLockContract("the client library", clientSubject);
