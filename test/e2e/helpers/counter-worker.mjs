// One OS process of the counter test: ROUNDS times {acquire with wait -> read file -> write n+1 -> release}.
// Usage: node counter-worker.mjs URL LOCK FILE ROUNDS ID. Prints one JSON line of the tokens it was granted.
import { readFileSync, writeFileSync } from "node:fs";
import { acquireWaiting, release } from "./lock-loop.mjs";

const [url, lock, file, rounds, id] = process.argv.slice(2);
const tokens = [];
for (let i = 0; i < Number(rounds); i++) {
  const lease = await acquireWaiting(url, lock, { owner: `p${id}` });
  const n = Number(readFileSync(file, "utf8"));
  writeFileSync(file, String(n + 1));
  tokens.push(lease.token);
  await release(url, lock, lease.leaseId);
}
console.log(JSON.stringify({ id, tokens }));
