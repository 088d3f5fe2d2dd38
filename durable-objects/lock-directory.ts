/**
 * One shard of the directory of active locks: a Durable Object that keeps the latest report of each lock
 * that hashes to it (directory.ts), lists them by name prefix, and sweeps out entries that lapsed. Locks
 * report after their own commits, never on their answer's path; a report older than the one kept (reports
 * may cross) is ignored. It holds no lock state of its own: entries are what the locks last said.
 */
import { DurableObject } from "cloudflare:workers";
import type { DirectoryEntry, LockKind } from "../client/src/protocol.ts";

/** What a lock tells its shard: its entry, or null once it is neither held nor waited for. */
export interface DirectoryReport {
  readonly name: string;
  readonly reportedAt: number;
  readonly entry: DirectoryEntry | null;
}

export interface DirectoryListing {
  /** Name prefixes to list ("" for all), each already within the caller's scope. */
  readonly prefixes: readonly string[];
  /** Only names after this one (the previous page's last), or "" for the first page. */
  readonly after: string;
  readonly limit: number;
}

/** How long after it lapsed a row (an idle report, an entry whose lock went quiet) is kept before a sweep. */
const SWEEP_AFTER_MS = 3_600_000;
/** Above every character a lock name may have (LOCK_NAME_PATTERN): the end of a prefix's name range. */
const AFTER_ALL_NAMES = "~";

const SCHEMA = `CREATE TABLE IF NOT EXISTS entry (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  holder_count INTEGER NOT NULL,
  waiters INTEGER NOT NULL,
  since INTEGER NOT NULL,
  reported_at INTEGER NOT NULL,
  until INTEGER NOT NULL
)`;

type Row = Record<string, SqlStorageValue>;

export class LockDirectory extends DurableObject<Env> {
  #ready: boolean;
  #alarmAt: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#ready = this.#sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'entry'").toArray().length > 0;
    void ctx.blockConcurrencyWhile(async () => {
      this.#alarmAt = await ctx.storage.getAlarm();
    });
  }

  get #sql(): SqlStorage {
    return this.ctx.storage.sql;
  }

  /** Keeps a lock's report, unless a newer one of that lock is already kept. */
  report({ name, reportedAt, entry }: DirectoryReport): void {
    if (!this.#ready) {
      this.#sql.exec(SCHEMA);
      this.#ready = true;
    }
    // An idle report is kept as an entry that lapsed when it was made, so an older report cannot revive it.
    const e = entry ?? { kind: "mutex", holderCount: 0, waiters: 0, since: reportedAt, until: reportedAt };
    this.#sql.exec(
      `INSERT INTO entry (name, kind, holder_count, waiters, since, reported_at, until) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, holder_count = excluded.holder_count,
       waiters = excluded.waiters, since = excluded.since, reported_at = excluded.reported_at,
       until = excluded.until WHERE excluded.reported_at >= entry.reported_at`,
      name,
      e.kind,
      e.holderCount,
      e.waiters,
      e.since,
      reportedAt,
      e.until,
    );
    if (this.#alarmAt === null) {
      this.#alarmAt = Date.now() + SWEEP_AFTER_MS;
      void this.ctx.storage.setAlarm(this.#alarmAt);
    }
  }

  /** The active entries under the prefixes, in name order, at most `limit`. */
  list({ prefixes, after, limit }: DirectoryListing): DirectoryEntry[] {
    if (!this.#ready) return [];
    const now = Date.now();
    const found = new Map<string, DirectoryEntry>();
    for (const prefix of prefixes) {
      const rows = this.#sql
        .exec<Row>(
          `SELECT * FROM entry WHERE name >= ? AND name < ? AND name > ? AND until > ?
           AND (holder_count > 0 OR waiters > 0) ORDER BY name LIMIT ?`,
          prefix,
          prefix + AFTER_ALL_NAMES,
          after,
          now,
          limit,
        )
        .toArray();
      for (const r of rows) found.set(String(r.name), toEntry(r));
    }
    return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).slice(0, limit);
  }

  override async alarm(): Promise<void> {
    this.#alarmAt = null;
    if (!this.#ready) return;
    const now = Date.now();
    this.#sql.exec("DELETE FROM entry WHERE until < ?", now - SWEEP_AFTER_MS);
    if (this.#sql.exec("SELECT 1 FROM entry LIMIT 1").toArray().length > 0) {
      this.#alarmAt = now + SWEEP_AFTER_MS;
      await this.ctx.storage.setAlarm(this.#alarmAt);
    }
  }
}

function toEntry(r: Row): DirectoryEntry {
  return {
    name: String(r.name),
    kind: String(r.kind) as LockKind,
    holderCount: Number(r.holder_count),
    waiters: Number(r.waiters),
    since: Number(r.since),
    reportedAt: Number(r.reported_at),
    until: Number(r.until),
  };
}
