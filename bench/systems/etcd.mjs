/**
 * etcd 3's FIFO mutex, built the way its client/v3/concurrency package builds it: a lease per acquire
 * (TTL in whole seconds), a key under the lock's prefix attached to it, then wait for the key with the
 * next-lower create_revision to be deleted, watching from the revision after our read (a watch from a past
 * revision is "unsynced" and waits for etcd's 100 ms sync loop). Release revokes the lease, which deletes
 * the key. Counted: every unary RPC plus each watch created.
 */
import { Etcd3 } from "etcd3";

export function createEtcd({ url, label = "etcd mutex" }) {
  const stats = { requests: 0 };
  const client = new Etcd3({ hosts: url });
  const rpc = (fn) => {
    stats.requests++;
    return fn();
  };

  /** Resolves when `key` is deleted at or after `fromRevision`, or on `deadline`; true if deleted. */
  async function waitDelete(key, fromRevision, deadline) {
    stats.requests++;
    const watcher = await client.watch().key(key).startRevision(String(fromRevision)).create();
    try {
      return await new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
        watcher.on("delete", () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    } finally {
      await watcher.cancel();
    }
  }

  return {
    label,
    stats,
    async acquire(name, { ttlMs, waitMs = 0 }) {
      const deadline = Date.now() + waitMs;
      const prefix = `${name}/`;
      const rangeEnd = Buffer.from(`${name}0`); // "/" + 1: the end of the prefix range
      const ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
      const expiresAt = Date.now() + ttlSeconds * 1000;
      const { ID } = await rpc(() => client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
      const key = Buffer.from(prefix + BigInt(ID).toString(16));
      // The put's revision is this waiter's place in line: the time the overtake count goes by.
      const requestedAt = performance.timeOrigin + performance.now();
      const put = await rpc(() => client.kv.put({ key, value: Buffer.alloc(0), lease: ID }));
      const myRevision = BigInt(put.header.revision);
      for (;;) {
        const older = await rpc(() =>
          client.kv.range({
            key: Buffer.from(prefix),
            range_end: rangeEnd,
            max_create_revision: String(myRevision - 1n),
            sort_order: "Descend",
            sort_target: "Create",
            limit: 1,
            keys_only: true,
          }),
        );
        if (older.kvs.length === 0) {
          return { name, leaseID: ID, expiresAt, ttlMs: ttlSeconds * 1000, requestedAt };
        }
        const next = BigInt(older.header.revision) + 1n;
        if (Date.now() >= deadline || !(await waitDelete(older.kvs[0].key, next, deadline))) {
          await rpc(() => client.leaseClient.leaseRevoke({ ID }));
          return null;
        }
      }
    },
    async release(lease) {
      await rpc(() => client.leaseClient.leaseRevoke({ ID: lease.leaseID }));
    },
    async close() {
      client.close();
    },
  };
}
