/**
 * The directory of active locks, the pure half: which shard a lock name reports to, what a lock reports
 * (a `DirectoryEntry` while it is held or has waiters, else nothing). The shard objects are lock-directory.ts; the reporting lock side is lock-observer.ts. The
 * directory is an index that lags its locks; a lock's own `GET` is the truth.
 */
import type { DirectoryEntry } from "../client/src/protocol.ts";
import type { LockState } from "./lock-state.ts";
import { isBlocking, lockKind } from "./lock-state.ts";

/**
 * Shards of the directory. Names are spread over them by hash, so no prefix (however busy) and no single
 * object carries every lock's reports; a listing asks all of them. Changing it re-homes entries: locks
 * report to their new shard on their next change, and entries in the old one lapse at their `until`.
 */
export const DIRECTORY_SHARDS = 32;

/**
 * How long past its last lease's or wait's end an entry stays listed without a new report: a renewal
 * whose report was lost does not make a held lock vanish before its next report.
 */
export const DIRECTORY_GRACE_MS = 30_000;

/** The shard object's name for a lock name (FNV-1a, 32 bits). */
export function shardOf(name: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `directory-${h % DIRECTORY_SHARDS}`;
}

export function allShards(): string[] {
  return Array.from({ length: DIRECTORY_SHARDS }, (_, i) => `directory-${i}`);
}

/** What a lock reports at `now`: its entry while it is held or someone waits for it now, else null. */
export function entryOf(name: string, state: LockState, now: number): DirectoryEntry | null {
  const waiting = state.queue.filter((w) => isBlocking(w, now));
  if (state.holders.length === 0 && waiting.length === 0) return null;
  const starts = [...state.holders.map((l) => l.grantedAt), ...waiting.map((w) => w.enqueuedAt)];
  const ends = [...state.holders.map((l) => l.expiresAt), ...waiting.map((w) => w.holdUntil)];
  return {
    name,
    kind: lockKind(state),
    holderCount: state.holders.length,
    waiters: waiting.length,
    since: Math.min(...starts),
    reportedAt: now,
    until: Math.max(...ends) + DIRECTORY_GRACE_MS,
  };
}
