/**
 * The HTTP API v1: the routes of routes.ts, each registered with its handler (call the lock object over
 * RPC, map its answer with answers.ts), plus what every answer shares: the auth-off marker, CORS, no-store,
 * 405 for a known path with another method, and problem+json for every error. No lock rules live here.
 * Handlers take the lock name only from `c.var.lockName`, which auth set after its scope check.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { methodNotAllowed } from "hono/method-not-allowed";
import { DIRECTORY_REPORT_DELAY_MS } from "../client/src/protocol.ts";
import { type LockObject, SESSION_HEADER } from "../durable-objects/lock-object.ts";
import { leaseOf, lockFailure, lockViewOf, problemOf, releasedOf } from "./answers.ts";
import { markInsecure } from "./auth.ts";
import { cors } from "./cors.ts";
import { listDirectory } from "./directory.ts";
import { ALL_LOCKS, inScope, ROLES, scopedPrefixes } from "./keys.ts";
import { ProblemError, problem } from "./problem.ts";
import { logJson, requestLog } from "./request-log.ts";
import {
  acquireRoute,
  directoryRoute,
  eventsRoute,
  forceReleaseRoute,
  healthRoute,
  inspectRoute,
  releaseRoute,
  renewRoute,
  sessionRoute,
  tokenRoute,
  uiDirectoryRoute,
  uiLockRoute,
  uiRedirectRoute,
} from "./routes.ts";
import { describeIssue, describeParamIssue } from "./schemas.ts";
import type { AppEnv } from "./settings.ts";
import { newNonce, pageHeaders, renderPage } from "./ui/pages.ts";

export const app = new OpenAPIHono<AppEnv>({
  // Every failed check of a body, a query or a path becomes the problem of its first field at fault.
  defaultHook: (result) => {
    if (!result.success) {
      const { code, detail } =
        result.target === "query" || result.target === "param"
          ? describeParamIssue(result.error)
          : describeIssue(result.error, "data" in result ? result.data : undefined);
      throw new ProblemError(code, detail);
    }
  },
});

app.use(requestLog());
app.use(markInsecure());
app.use(cors());
app.use("/v1/*", async function noStore(c, next) {
  await next();
  if (c.res.status === 101) return; // a session's upgrade: its headers are the runtime's
  // Leases carry their holder's secret leaseId: no cache may keep them, no browser may sniff them.
  c.header("cache-control", "no-store");
  c.header("x-content-type-options", "nosniff");
});
app.use(
  methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) =>
      problem("method_not_allowed", `${c.req.method} is not allowed here; use ${methods.join(", ")}`, {
        headers: { allow: methods.join(", ") },
      }),
  }),
);

app.openapi(healthRoute, (c) => c.json({ ok: true as const }, 200));

app.openapi(acquireRoute, async (c) => {
  const name = c.var.lockName;
  const body = c.req.valid("json");
  const answer = await callLock(c, name, (lock) =>
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
      session: null,
      repoll: body.repoll,
      lockDelayMs: body.lockDelayMs,
    }),
  );
  if (answer.kind === "rejected") throw problemOf(answer);
  return c.json(leaseOf(name, answer), 200);
});

app.openapi(renewRoute, async (c) => {
  const name = c.var.lockName;
  const { leaseId, ttlMs, mode } = c.req.valid("json");
  const answer = await callLock(c, name, (lock) =>
    lock.renew({ leaseId, ttlMs: ttlMs ?? null, mode: mode ?? null }),
  );
  if (answer.kind === "rejected") throw problemOf(answer);
  return c.json(leaseOf(name, answer), 200);
});

app.openapi(releaseRoute, async (c) => {
  const name = c.var.lockName;
  const { leaseId } = c.req.valid("json");
  const answer = await callLock(c, name, (lock) => lock.release({ leaseId }));
  if (answer.kind === "rejected") throw problemOf(answer);
  return c.json(releasedOf(answer), 200);
});

app.openapi(forceReleaseRoute, async (c) => {
  const name = c.var.lockName;
  const by = c.var.principal.name;
  const { count } = await callLock(c, name, (lock) => lock.forceRelease({ by }));
  // The audit record: who ended which leases. The lock's history also keeps `by` with each ended lease.
  logJson("info", { event: "force-release", requestId: c.var.requestId, lock: name, by, count });
  return c.json({ name, forced: true as const, count, by }, 200);
});

app.openapi(inspectRoute, async (c) => {
  const name = c.var.lockName;
  const { after } = c.req.valid("query");
  const snap = await callLock(c, name, (lock) => lock.inspect({ after: after ?? 0 }));
  return c.json(lockViewOf(name, snap), 200);
});

app.openapi(eventsRoute, async (c) => {
  const name = c.var.lockName;
  const { since, before, limit } = c.req.valid("query");
  const page = await callLock(c, name, (lock) =>
    lock.events({ since: since ?? 0, before: before ?? null, limit }),
  );
  return c.json({ name, ...page }, 200);
});

app.openapi(tokenRoute, async (c) => {
  const name = c.var.lockName;
  const { token } = c.req.valid("param");
  const check = await callLock(c, name, (lock) => lock.checkToken({ token }));
  return c.json({ name, ...check }, 200);
});

app.openapi(directoryRoute, async (c) => {
  const { prefix, after, limit } = c.req.valid("query");
  const { principal } = c.var;
  const prefixes = scopedPrefixes(principal, prefix);
  if (prefixes.length === 0) {
    throw new ProblemError(
      "forbidden_scope",
      `key "${principal.name}" may not list locks under "${prefix}": its names start with ${principal.prefixes
        .map((p) => JSON.stringify(p))
        .join(" or ")}`,
    );
  }
  const page = await listDirectory(c.env, { prefixes, after: after ?? "", limit });
  return c.json(
    {
      prefix,
      // Checked again here: a listing never names a lock outside the key's scope, whatever a shard holds.
      locks: page.locks.filter((l) => inScope(principal, l.name)),
      nextAfter: page.nextAfter,
      lagMs: DIRECTORY_REPORT_DELAY_MS,
      now: Date.now(),
    },
    200,
  );
});

app.openapi(uiDirectoryRoute, async (c) => {
  const nonce = newNonce();
  return c.body(await renderPage({ kind: "directory" }, nonce), 200, pageHeaders(nonce));
});

app.openapi(uiLockRoute, async (c) => {
  const nonce = newNonce();
  const { name } = c.req.valid("param");
  return c.body(await renderPage({ kind: "lock", name }, nonce), 200, pageHeaders(nonce));
});

app.openapi(uiRedirectRoute, (c) => c.redirect("/ui/", 308));

app.openapi(sessionRoute, async (c) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new ProblemError("upgrade_required", "a session is a WebSocket: send Upgrade: websocket");
  }
  const name = c.var.lockName;
  const { principal } = c.var;
  // A request of the Worker's own making: the object learns who opened the session from this header only.
  const headers = new Headers({ upgrade: "websocket" });
  const offered = c.req.header("sec-websocket-protocol");
  if (offered !== undefined) headers.set("sec-websocket-protocol", offered);
  headers.set(SESSION_HEADER, JSON.stringify({ principal: principal.name, role: principal.role }));
  const stub = c.env.LOCK.getByName(name);
  try {
    return await stub.fetch(
      new Request(`https://lock.internal/${encodeURIComponent(name)}/session`, { headers }),
    );
  } catch (err) {
    throw lockFailure(name, err);
  }
});

app.doc31("/openapi.json", {
  openapi: "3.1.0",
  info: {
    title: "edgelock",
    version: "1",
    description:
      "A lock service on Cloudflare Durable Objects: leases, fencing tokens, FIFO waiting. " +
      "Every error is an RFC 9457 application/problem+json body with a stable `code` " +
      "(see `x-error-codes` and docs/api.md). Keys are scoped to lock-name prefixes " +
      `("${ALL_LOCKS}" for all) and have a role: ${ROLES.join(" < ")}.`,
  },
  security: [{ bearerAuth: [] }],
});
app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
  type: "http",
  scheme: "bearer",
  description:
    "An edgelock API key: `Authorization: Bearer <key>`. The server stores only its SHA-256 (docs/security.md).",
});

app.notFound((c) => problem("not_found", `no route for ${c.req.method} ${c.req.path}`));

app.onError((err, c) => {
  if (err instanceof ProblemError) {
    c.set("problemCode", err.code);
    return err.getResponse();
  }
  c.set("problemCode", "internal");
  logJson("error", {
    event: "unhandled-error",
    requestId: c.get("requestId"),
    method: c.req.method,
    path: c.req.path,
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    stack: err instanceof Error ? err.stack : undefined,
  });
  return problem(
    "internal",
    "the server failed to handle this request; it changed nothing it could not keep",
  );
});

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

function newLeaseId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}
