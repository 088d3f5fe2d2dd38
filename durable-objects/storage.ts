/**
 * The lock object's SQLite schema and the codec between rows and `LockState`: the only file that knows
 * column names. `save` writes the difference between two states; the state machine builds new objects
 * only for what changed, so unchanged rows are found by identity and never rewritten.
 */
import type { LockMode } from "../client/src/protocol.ts";
import type { EndReason, LeaseRecord, LockState, Tombstone, Waiter } from "./lock-state.ts";
import { EMPTY_STATE } from "./lock-state.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS lock_meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  lock_limit INTEGER NOT NULL,
  last_token INTEGER NOT NULL,
  next_seq INTEGER NOT NULL,
  delay_until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS lease (
  lease_id TEXT PRIMARY KEY,
  owner TEXT,
  token INTEGER NOT NULL,
  ttl_ms INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  granted_at INTEGER NOT NULL,
  mode TEXT NOT NULL,
  permits INTEGER NOT NULL,
  hold_count INTEGER NOT NULL,
  reentrant INTEGER NOT NULL,
  lock_delay_ms INTEGER NOT NULL,
  aliases TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS waiter (
  lease_id TEXT PRIMARY KEY,
  owner TEXT,
  ttl_ms INTEGER NOT NULL,
  mode TEXT NOT NULL,
  permits INTEGER NOT NULL,
  reentrant INTEGER NOT NULL,
  lock_delay_ms INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  enqueued_at INTEGER NOT NULL,
  wait_until INTEGER NOT NULL,
  hold_until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tombstone (
  lease_id TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  ended_at INTEGER NOT NULL,
  ended_by TEXT
);`;

type Row = Record<string, SqlStorageValue>;

export function load(sql: SqlStorage): LockState {
  sql.exec(SCHEMA);
  // Locks created before force-releases were attributed lack this column.
  if (!sql.exec("SELECT * FROM tombstone LIMIT 0").columnNames.includes("ended_by")) {
    sql.exec("ALTER TABLE tombstone ADD COLUMN ended_by TEXT");
  }
  const meta = sql.exec<Row>("SELECT * FROM lock_meta WHERE id = 1").toArray()[0];
  if (meta === undefined) return EMPTY_STATE;
  return {
    limit: Number(meta.lock_limit),
    lastToken: Number(meta.last_token),
    nextSeq: Number(meta.next_seq),
    delayUntil: Number(meta.delay_until),
    holders: sql.exec<Row>("SELECT * FROM lease ORDER BY token").toArray().map(toLease),
    queue: sql.exec<Row>("SELECT * FROM waiter ORDER BY seq").toArray().map(toWaiter),
    tombstones: sql
      .exec<Row>("SELECT * FROM tombstone ORDER BY ended_at")
      .toArray()
      .map(
        (r): Tombstone => ({
          leaseId: String(r.lease_id),
          reason: String(r.reason) as EndReason,
          endedAt: Number(r.ended_at),
          by: r.ended_by === null || r.ended_by === undefined ? null : String(r.ended_by),
        }),
      ),
  };
}

/** Writes what changed from `before` to `after`. Run inside `transactionSync`. */
export function save(sql: SqlStorage, before: LockState, after: LockState): void {
  if (before === after) return;
  if (
    before === EMPTY_STATE ||
    before.limit !== after.limit ||
    before.lastToken !== after.lastToken ||
    before.nextSeq !== after.nextSeq ||
    before.delayUntil !== after.delayUntil
  ) {
    sql.exec(
      `INSERT INTO lock_meta (id, lock_limit, last_token, next_seq, delay_until) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET lock_limit = excluded.lock_limit, last_token = excluded.last_token,
       next_seq = excluded.next_seq, delay_until = excluded.delay_until`,
      after.limit,
      after.lastToken,
      after.nextSeq,
      after.delayUntil,
    );
  }
  syncRows(sql, "lease", before.holders, after.holders, (l) =>
    sql.exec(
      `INSERT OR REPLACE INTO lease (lease_id, owner, token, ttl_ms, expires_at, granted_at, mode, permits,
       hold_count, reentrant, lock_delay_ms, aliases) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      l.leaseId,
      l.owner,
      l.token,
      l.ttlMs,
      l.expiresAt,
      l.grantedAt,
      l.mode,
      l.permits,
      l.holdCount,
      l.reentrant ? 1 : 0,
      l.lockDelayMs,
      JSON.stringify(l.aliases),
    ),
  );
  syncRows(sql, "waiter", before.queue, after.queue, (w) =>
    sql.exec(
      `INSERT OR REPLACE INTO waiter (lease_id, owner, ttl_ms, mode, permits, reentrant, lock_delay_ms, seq,
       enqueued_at, wait_until, hold_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      w.leaseId,
      w.owner,
      w.ttlMs,
      w.mode,
      w.permits,
      w.reentrant ? 1 : 0,
      w.lockDelayMs,
      w.seq,
      w.enqueuedAt,
      w.waitUntil,
      w.holdUntil,
    ),
  );
  syncRows(sql, "tombstone", before.tombstones, after.tombstones, (t) =>
    sql.exec(
      "INSERT OR REPLACE INTO tombstone (lease_id, reason, ended_at, ended_by) VALUES (?, ?, ?, ?)",
      t.leaseId,
      t.reason,
      t.endedAt,
      t.by,
    ),
  );
}

function syncRows<T extends { readonly leaseId: string }>(
  sql: SqlStorage,
  table: "lease" | "waiter" | "tombstone",
  before: readonly T[],
  after: readonly T[],
  write: (row: T) => void,
): void {
  if (before === after) return;
  const kept = new Set(after);
  const present = new Set(after.map((r) => r.leaseId));
  for (const row of before) {
    if (!kept.has(row) && !present.has(row.leaseId)) {
      sql.exec(`DELETE FROM ${table} WHERE lease_id = ?`, row.leaseId);
    }
  }
  const old = new Set(before);
  for (const row of after) if (!old.has(row)) write(row);
}

function toLease(r: Row): LeaseRecord {
  return {
    leaseId: String(r.lease_id),
    owner: r.owner === null ? null : String(r.owner),
    token: Number(r.token),
    ttlMs: Number(r.ttl_ms),
    expiresAt: Number(r.expires_at),
    grantedAt: Number(r.granted_at),
    mode: String(r.mode) as LockMode,
    permits: Number(r.permits),
    holdCount: Number(r.hold_count),
    reentrant: Number(r.reentrant) === 1,
    lockDelayMs: Number(r.lock_delay_ms),
    aliases: JSON.parse(String(r.aliases)) as string[],
  };
}

function toWaiter(r: Row): Waiter {
  return {
    leaseId: String(r.lease_id),
    owner: r.owner === null ? null : String(r.owner),
    ttlMs: Number(r.ttl_ms),
    mode: String(r.mode) as LockMode,
    permits: Number(r.permits),
    reentrant: Number(r.reentrant) === 1,
    lockDelayMs: Number(r.lock_delay_ms),
    seq: Number(r.seq),
    enqueuedAt: Number(r.enqueued_at),
    waitUntil: Number(r.wait_until),
    holdUntil: Number(r.hold_until),
  };
}
