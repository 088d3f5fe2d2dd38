/**
 * A lock's history in its own SQLite storage: the `lock_event` table, written by `LockStore.save` inside the
 * transaction of the step that produced the events (so history never costs a commit of its own), bounded
 * to the newest HISTORY_MAX_EVENTS rows and HISTORY_MAX_AGE_MS, and read a page at a time, newest first.
 * Reads apply both bounds themselves; the rows past them are deleted every SWEEP_EVERY events, in a batch.
 * A run of renewals of one lease is one row, moved up to the newest place at each renewal. Public fields
 * only, as the state machine reports them (lock-events.ts): no leaseId, holderKey or key name is stored.
 */
import {
  HISTORY_MAX_AGE_MS,
  HISTORY_MAX_EVENTS,
  type LockEvent,
  type LockEventKind,
  type LockMode,
} from "../client/src/protocol.ts";
import type { NewLockEvent } from "./lock-events.ts";

export const HISTORY_SCHEMA = `
CREATE TABLE IF NOT EXISTS lock_event (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  owner TEXT,
  token INTEGER,
  mode TEXT NOT NULL,
  permits INTEGER NOT NULL,
  hold_count INTEGER,
  wait_ms INTEGER,
  hold_ms INTEGER,
  expires_at INTEGER,
  renewals INTEGER,
  ended_by TEXT
);`;

/**
 * The rows past the bounds are deleted when the newest row id reaches another multiple of this (and on the
 * first write of each incarnation of the object), not on every write:
 * a delete at the table's old end dirties pages of its own in each commit, which cost about 7% of workerd's
 * CPU per acquire or release (`npm run bench:ab`; bench/RESULTS.md). Between sweeps the table holds
 * up to SWEEP_EVERY - 1 rows more than HISTORY_MAX_EVENTS, which no read shows.
 */
export const SWEEP_EVERY = 64;
/** Rows looked at from the oldest end in a sweep, to drop those past HISTORY_MAX_AGE_MS: more than a sweep adds. */
const AGE_SWEEP_ROWS = 2 * SWEEP_EVERY;

export interface EventsQuery {
  /** Only events at or after this instant (epoch ms). */
  readonly since: number;
  /** Only events with a smaller id (the `nextBefore` of the previous page); null for the newest page. */
  readonly before: number | null;
  readonly limit: number;
}

export interface EventsPage {
  readonly events: LockEvent[];
  readonly nextBefore: number | null;
}

type Row = Record<string, SqlStorageValue>;

export class HistoryWriter {
  /** The row of each lease's latest run of renewals, by token: the next renewal of it replaces that row. */
  readonly #renewals = new Map<number, number>();
  /** `floor(id / SWEEP_EVERY)` of the newest row at the last sweep; -1 before this incarnation's first. */
  #swept = -1;

  /** Inserts `events`, inside the caller's transaction, and drops what falls outside the bounds. */
  write(sql: SqlStorage, events: readonly NewLockEvent[], now: number): void {
    let last = 0;
    for (const e of events) {
      let renewals = e.renewals;
      if (e.kind === "renewed" && e.token !== null) {
        const previous = this.#renewals.get(e.token);
        if (previous !== undefined) {
          // Checked against the row itself: it may have been dropped by the bounds since.
          const row = sql
            .exec<Row>(
              "SELECT renewals FROM lock_event WHERE id = ? AND kind = 'renewed' AND token = ?",
              previous,
              e.token,
            )
            .toArray()[0];
          if (row !== undefined) {
            sql.exec("DELETE FROM lock_event WHERE id = ?", previous);
            renewals = Number(row.renewals) + (e.renewals ?? 1);
          }
        }
      }
      last = insert(sql, { ...e, renewals });
      if (e.kind === "renewed" && e.token !== null) this.#renewals.set(e.token, last);
      else if (e.token !== null && e.holdCount === 0) this.#renewals.delete(e.token);
    }
    // A coalesced renewal may take the newest id again: the multiple is then the same, and nothing is swept.
    const multiple = Math.floor(last / SWEEP_EVERY);
    if (last === 0 || multiple === this.#swept) return;
    this.#swept = multiple;
    sql.exec("DELETE FROM lock_event WHERE id <= ?", last - HISTORY_MAX_EVENTS);
    sql.exec(
      "DELETE FROM lock_event WHERE id IN (SELECT id FROM lock_event ORDER BY id LIMIT ?) AND at < ?",
      AGE_SWEEP_ROWS,
      now - HISTORY_MAX_AGE_MS,
    );
  }
}

function insert(sql: SqlStorage, e: NewLockEvent): number {
  const row = sql
    .exec<Row>(
      `INSERT INTO lock_event (at, kind, owner, token, mode, permits, hold_count, wait_ms, hold_ms, expires_at,
       renewals, ended_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      e.at,
      e.kind,
      e.owner,
      e.token,
      e.mode,
      e.permits,
      e.holdCount,
      e.waitMs,
      e.holdMs,
      e.expiresAt,
      e.renewals,
      e.by,
    )
    .one();
  return Number(row.id);
}

/**
 * One page of events, newest first. The bounds hold here, whatever the last sweep left: no event older than
 * HISTORY_MAX_AGE_MS, and none but the newest HISTORY_MAX_EVENTS ids.
 */
export function readEvents(sql: SqlStorage, q: EventsQuery, now: number): EventsPage {
  const since = Math.max(q.since, now - HISTORY_MAX_AGE_MS);
  const rows = sql
    .exec<Row>(
      `SELECT * FROM lock_event WHERE id < ? AND at >= ?
       AND id > (SELECT COALESCE(MAX(id), 0) FROM lock_event) - ? ORDER BY id DESC LIMIT ?`,
      q.before ?? Number.MAX_SAFE_INTEGER,
      since,
      HISTORY_MAX_EVENTS,
      q.limit + 1,
    )
    .toArray();
  const page = rows.slice(0, q.limit).map(toEvent);
  return { events: page, nextBefore: rows.length > q.limit ? (page.at(-1)?.id ?? null) : null };
}

function int(v: SqlStorageValue | undefined): number | null {
  return v === null || v === undefined ? null : Number(v);
}

function toEvent(r: Row): LockEvent {
  return {
    id: Number(r.id),
    at: Number(r.at),
    kind: String(r.kind) as LockEventKind,
    owner: r.owner === null || r.owner === undefined ? null : String(r.owner),
    token: int(r.token),
    mode: String(r.mode) as LockMode,
    permits: Number(r.permits),
    holdCount: int(r.hold_count),
    waitMs: int(r.wait_ms),
    holdMs: int(r.hold_ms),
    expiresAt: int(r.expires_at),
    renewals: int(r.renewals),
    by: r.ended_by === null || r.ended_by === undefined ? null : String(r.ended_by),
  };
}
