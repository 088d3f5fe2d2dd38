/**
 * The lock contract's subject for the client library (test/client/client-contract.test.ts): HTTP calls
 * through a client per holderKey, refusals as the typed errors' codes. The sessions' subject
 * (test/client/session-contract.test.ts) builds on it. Not a test by itself.
 */
import {
  type AcquireOptions,
  type EdgelockClient,
  isEdgelockError,
  type Lease,
} from "../../client/src/index.ts";
import type { AcquireRequest, Lease as WireLease } from "../../client/src/protocol.ts";
import { workerClient } from "../helpers/client.ts";
import { expireAllByAlarm, untilWaiters } from "../helpers/runtime.ts";
import type { LockSubject, Result } from "./lock-contract.ts";

/** The call's value, or the code of the edgelock error it threw; any other throw is a test failure. */
export async function resultOf<T>(call: Promise<T>): Promise<Result<T>> {
  try {
    return { ok: true, value: await call };
  } catch (error) {
    if (isEdgelockError(error)) return { ok: false, code: error.code };
    throw error;
  }
}

/** The client's acquire options for a wire acquire request. */
export function acquireOptionsOf(r: AcquireRequest): AcquireOptions {
  return {
    ttl: r.ttlMs,
    wait: r.waitMs ?? 0,
    ...(r.leaseId === undefined ? {} : { leaseId: r.leaseId }),
    ...(r.owner === undefined ? {} : { owner: r.owner }),
    ...(r.mode === undefined ? {} : { mode: r.mode }),
    ...(r.limit === undefined ? {} : { limit: r.limit }),
    ...(r.permits === undefined ? {} : { permits: r.permits }),
    ...(r.reentrant === undefined ? {} : { reentrant: r.reentrant }),
    ...(r.lockDelayMs === undefined ? {} : { lockDelay: r.lockDelayMs }),
  };
}

/** A client lease as the wire shape the contract compares (its `validForMs` is not the client's to keep). */
export function wireOf(lease: Lease): WireLease {
  const { name, leaseId, owner, token, ttlMs, expiresAt, mode, permits, holdCount, limit } = lease;
  return { name, leaseId, owner, token, ttlMs, expiresAt, validForMs: 0, mode, permits, holdCount, limit };
}

export interface ClientSubject extends LockSubject {
  /** The client that sends `holderKey` with reentrant acquires (the subject's default without one). */
  clientFor(holderKey?: string): EdgelockClient;
}

/** The client library over HTTP; `defaultHolderKey` is the holder of acquires that name none. */
export function clientSubject(defaultHolderKey: string): ClientSubject {
  const clients = new Map<string, EdgelockClient>();
  const clientFor = (holderKey = defaultHolderKey): EdgelockClient => {
    let client = clients.get(holderKey);
    if (client === undefined) {
      client = workerClient({ holderKey });
      clients.set(holderKey, client);
    }
    return client;
  };
  return {
    clientFor,
    acquire: (name, r) => resultOf(clientFor(r.holderKey).acquire(name, acquireOptionsOf(r)).then(wireOf)),
    renew: (name, leaseId, { ttlMs, mode } = {}) =>
      resultOf(
        clientFor().renewById(name, leaseId, {
          ...(ttlMs === undefined ? {} : { ttl: ttlMs }),
          ...(mode === undefined ? {} : { mode }),
        }),
      ),
    release: (name, leaseId) => resultOf(clientFor().releaseById(name, leaseId)),
    expire: expireAllByAlarm,
    untilWaiters,
  };
}
