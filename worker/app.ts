/**
 * The HTTP API v1 as Hono routes: authenticate and scope-check (auth.ts), check the body, call the lock
 * object over RPC, and map its outcome to a response. No lock rules live here; see
 * durable-objects/lock-state.ts. Handlers take the lock name only from `c.var.lockName`, which auth set
 * after its scope check.
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import type { Lease, LockView } from "../client/src/protocol.ts";
import { MAX_BODY_BYTES } from "../client/src/protocol.ts";
import type {
  AcquireAnswer,
  Grant,
  LockObject,
  ReleaseAnswer,
  RenewAnswer,
} from "../durable-objects/lock-object.ts";
import { auth, markInsecure } from "./auth.ts";
import { cors } from "./cors.ts";
import { type ForceReleaseResult, openApiDocument } from "./openapi.ts";
import { ProblemError, problem } from "./problem.ts";
import { acquireSchema, describeIssue, releaseSchema, renewSchema } from "./schemas.ts";
import type { AppEnv } from "./settings.ts";

export const app = new Hono<AppEnv>();

app.use(markInsecure());
app.use(cors());
app.use("/v1/*", async function noStore(c, next) {
  await next();
  // Leases carry their holder's secret leaseId: no cache may keep them, no browser may sniff them.
  c.header("cache-control", "no-store");
  c.header("x-content-type-options", "nosniff");
});

app.get("/healthz", (c) => c.json({ ok: true }));

app.get("/openapi.json", (c) => c.json(openApiDocument()));

app.post("/v1/locks/:name/acquire", auth({ permission: "lock" }), async (c) => {
  const name = c.var.lockName;
  const body = await readBody(c, acquireSchema);
  const outcome = await callLock(c, name, (lock) =>
    lock.acquire({
      leaseId: body.leaseId ?? newLeaseId(),
      owner: body.owner ?? null,
      principal: c.var.principal.name,
      ttlMs: body.ttlMs,
      waitMs: body.waitMs,
      mode: body.mode,
      limit: body.limit ?? null,
      permits: body.permits,
      holderKey: body.reentrant ? (body.holderKey ?? null) : null,
      repoll: body.repoll,
      lockDelayMs: body.lockDelayMs,
    }),
  );
  return answer(name, outcome);
});

app.post("/v1/locks/:name/renew", auth({ permission: "lock" }), async (c) => {
  const name = c.var.lockName;
  const body = await readBody(c, renewSchema);
  const outcome = await callLock(c, name, (lock) =>
    lock.renew(body.leaseId, body.ttlMs ?? null, body.mode ?? null),
  );
  return answer(name, outcome);
});

app.post("/v1/locks/:name/release", auth({ permission: "lock" }), async (c) => {
  const name = c.var.lockName;
  const body = await readBody(c, releaseSchema);
  const outcome = await callLock(c, name, (lock) => lock.release(body.leaseId));
  return answer(name, outcome);
});

app.post("/v1/locks/:name/force-release", auth({ permission: "force" }), async (c) => {
  const name = c.var.lockName;
  const by = c.var.principal.name;
  const outcome = await callLock(c, name, (lock) => lock.forceRelease(by));
  // The audit record: who ended which leases. The lock object also keeps `by` with each ended lease.
  console.log(JSON.stringify({ event: "force-release", lock: name, by, count: outcome.count }));
  const result: ForceReleaseResult = { name, forced: true, count: outcome.count, by };
  return Response.json(result);
});

app.get("/v1/locks/:name", auth({ permission: "inspect" }), async (c) => {
  const name = c.var.lockName;
  const after = readAfter(c.req.query("after"));
  const snap = await callLock(c, name, (lock) => lock.inspect(after));
  const view: LockView = {
    name,
    held: snap.holderCount > 0,
    kind: snap.kind,
    holders: [...snap.holders],
    holderCount: snap.holderCount,
    nextAfter: snap.nextAfter,
    waiters: snap.waiters,
    lastToken: snap.lastToken,
    limit: snap.limit,
    permitsInUse: snap.permitsInUse,
    lockDelayUntil: snap.delayUntil,
  };
  return Response.json(view);
});

const ROUTES: [RegExp, string][] = [
  [/^\/v1\/locks\/[^/]+\/(acquire|renew|release|force-release)$/, "POST"],
  [/^\/v1\/locks\/[^/]+$/, "GET"],
  [/^\/(healthz|openapi\.json)$/, "GET"],
];

app.notFound((c) => {
  const allowed = ROUTES.find(([re]) => re.test(c.req.path))?.[1];
  if (allowed !== undefined) {
    return problem("method_not_allowed", `${c.req.method} is not allowed here; use ${allowed}`, {
      headers: { allow: allowed },
    });
  }
  return problem("not_found", `no route for ${c.req.method} ${c.req.path}`);
});

app.onError((err, c) => {
  if (err instanceof ProblemError) return err.getResponse();
  console.error(`unhandled error on ${c.req.method} ${c.req.path}:`, err);
  return problem(
    "internal",
    "the server failed to handle this request; it changed nothing it could not keep",
  );
});

async function readBody<S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.output<S>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new ProblemError(
      "unsupported_media_type",
      "send the body as JSON with content-type: application/json",
    );
  }
  // Stops reading at the limit, whether or not the request declares its length.
  await limitBody(c, async () => {});
  const text = await c.req.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProblemError("malformed_json", "the request body is not valid JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const { code, detail } = describeIssue(parsed.error, json);
    throw new ProblemError(code, detail);
  }
  return parsed.data;
}

/** `?after=`: the token after which the page of holders starts (a previous answer's `nextAfter`). */
function readAfter(raw: string | undefined): number {
  if (raw === undefined) return 0;
  const after = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(after)) {
    throw new ProblemError("invalid_query", "after must be a token: a non-negative integer (a nextAfter)");
  }
  return after;
}

const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ProblemError("body_too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
  },
});

/**
 * The lock object's RPC methods as the Worker sees them. The generated stub type distributes each union
 * result over `Promise`, which hides the discriminant; this view keeps the object's own signatures.
 */
type LockStub = {
  [K in "acquire" | "renew" | "release" | "forceRelease" | "inspect"]: (
    ...args: Parameters<LockObject[K]>
  ) => Promise<Awaited<ReturnType<LockObject[K]>>>;
};

/** Calls the lock object; a reset object (deploy, restart) is a retryable 503, never a 500. */
async function callLock<T>(
  c: Context<AppEnv>,
  name: string,
  call: (lock: LockStub) => Promise<T>,
): Promise<T> {
  try {
    return await call(c.env.LOCK.getByName(name) as unknown as LockStub);
  } catch (err) {
    throw lockFailure(name, err);
  }
}

/**
 * What a failed call to a lock object means for the client. An error thrown by the object's own code
 * (`remote`, not `retryable`) is a bug: a 500, logged, never to be retried blindly. Anything else (a
 * reset by a deploy or eviction, an overloaded or unreachable object) is a retryable 503. Either way the
 * lock is unchanged: a failed step's transaction rolls back and its state is never adopted.
 */
export function lockFailure(name: string, err: unknown): Error {
  const e = typeof err === "object" && err !== null ? (err as { remote?: unknown; retryable?: unknown }) : {};
  if (e.remote === true && e.retryable !== true) return err instanceof Error ? err : new Error(String(err));
  console.warn(`lock object ${name} unavailable:`, err);
  return new ProblemError(
    "unavailable",
    "the lock object restarted or is busy; retry, re-polling with the same leaseId keeps a waiter's place",
    { extra: { retryAfterMs: 100 }, headers: { "retry-after": "1" } },
  );
}

function answer(name: string, outcome: AcquireAnswer | RenewAnswer | ReleaseAnswer): Response {
  switch (outcome.kind) {
    case "granted":
      return Response.json(leaseView(name, outcome));
    case "released":
      return Response.json(
        outcome.holdCount === null ? { released: true } : { released: true, holdCount: outcome.holdCount },
      );
    case "cancelled":
      return Response.json({ released: false, cancelled: true });
    case "rejected":
      return rejection(outcome);
    default:
      return assertNever(outcome);
  }
}

function rejection(r: Extract<AcquireAnswer | RenewAnswer | ReleaseAnswer, { kind: "rejected" }>): Response {
  switch (r.code) {
    case "lock_held":
    case "lock_delay":
    case "waiters_ahead": {
      const detail =
        r.position !== null
          ? `still queued at position ${r.position}; re-poll with leaseId ${r.leaseId} to keep the place`
          : r.code === "lock_delay"
            ? "the lock's last holder was lost; it stays closed for its lock-delay"
            : r.code === "lock_held"
              ? "the lock is held; retry after retryAfterMs, or wait with waitMs"
              : "earlier requests are waiting for this lock; retry after retryAfterMs, or wait with waitMs";
      return problem(r.code, detail, {
        extra: {
          retryAfterMs: r.retryAfterMs,
          holders: r.holders,
          holderCount: r.holderCount,
          ...(r.position === null ? {} : { position: r.position, leaseId: r.leaseId }),
        },
        headers: { "retry-after": String(Math.ceil(r.retryAfterMs / 1000)) },
      });
    }
    case "not_held":
      return problem("not_held", `this leaseId does not hold the lock (${r.reason})`, {
        extra: r.by === null ? { reason: r.reason } : { reason: r.reason, by: r.by },
      });
    case "lease_ended":
      return problem("lease_ended", `this leaseId was already used and ended (${r.reason}); use a new one`, {
        extra: { reason: r.reason },
      });
    case "limit_mismatch":
      return problem("limit_mismatch", `the lock is in use with limit ${r.limit}`, {
        extra: { limit: r.limit },
      });
    case "reentrant_mismatch":
      return problem(
        "reentrant_mismatch",
        `this holder's lease is ${r.mode} with ${r.permits} permit(s); a reentrant acquire must ask for the same`,
        { extra: { mode: r.mode, permits: r.permits } },
      );
    case "too_many_holds":
      return problem("too_many_holds", `a lease may count at most ${r.holdCount} reentrant holds`, {
        extra: { holdCount: r.holdCount },
      });
    case "upgrade_not_supported":
      return problem(
        "upgrade_not_supported",
        "a shared lease cannot become exclusive (two upgraders would deadlock); release and acquire exclusive",
      );
    case "too_many_waiters":
      return problem("too_many_waiters", "this lock's queue is full; retry later", {
        extra: { retryAfterMs: r.retryAfterMs },
        headers: { "retry-after": String(Math.ceil(r.retryAfterMs / 1000)) },
      });
    case "wait_cancelled":
      return problem("wait_cancelled", "this wait was cancelled by a release of its leaseId");
    default:
      return assertNever(r);
  }
}

function leaseView(name: string, { lease }: Grant): Lease {
  return { name, ...lease };
}

function newLeaseId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

function assertNever(x: never): never {
  throw new Error(`unhandled ${JSON.stringify(x)}`);
}
