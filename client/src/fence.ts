/**
 * Fencing made usable: run a write that a downstream store applies only for a token at least as new as
 * any it has seen, and turn "0 rows changed" into a `FencedWriteError`. The store does the guarding (a
 * conditional UPDATE or a conditional put); this helper only reads the answer the same way for D1,
 * node:sqlite, better-sqlite3 and plain counts.
 */
import { EdgelockError } from "./errors.ts";

/** What a guarded write may return: a row count, or a driver result that carries one. */
export type WriteResult = number | { changes: number | bigint } | { meta: { changes: number } };

/** A fenced write was refused: the store has already seen a newer token, so this holder is stale. */
export class FencedWriteError extends EdgelockError {
  override name = "FencedWriteError";
  readonly token: number;

  constructor(token: number) {
    super(
      "fenced",
      `the store refused fencing token ${token}: a newer lease has written since; this lease is stale`,
    );
    this.token = token;
  }
}

/**
 * Runs `write(token)`, which must change rows only if the stored fence is ≤ `token` (and store `token` as
 * the new fence), and throws `FencedWriteError` if it changed none.
 *
 * @example
 * // D1 / SQLite: the row keeps the highest token that wrote it.
 * await fencedWrite(lease.token, (fence) =>
 *   env.DB.prepare("UPDATE accounts SET balance = ?1, fence = ?2 WHERE id = ?3 AND fence <= ?2")
 *     .bind(balance, fence, id).run());
 */
export async function fencedWrite(
  token: number,
  write: (token: number) => Promise<WriteResult> | WriteResult,
): Promise<void> {
  const changed = changesOf(await write(token));
  if (changed === 0) throw new FencedWriteError(token);
}

function changesOf(result: WriteResult): number {
  if (typeof result === "number") return result;
  if ("meta" in result) return result.meta.changes;
  return Number(result.changes);
}
