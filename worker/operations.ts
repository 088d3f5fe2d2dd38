/**
 * The lock operations of API v1, shared by both ways in: the HTTP routes (app.ts) and the Workers RPC
 * entrypoint (rpc.ts). Each takes checked input and the caller's identity, calls the lock object, and
 * returns the answer body or throws the `ProblemError` both transports answer with (mapped in answers.ts).
 * Authentication, and everything about HTTP (headers, JSON, body size), stays with the caller.
 */
import type { z } from "zod";
import type {
  ForceReleaseResult,
  Lease,
  LockEvents,
  LockView,
  ReleaseResponse,
  TokenCheck,
} from "../client/src/protocol.ts";
import type { EventsQuery } from "../durable-objects/history-store.ts";
import type { LockObject } from "../durable-objects/lock-object.ts";
import { leaseOf, lockFailure, lockViewOf, problemOf, releasedOf } from "./answers.ts";
import { ProblemError } from "./problem.ts";
import { logJson } from "./request-log.ts";
import { type acquireSchema, describeIssue, type releaseSchema, type renewSchema } from "./schemas.ts";

export type AcquireBody = z.output<typeof acquireSchema>;
export type RenewBody = z.output<typeof renewSchema>;
export type ReleaseBody = z.output<typeof releaseSchema>;

/** `value` checked against `schema`, for callers without a route's validator; the first issue is the problem. */
export function parseBody<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const { code, detail } = describeIssue(parsed.error, value);
    throw new ProblemError(code, detail);
  }
  return parsed.data;
}

/** Acquires for `principal` (the API key's name, to which reentrant holds are bound). */
export async function acquireLock(
  env: Env,
  name: string,
  principal: string,
  body: AcquireBody,
): Promise<Lease> {
  const answer = await callLock(env, name, (lock) =>
    lock.acquire({
      leaseId: body.leaseId ?? newLeaseId(),
      owner: body.owner ?? null,
      principal,
      ttlMs: body.ttlMs,
      waitMs: body.waitMs,
      mode: body.mode,
      limit: body.limit ?? null,
      permits: body.permits,
      holderKey: body.reentrant ? (body.holderKey ?? null) : null,
      session: null,
      repoll: body.repoll,
      lockDelayMs: body.lockDelayMs,
    }),
  );
  if (answer.kind === "rejected") throw problemOf(answer);
  return leaseOf(name, answer);
}

export async function renewLock(env: Env, name: string, body: RenewBody): Promise<Lease> {
  const { leaseId, ttlMs, mode } = body;
  const answer = await callLock(env, name, (lock) =>
    lock.renew({ leaseId, ttlMs: ttlMs ?? null, mode: mode ?? null }),
  );
  if (answer.kind === "rejected") throw problemOf(answer);
  return leaseOf(name, answer);
}

export async function releaseLock(env: Env, name: string, body: ReleaseBody): Promise<ReleaseResponse> {
  const answer = await callLock(env, name, (lock) => lock.release({ leaseId: body.leaseId }));
  if (answer.kind === "rejected") throw problemOf(answer);
  return releasedOf(answer);
}

/**
 * Ends every lease of the lock; `by` is the admin key's name, kept with each ended lease. `requestId` is the
 * HTTP request's (request-log.ts), or null over RPC.
 */
export async function forceReleaseLock(
  env: Env,
  name: string,
  by: string,
  requestId: string | null = null,
): Promise<ForceReleaseResult> {
  const { count } = await callLock(env, name, (lock) => lock.forceRelease({ by }));
  // The audit record: who ended which leases. The lock's history also keeps `by` with each ended lease.
  logJson("info", { event: "force-release", requestId, lock: name, by, count });
  return { name, forced: true, count, by };
}

/** One page of the lock's history, newest first. */
export async function eventsOf(env: Env, name: string, query: EventsQuery): Promise<LockEvents> {
  return { name, ...(await callLock(env, name, (lock) => lock.events(query))) };
}

/** Whether `token` belongs to a lease that holds the lock now. */
export async function checkTokenOf(env: Env, name: string, token: number): Promise<TokenCheck> {
  return { name, ...(await callLock(env, name, (lock) => lock.checkToken({ token }))) };
}

/** The lock's public state, with the page of holders whose tokens come after `after` (a `nextAfter`). */
export async function inspectLock(env: Env, name: string, after: number): Promise<LockView> {
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new ProblemError("invalid_query", "after must be a token: a non-negative integer (a nextAfter)");
  }
  const snap = await callLock(env, name, (lock) => lock.inspect({ after }));
  return lockViewOf(name, snap);
}

/**
 * The lock object's RPC methods as the Worker sees them. The generated stub type distributes each union
 * result over `Promise`, which hides the discriminant; this view keeps the object's own signatures.
 */
type LockStub = {
  [K in "acquire" | "renew" | "release" | "forceRelease" | "inspect" | "events" | "checkToken"]: (
    ...args: Parameters<LockObject[K]>
  ) => Promise<Awaited<ReturnType<LockObject[K]>>>;
};

/** Calls the lock object; a reset object (deploy, restart) is a retryable 503, never a 500. */
async function callLock<T>(env: Env, name: string, call: (lock: LockStub) => Promise<T>): Promise<T> {
  try {
    return await call(env.LOCK.getByName(name) as unknown as LockStub);
  } catch (err) {
    throw lockFailure(name, err);
  }
}

function newLeaseId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}
