/**
 * One chaos client, run as a forked child process: it loops acquire → guarded work → release on random locks,
 * writing to the fenced store under its fencing token, and logs every grant, renew, release and write (with
 * server tokens and times) to its own JSONL file. Faults it injects itself: stalls longer than the TTL,
 * after which it writes late (the fence must refuse it if a newer holder wrote). The orchestrator SIGKILLs
 * and respawns it; the parent's "stop" message ends it cleanly after the current lease.
 */

import type { WriteAnswer, WriteRequest } from "./fenced-store.ts";
import { appendSync } from "./jsonl.ts";
import { LibraryLockClient } from "./library-client.ts";
import { type ChaosLockClient, RawLockClient, sleep } from "./lock-client.ts";
import { makeRng } from "./rng.ts";

export interface ClientConfig {
  clientId: number;
  incarnation: number;
  seed: number;
  baseUrl: string;
  storeUrl: string;
  locks: string[];
  ttlMs: number;
  maxWaitMs: number;
  stallChance: number;
  logPath: string;
  /** Which client makes the lock calls: the client library (default) or bare fetch. */
  client: "library" | "raw";
}

const config = JSON.parse(process.env.CHAOS_CLIENT ?? "null") as ClientConfig | null;
if (config === null) throw new Error("CHAOS_CLIENT is not set: this file is forked by chaos/run.ts");
const cfg: ClientConfig = config;
const rng = makeRng(cfg.seed);
const me = `client-${cfg.clientId}.${cfg.incarnation}`;
const log = (ev: string, data: Record<string, unknown>): void =>
  appendSync(cfg.logPath, { ev, at: Date.now(), client: me, ...data });
const onRetry = (what: string, leaseId: string, cause: string): void =>
  log("retry", { what, leaseId, cause });
const client: ChaosLockClient =
  cfg.client === "raw"
    ? new RawLockClient(cfg.baseUrl, onRetry)
    : new LibraryLockClient(cfg.baseUrl, onRetry);

let stopping = false;
process.on("message", (m) => {
  if (m === "stop") stopping = true;
});
process.on("disconnect", () => {
  stopping = true;
});

/** How close to expiry a holder stops writing on its own (it renews or gives up first). */
const SAFETY_MS = 100;

async function write(
  name: string,
  token: number,
  leaseId: string,
  late: boolean,
  heldUntil: number,
): Promise<boolean> {
  const body: WriteRequest = { resource: name, token, leaseId, writer: me, late };
  const sentAt = Date.now();
  const res = await fetch(`${cfg.storeUrl}/write`, { method: "POST", body: JSON.stringify(body) });
  const answer = (await res.json()) as WriteAnswer;
  log("write", {
    name,
    token,
    leaseId,
    late,
    sentAt,
    heldUntil,
    storeAt: answer.at,
    accepted: answer.accepted,
    highest: answer.highest,
  });
  return answer.accepted;
}

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

async function holdAndWork(name: string, leaseId: string, token: number, expiresAt: number): Promise<void> {
  let heldUntil = expiresAt;
  const steps = rng.int(1, 4);
  for (let i = 0; i < steps; i++) {
    if (rng.chance(cfg.stallChance)) {
      // A stalled holder (GC pause, swapped out): it sleeps past its lease without renewing, then writes late.
      const stallMs = rng.int(cfg.ttlMs + 200, cfg.ttlMs * 3);
      log("stall", { name, leaseId, token, stallMs, heldUntil });
      await sleep(stallMs);
      await write(name, token, leaseId, true, heldUntil);
      const r = await client.renew(name, leaseId, 3_000);
      logRenew(r, { name, leaseId, token, afterStall: true });
      if (r.kind !== "renewed") return;
      heldUntil = r.lease.expiresAt;
      continue;
    }
    if (Date.now() >= heldUntil - SAFETY_MS) return;
    const ok = await write(name, token, leaseId, false, heldUntil);
    if (!ok) return;
    await sleep(rng.int(20, Math.floor(cfg.ttlMs / 3)));
    if (heldUntil - Date.now() < (cfg.ttlMs * 2) / 3) {
      const sentAt = Date.now();
      const r = await client.renew(name, leaseId, Math.max(0, heldUntil - SAFETY_MS - Date.now()));
      logRenew(r, { name, leaseId, token, sentAt });
      if (r.kind !== "renewed") return;
      heldUntil = r.lease.expiresAt;
    }
  }
}

async function main(): Promise<void> {
  log("start", { pid: process.pid });
  let n = 0;
  while (!stopping) {
    const name = rng.pick(cfg.locks);
    const leaseId = rng.id(`c${cfg.clientId}i${cfg.incarnation}n${n++}`);
    const waitMs = rng.chance(0.3) ? 0 : rng.int(100, cfg.maxWaitMs);
    const sentAt = Date.now();
    log("acquire", { name, leaseId, waitMs });
    const r = await client.acquire(name, {
      leaseId,
      ttlMs: cfg.ttlMs,
      waitMs,
      owner: me,
      deadlineMs: 15_000,
    });
    if (r.kind !== "granted") {
      log("acquire-result", { name, leaseId, sentAt, result: r.kind, ...r });
      if (r.kind === "busy") await sleep(Math.min(r.retryAfterMs, rng.int(20, 300)));
      continue;
    }
    const { token, expiresAt, ttlMs } = r.lease;
    log("grant", { name, leaseId, token, expiresAt, ttlMs, sentAt, leaseIdEcho: r.lease.leaseId });
    await holdAndWork(name, leaseId, token, expiresAt);
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
  }
  log("stop", {});
  process.exit(0);
}

main().catch((err: unknown) => {
  log("crash", { error: String((err as Error).stack ?? err) });
  process.exit(1);
});
