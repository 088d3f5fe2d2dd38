/**
 * The baton of the floor Worker (bench/floor/worker.mjs) as a lock system: the least a lock can do per
 * critical section on workerd (two write + setAlarm calls, the grant riding on the release's commit), over
 * the same HTTP client as edgelock's. Not a lock anyone should use: no TTL, no fencing, in-memory queue.
 * It is the contended counter's platform floor, what edgelock's P=4 figure is read against.
 */
import { randomBytes } from "node:crypto";
import { postJson } from "../http.mjs";

export function createBaton({ url, label = "baton (floor)" }) {
  const stats = { requests: 0, repolls: 0 };
  async function post(name, op, id) {
    stats.requests++;
    const answer = await postJson(`${url}/baton/${encodeURIComponent(name)}/${op}`, { id });
    if (answer.status !== 200) throw new Error(`baton ${op} ${name}: ${answer.status}`);
    return answer;
  }
  return {
    label,
    stats,
    async acquire(name) {
      const leaseId = randomBytes(12).toString("base64url");
      const { sentAt } = await post(name, "acquire", leaseId);
      return { name, leaseId, requestedAt: sentAt };
    },
    async release(lease) {
      await post(lease.name, "release", lease.leaseId);
    },
    async close() {},
  };
}
