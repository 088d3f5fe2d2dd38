/**
 * One short-wait chaos client, run as a forked child process: the serverless "wait a little, else skip"
 * pattern over bare HTTP. Each round sends one acquire with `waitMs` 100–500 and a fresh leaseId (chosen by
 * the server or by itself), never re-polls, and when granted uses the resource once and releases at once.
 * These are the waiters that give up; the checker's liveness check is about what they must not cost others.
 */
import type { Lease, Problem } from "../client/src/protocol.ts";
import { clientContext } from "./client-context.ts";
import { BUSY_CODES, postJson, RawLockClient, sleep } from "./lock-client.ts";
import { grantMatches } from "./locks.ts";

const { cfg, rng, me, log, access, run } = clientContext();
/** Releases go through the raw client: the same leaseId again after a network error or a 503. */
const releaser = new RawLockClient(cfg.baseUrl, (what, leaseId, cause) =>
  log("retry", { what, leaseId, cause }),
);

const GIVE_UP_WAIT_MS = { min: 100, max: 500 } as const;
/** Leases as short as the "wait a little" use takes them; at most the run's TTL. */
const MIN_TTL_MS = 300;

run(async ({ name, ask, access: op, n }) => {
  // Half choose their leaseId (and can abandon a lost request), half let the server choose it.
  const chosen = rng.chance(0.5) ? rng.id(`g${cfg.clientId}i${cfg.incarnation}n${n}`) : null;
  const waitMs = rng.int(GIVE_UP_WAIT_MS.min, GIVE_UP_WAIT_MS.max);
  const ttlMs = rng.int(Math.min(MIN_TTL_MS, cfg.ttlMs), cfg.ttlMs);
  const body = { ttlMs, waitMs, owner: me, ...ask, ...(chosen === null ? {} : { leaseId: chosen }) };
  const sentAt = Date.now();
  const a = await postJson(`${cfg.baseUrl}/v1/locks/${name}/acquire`, body, waitMs + 5_000);
  if (a.status === 200) {
    const lease = a.body as Lease;
    log("grant", {
      name,
      leaseId: lease.leaseId,
      token: lease.token,
      expiresAt: lease.expiresAt,
      sentAt,
      ...ask,
    });
    if (!grantMatches(ask, lease)) {
      log("mismatch", {
        name,
        leaseId: lease.leaseId,
        token: lease.token,
        ask,
        mode: lease.mode,
        permits: lease.permits,
      });
    } else if (op !== null && Date.now() < lease.expiresAt - 100) {
      await access({
        op,
        name,
        token: lease.token,
        leaseId: lease.leaseId,
        late: false,
        heldUntil: lease.expiresAt,
      });
    }
    const rel = await releaser.release(name, lease.leaseId, 3_000);
    log("release", { name, leaseId: lease.leaseId, token: lease.token, result: rel.kind });
  } else if (a.status === null || a.status >= 500) {
    // Lost: the server may have queued or even granted it. A chosen id can be given back; else its TTL ends it.
    log("acquire-result", { name, leaseId: chosen, sentAt, result: "lost", error: a.status ?? a.error });
    if (chosen !== null) await releaser.release(name, chosen, 1_000);
  } else {
    const p = a.body as Problem;
    if (a.status === 409 || a.status === 429) {
      if (!BUSY_CODES.includes(p.code)) throw new Error(`acquire ${name}: unexpected ${a.status} ${p.code}`);
      log("acquire-result", { name, leaseId: p.leaseId ?? chosen, sentAt, result: "busy", code: p.code });
    } else {
      throw new Error(`acquire ${name}: unexpected ${a.status} ${JSON.stringify(p)}`);
    }
  }
  await sleep(rng.int(20, 200));
});
