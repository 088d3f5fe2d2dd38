/**
 * One chaos holder, run as a forked child process: it loops acquire → guarded work → release on random locks
 * (exclusive writers, shared readers, semaphore permits), accessing the fenced store under its fencing token,
 * and logs every grant, renew, release and access (with server tokens and times) to its own JSONL file. Faults
 * it injects itself: stalls longer than the TTL, after which it accesses late (the fence must refuse it if a
 * newer holder was there), and, holding through a session, sometimes closing the session instead of
 * releasing. The orchestrator SIGKILLs and respawns it; "stop" ends it after the current lease.
 */
import { clientContext } from "./client-context.ts";
import { LibraryLockClient, SessionLockClient } from "./library-client.ts";
import { type ChaosLockClient, RawLockClient, sleep } from "./lock-client.ts";
import { type Access, grantMatches } from "./locks.ts";

const { cfg, rng, me, log, access, run } = clientContext();
const onRetry = (what: string, leaseId: string, cause: string): void =>
  log("retry", { what, leaseId, cause });
function makeClient(): ChaosLockClient {
  switch (cfg.role) {
    case "raw":
      return new RawLockClient(cfg.baseUrl, onRetry);
    case "session":
      return new SessionLockClient(cfg.baseUrl, onRetry);
    default:
      return new LibraryLockClient(cfg.baseUrl, onRetry);
  }
}
const client = makeClient();

/** How close to expiry a holder stops using the resource on its own (it renews or gives up first). */
const SAFETY_MS = 100;
/** The share of leases a client that can (a session) walks away from by closing its connection. */
const ABANDON_SHARE = 0.1;

/** One renew record: what was renewed, and the new expiry or why it failed. */
function logRenew(r: Awaited<ReturnType<typeof client.renew>>, fields: Record<string, unknown>): void {
  log("renew", {
    ...fields,
    result: r.kind,
    ...(r.kind === "renewed"
      ? { expiresAt: r.lease.expiresAt, renewedToken: r.lease.token }
      : { reason: "reason" in r ? r.reason : r.lastError }),
  });
}

/** Uses the resource as the lease allows (a semaphore permit guards nothing the store can fence). */
async function use(
  op: Access,
  name: string,
  token: number,
  leaseId: string,
  late: boolean,
  heldUntil: number,
) {
  if (op === null) return true;
  return access({ op, name, token, leaseId, late, heldUntil });
}

async function holdAndWork(
  name: string,
  op: Access,
  leaseId: string,
  token: number,
  expiresAt: number,
): Promise<void> {
  let heldUntil = expiresAt;
  const steps = rng.int(1, 4);
  for (let i = 0; i < steps; i++) {
    if (rng.chance(cfg.stallChance)) {
      // A stalled holder (GC pause, swapped out): it sleeps past its lease without renewing, then acts late.
      const stallMs = rng.int(cfg.ttlMs + 200, cfg.stallMaxMs);
      log("stall", { name, leaseId, token, stallMs, heldUntil });
      await sleep(stallMs);
      await use(op, name, token, leaseId, true, heldUntil);
      const r = await client.renew(name, leaseId, 3_000);
      logRenew(r, { name, leaseId, token, afterStall: true });
      if (r.kind !== "renewed") return;
      heldUntil = r.lease.expiresAt;
      continue;
    }
    if (Date.now() >= heldUntil - SAFETY_MS) return;
    const lost = client.lossOf?.(leaseId) ?? null;
    if (lost !== null) {
      log("lease-lost", { name, leaseId, token, reason: lost });
      return;
    }
    if (!(await use(op, name, token, leaseId, false, heldUntil))) return;
    await sleep(rng.int(20, cfg.workStepMs));
    if (heldUntil - Date.now() < (cfg.ttlMs * 2) / 3) {
      const sentAt = Date.now();
      const r = await client.renew(name, leaseId, Math.max(0, heldUntil - SAFETY_MS - Date.now()));
      logRenew(r, { name, leaseId, token, sentAt });
      if (r.kind !== "renewed") return;
      heldUntil = r.lease.expiresAt;
    }
  }
}

run(async ({ name, ask, access: op, n }) => {
  const chosenId = rng.id(`c${cfg.clientId}i${cfg.incarnation}n${n}`);
  // A session lets the library choose, so that a wait cut off with its socket goes on over a new one.
  const requestId = cfg.role === "session" ? null : chosenId;
  const waitMs = rng.chance(0.3) ? 0 : rng.int(100, cfg.maxWaitMs);
  const sentAt = Date.now();
  log("acquire", { name, leaseId: requestId, waitMs, ...ask });
  const r = await client.acquire(name, {
    leaseId: requestId,
    ttlMs: cfg.ttlMs,
    waitMs,
    owner: me,
    ask,
    deadlineMs: 15_000,
  });
  if (r.kind !== "granted") {
    log("acquire-result", { name, leaseId: requestId, sentAt, result: r.kind, ...r });
    if (r.kind === "busy") await sleep(Math.min(r.retryAfterMs, rng.int(20, 300)));
    return;
  }
  const { token, expiresAt, ttlMs, leaseId } = r.lease;
  log("grant", {
    name,
    leaseId: requestId ?? leaseId,
    token,
    expiresAt,
    ttlMs,
    sentAt,
    leaseIdEcho: leaseId,
    ...ask,
  });
  if (!grantMatches(ask, r.lease)) {
    // Never act on a lease of another mode or size than asked: a writer under a shared lease is unfenced.
    log("mismatch", { name, leaseId, token, ask, mode: r.lease.mode, permits: r.lease.permits });
  } else {
    await holdAndWork(name, op, leaseId, token, expiresAt);
  }
  if (client.abandon !== undefined && rng.chance(ABANDON_SHARE)) {
    log("abandon", { name, leaseId, token, sentAt: Date.now() });
    client.abandon(name, leaseId);
    return;
  }
  const releaseAt = Date.now();
  const rel = await client.release(name, leaseId, 3_000);
  log("release", {
    name,
    leaseId,
    token,
    sentAt: releaseAt,
    result: rel.kind,
    ...("reason" in rel ? { reason: rel.reason } : {}),
  });
});
