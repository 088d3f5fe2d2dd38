// One OS process of the counter test: ROUNDS times {acquire with wait -> read file -> write n+1 -> release}.
// Usage: node counter-worker.mjs URL LOCK FILE ROUNDS ID. Prints one JSON line of the tokens it was granted.

import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const [url, lock, file, rounds, id] = process.argv.slice(2);
const post = async (action, body) => {
  const res = await fetch(`${url}/v1/locks/${lock}/${action}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};

const tokens = [];
for (let i = 0; i < Number(rounds); i++) {
  const leaseId = randomUUID();
  let r = await post("acquire", { ttlMs: 10_000, waitMs: 25_000, owner: `p${id}`, leaseId });
  // A wait that hit the per-request cap is re-polled with the same leaseId, keeping its place.
  while (r.status === 409 && r.body.code === "lock_held") {
    r = await post("acquire", { ttlMs: 10_000, waitMs: 25_000, owner: `p${id}`, leaseId });
  }
  if (r.status !== 200) throw new Error(`acquire failed: ${JSON.stringify(r)}`);
  const n = Number(readFileSync(file, "utf8"));
  writeFileSync(file, String(n + 1));
  tokens.push(r.body.token);
  const rel = await post("release", { leaseId });
  if (rel.status !== 200) throw new Error(`release failed: ${JSON.stringify(rel)}`);
}
console.log(JSON.stringify({ id, tokens }));
