/**
 * The locks a chaos run contends on, and what a client asks of each: a mutex (exclusive leases), a read-write
 * lock (shared readers, exclusive writers) or a counting semaphore (1..limit permits). Given on the command line
 * as `name`, `name:rwlock` or `name:semaphore:3`. The checker never reads these: it takes each lock's kind and
 * each lease's mode and permits from the requests and answers in the proxy log.
 */
import type { AcquireRequest, LockMode } from "../client/src/protocol.ts";
import type { Rng } from "./rng.ts";

export const LOCK_KINDS = ["mutex", "rwlock", "semaphore"] as const;
export type LockKind = (typeof LOCK_KINDS)[number];

export interface LockSpec {
  readonly name: string;
  readonly kind: LockKind;
  /** Permits of a semaphore; 1 for the others. */
  readonly limit: number;
}

/** What an acquire on this lock states besides ttl, wait and ids, exactly as the wire puts it. */
export type LockAsk = Pick<AcquireRequest, "mode" | "limit" | "permits">;

/** How the holder uses the guarded resource: fenced writes, fenced reads, or nothing (semaphore permits). */
export type Access = "write" | "read" | null;

/** The share of read-write lock requests that are readers. */
const READER_SHARE = 0.6;

export function parseLocks(text: string): LockSpec[] {
  return text.split(",").map((item) => {
    const [name = "", kind = "mutex", limit] = item.split(":");
    if (!(LOCK_KINDS as readonly string[]).includes(kind)) throw new Error(`unknown lock kind in ${item}`);
    const n = kind === "semaphore" ? Number(limit ?? "3") : 1;
    if (!Number.isInteger(n) || n < 1 || (kind === "semaphore" && n < 2)) {
      throw new Error(`a semaphore needs a limit of 2 or more: ${item}`);
    }
    return { name, kind: kind as LockKind, limit: n };
  });
}

export function formatLocks(locks: readonly LockSpec[]): string {
  return locks
    .map((l) => (l.kind === "semaphore" ? `${l.name}:semaphore:${l.limit}` : `${l.name}:${l.kind}`))
    .join(",");
}

/** A random request for this lock: readers and writers on a read-write lock, 1..limit permits of a semaphore. */
export function askFor(lock: LockSpec, rng: Rng): { ask: LockAsk; access: Access } {
  switch (lock.kind) {
    case "mutex":
      return { ask: {}, access: "write" };
    case "rwlock": {
      const mode: LockMode = rng.chance(READER_SHARE) ? "shared" : "exclusive";
      return { ask: { mode }, access: mode === "shared" ? "read" : "write" };
    }
    case "semaphore":
      return { ask: { limit: lock.limit, permits: rng.int(1, lock.limit) }, access: null };
    default:
      return assertNever(lock.kind);
  }
}

/** Whether a granted lease is what was asked for (a writer must never run under a shared lease). */
export function grantMatches(ask: LockAsk, lease: { mode: LockMode; permits: number }): boolean {
  return lease.mode === (ask.mode ?? "exclusive") && lease.permits === (ask.permits ?? 1);
}

function assertNever(x: never): never {
  throw new Error(`unknown lock kind ${String(x)}`);
}
