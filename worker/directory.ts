/**
 * Listing the directory of active locks: one call to every shard (durable-objects/directory.ts spreads
 * names over them by hash), merged into one page in name order. The shard count is fixed and small, so a
 * listing costs a bounded number of calls however many locks there are. No scope rules here: the route
 * passes only prefixes within the key's scope, and filters again.
 */
import type { DirectoryEntry } from "../client/src/protocol.ts";
import { allShards } from "../durable-objects/directory.ts";
import type { DirectoryListing } from "../durable-objects/lock-directory.ts";
import { ProblemError } from "./problem.ts";

export interface DirectoryPage {
  readonly locks: DirectoryEntry[];
  readonly nextAfter: string | null;
}

export async function listDirectory(env: Env, listing: DirectoryListing): Promise<DirectoryPage> {
  let lists: DirectoryEntry[][];
  try {
    lists = await Promise.all(allShards().map((shard) => env.DIRECTORY.getByName(shard).list(listing)));
  } catch (err) {
    console.warn(JSON.stringify({ level: "warn", event: "directory-unavailable", error: String(err) }));
    throw new ProblemError("unavailable", "a shard of the lock directory did not answer; retry", {
      extra: { retryAfterMs: 1000 },
      headers: { "retry-after": "1" },
    });
  }
  const merged = lists.flat().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const locks = merged.slice(0, listing.limit);
  // More may follow if the merge overflowed, or if a shard filled its page (it has more past it).
  const more = merged.length > listing.limit || lists.some((l) => l.length === listing.limit);
  return { locks, nextAfter: more && locks.length > 0 ? (locks.at(-1)?.name ?? null) : null };
}
