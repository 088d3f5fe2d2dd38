// One OS process of the semaphore test: ROUNDS times {acquire a permit -> record enter -> work -> record leave
// -> release}. Usage: node semaphore-worker.mjs URL LOCK LIMIT ROUNDS ID. Prints [enter, leave] pairs as JSON.
import { acquireWaiting, release } from "./lock-loop.mjs";

const [url, lock, limit, rounds, id] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const spans = [];
for (let i = 0; i < Number(rounds); i++) {
  const lease = await acquireWaiting(url, lock, { limit: Number(limit), owner: `p${id}` });
  const enter = now();
  await new Promise((done) => setTimeout(done, 2 + (i % 5)));
  spans.push([enter, now()]);
  await release(url, lock, lease.leaseId);
}
console.log(JSON.stringify(spans));
