/** Fresh names for runtime tests: isolation in this runtime is per file, not per test, so every test names its own. */

let counter = 0;

/** A lock name no other test uses, starting with `prefix` (a key's scope, say `billing:`). */
export function lockName(prefix: string): string {
  counter += 1;
  return `${prefix}t${counter}-${crypto.randomUUID().slice(0, 8)}`;
}

/** A valid leaseId (16–128 of A–Z a–z 0–9 _ -) no other test uses. */
export function leaseId(tag = "lease"): string {
  counter += 1;
  return `${tag}-${counter}-${crypto.randomUUID().replaceAll("-", "")}`.slice(0, 64);
}
