// One OS process of the semaphore test: ROUNDS times {acquire a permit -> record enter -> work -> record leave
// -> release}. Usage: node semaphore-worker.mjs URL LOCK LIMIT ROUNDS ID. Prints [enter, leave] pairs as JSON.
import { randomUUID } from "node:crypto";

const [url, lock, limit, rounds, id] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const post = async (action, body) => {
  const res = await fetch(`${url}/v1/locks/${lock}/${action}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};

const spans = [];
for (let i = 0; i < Number(rounds); i++) {
  const leaseId = randomUUID();
  const req = { ttlMs: 10_000, waitMs: 25_000, limit: Number(limit), owner: `p${id}`, leaseId };
  let r = await post("acquire", req);
  while (r.status === 409 && r.body.code === "lock_held") r = await post("acquire", req);
  if (r.status !== 200) throw new Error(`acquire failed: ${JSON.stringify(r)}`);
  const enter = now();
  await new Promise((done) => setTimeout(done, 2 + (i % 5)));
  spans.push([enter, now()]);
  const rel = await post("release", { leaseId });
  if (rel.status !== 200) throw new Error(`release failed: ${JSON.stringify(rel)}`);
}
console.log(JSON.stringify(spans));
