/**
 * The lock object's SQLite schema and the codec between rows and `LockState`: the only file that knows
 * column names. `save` writes the difference between two states (the state machine builds new objects only
 * for what changed, so unchanged rows are found by identity and never rewritten) plus the lease ids that
 * ended, which stay in storage only and are read back one at a time (`History`), and the step's history
 * events (history-store.ts), all in the step's one transaction. Nothing is created before the first write:
 * inspecting a name nobody used leaves no trace.
 */
import type { LockMode } from "../client/src/protocol.ts";
import {
  type EventsPage,
  type EventsQuery,
  HISTORY_SCHEMA,
  HistoryWriter,
  readEvents,
} from "./history-store.ts";
import type { NewLockEvent } from "./lock-events.ts";
import type { EndReason, History, LeaseRecord, LockState, Tombstone, Waiter } from "./lock-state.ts";
import { EMPTY_STATE, TOMBSTONE_TTL_MS } from "./lock-state.ts";

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
  aliases TEXT NOT NULL,
  principal TEXT NOT NULL DEFAULT '',
  holder_key TEXT,
  holds TEXT,
  session TEXT
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
  hold_until INTEGER NOT NULL,
  principal TEXT NOT NULL DEFAULT '',
  holder_key TEXT,
  reserve_until INTEGER NOT NULL DEFAULT 0,
  session TEXT
);
CREATE TABLE IF NOT EXISTS tombstone (
  lease_id TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  ended_at INTEGER NOT NULL,
  ended_by TEXT
);
CREATE INDEX IF NOT EXISTS tombstone_ended_at ON tombstone (ended_at);`;

/** Columns added since the first release: locks created before lack them until they load here. */
const ADDED_COLUMNS: [table: string, column: string, definition: string][] = [
  ["tombstone", "ended_by", "TEXT"],
  ["lease", "principal", "TEXT NOT NULL DEFAULT ''"],
  ["lease", "holder_key", "TEXT"],
  ["lease", "holds", "TEXT"],
  ["waiter", "principal", "TEXT NOT NULL DEFAULT ''"],
  ["waiter", "holder_key", "TEXT"],
  ["waiter", "reserve_until", "INTEGER NOT NULL DEFAULT 0"],
  ["lease", "session", "TEXT"],
  ["waiter", "session", "TEXT"],
];

type Row = Record<string, SqlStorageValue>;

export interface LockStoreOptions {
  /** Keep the lock's history (history-store.ts). Off only to measure what it costs. @default true */
  readonly history?: boolean;
}

/** How often old tombstones are deleted; a lookup ignores any older than TOMBSTONE_TTL_MS meanwhile. */
const PRUNE_EVERY_MS = 60_000;

/** One lock's tables. Reads never create them; the first write does, in the transaction of that write. */
export class LockStore implements History {
  readonly #storage: DurableObjectStorage;
  readonly #history: HistoryWriter | null;
  #ready: boolean;
  /** When old tombstones were last deleted: once a minute is enough, since lookups check their age. */
  #prunedAt = 0;

  constructor(storage: DurableObjectStorage, options: LockStoreOptions = {}) {
    this.#storage = storage;
    this.#history = options.history === false ? null : new HistoryWriter();
    this.#ready = this.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'lock_meta'").toArray().length > 0;
    if (this.#ready) this.#migrate();
  }

  private get sql(): SqlStorage {
    return this.#storage.sql;
  }

  load(): LockState {
    if (!this.#ready) return EMPTY_STATE;
    const meta = this.sql.exec<Row>("SELECT * FROM lock_meta WHERE id = 1").toArray()[0];
    if (meta === undefined) return EMPTY_STATE;
    const queue = this.sql.exec<Row>("SELECT * FROM waiter ORDER BY seq").toArray().map(toWaiter);
    return {
      limit: Number(meta.lock_limit),
      lastToken: Number(meta.last_token),
      // `next_seq` is stored only when the meta row is written for another reason (see #write): past the
      // queue's last seq is all a new waiter's place needs.
      nextSeq: queue.reduce((next, w) => Math.max(next, w.seq + 1), Number(meta.next_seq)),
      delayUntil: Number(meta.delay_until),
      holders: this.sql.exec<Row>("SELECT * FROM lease ORDER BY token").toArray().map(toLease),
      queue,
    };
  }

  /** How `leaseId` ended, if storage remembers it. */
  ended(leaseId: string): Tombstone | null {
    if (!this.#ready) return null;
    const r = this.sql.exec<Row>("SELECT * FROM tombstone WHERE lease_id = ?", leaseId).toArray()[0];
    if (r === undefined) return null;
    return {
      leaseId,
      reason: String(r.reason) as EndReason,
      endedAt: Number(r.ended_at),
      by: r.ended_by === null || r.ended_by === undefined ? null : String(r.ended_by),
    };
  }

  /** One page of the lock's history, newest first. */
  events(query: EventsQuery, now: number): EventsPage {
    if (!this.#ready) return { events: [], nextBefore: null };
    return readEvents(this.sql, query, now);
  }

  /**
   * Writes what changed from `before` to `after`, the lease ids that ended (forgetting those older than
   * TOMBSTONE_TTL_MS) and the step's history events, in one transaction: all of it or, if anything throws,
   * none of it. A new lock's schema comes in the same commit.
   */
  save(
    before: LockState,
    after: LockState,
    ended: readonly Tombstone[],
    now: number,
    events: readonly NewLockEvent[] = [],
  ): void {
    if (before === after && ended.length === 0 && events.length === 0) return;
    this.#storage.transactionSync(() => this.#write(before, after, ended, now, events));
    this.#ready = true;
  }

  #write(
    before: LockState,
    after: LockState,
    ended: readonly Tombstone[],
    now: number,
    events: readonly NewLockEvent[],
  ): void {
    const { sql } = this;
    if (!this.#ready) {
      sql.exec(SCHEMA);
      this.#migrate();
    }
    // A waiter's seq only orders the queue, and `load` derives the next one from the queue's last: a step
    // that only queues someone writes no meta row (one statement fewer per queued acquire).
    if (
      before === EMPTY_STATE ||
      before.limit !== after.limit ||
      before.lastToken !== after.lastToken ||
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
        `INSERT OR REPLACE INTO lease (lease_id, owner, principal, holder_key, token, ttl_ms, expires_at,
         granted_at, mode, permits, hold_count, reentrant, lock_delay_ms, aliases, holds, session)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        l.leaseId,
        l.owner,
        l.principal,
        l.holderKey,
        l.token,
        l.ttlMs,
        l.expiresAt,
        l.grantedAt,
        l.mode,
        l.permits,
        l.holds.length,
        l.holderKey === null ? 0 : 1,
        l.lockDelayMs,
        "",
        l.holds.join(","),
        l.session,
      ),
    );
    syncRows(sql, "waiter", before.queue, after.queue, (w) =>
      sql.exec(
        `INSERT OR REPLACE INTO waiter (lease_id, owner, principal, holder_key, ttl_ms, mode, permits,
         reentrant, lock_delay_ms, seq, enqueued_at, wait_until, reserve_until, hold_until, session)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        w.leaseId,
        w.owner,
        w.principal,
        w.holderKey,
        w.ttlMs,
        w.mode,
        w.permits,
        w.holderKey === null ? 0 : 1,
        w.lockDelayMs,
        w.seq,
        w.enqueuedAt,
        w.waitUntil,
        w.reserveUntil,
        w.holdUntil,
        w.session,
      ),
    );
    if (ended.length > 0) {
      for (const t of ended) {
        sql.exec(
          "INSERT OR REPLACE INTO tombstone (lease_id, reason, ended_at, ended_by) VALUES (?, ?, ?, ?)",
          t.leaseId,
          t.reason,
          t.endedAt,
          t.by,
        );
      }
      if (now - this.#prunedAt >= PRUNE_EVERY_MS) {
        this.#prunedAt = now;
        sql.exec("DELETE FROM tombstone WHERE ended_at <= ?", now - TOMBSTONE_TTL_MS);
      }
    }
    if (events.length > 0) this.#history?.write(sql, events, now);
  }

  #migrate(): void {
    const { sql } = this;
    for (const [table, column, definition] of ADDED_COLUMNS) {
      if (!sql.exec(`SELECT * FROM ${table} LIMIT 0`).columnNames.includes(column)) {
        sql.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
      }
    }
    sql.exec("CREATE INDEX IF NOT EXISTS tombstone_ended_at ON tombstone (ended_at)");
    sql.exec(HISTORY_SCHEMA);
  }
}

function syncRows<T extends { readonly leaseId: string }>(
  sql: SqlStorage,
  table: "lease" | "waiter",
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

function text(v: SqlStorageValue | undefined): string | null {
  return v === null || v === undefined ? null : String(v);
}

/** The columns a lease and a waiter share: who asked, and for what. */
function toRequest(r: Row) {
  return {
    leaseId: String(r.lease_id),
    owner: text(r.owner),
    principal: String(r.principal),
    holderKey: text(r.holder_key),
    session: text(r.session),
    ttlMs: Number(r.ttl_ms),
    mode: String(r.mode) as LockMode,
    permits: Number(r.permits),
    lockDelayMs: Number(r.lock_delay_ms),
  };
}

function toLease(r: Row): LeaseRecord {
  return {
    ...toRequest(r),
    token: Number(r.token),
    expiresAt: Number(r.expires_at),
    grantedAt: Number(r.granted_at),
    holds: toHolds(r),
  };
}

/** Lease ids have no commas. Rows from before `holds` have the first id and a JSON array of the others. */
function toHolds(r: Row): string[] {
  if (r.holds !== null && r.holds !== undefined) return String(r.holds).split(",").filter(Boolean);
  const others = String(r.aliases)
    .replace(/[[\]"]/g, "")
    .split(",")
    .filter(Boolean);
  return [String(r.lease_id), ...others];
}

function toWaiter(r: Row): Waiter {
  const waitUntil = Number(r.wait_until);
  return {
    ...toRequest(r),
    seq: Number(r.seq),
    enqueuedAt: Number(r.enqueued_at),
    waitUntil,
    reserveUntil: Math.max(waitUntil, Number(r.reserve_until)),
    holdUntil: Number(r.hold_until),
  };
}
