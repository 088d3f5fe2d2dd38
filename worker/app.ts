/**
 * The HTTP API v1: the routes of routes.ts, each registered with its handler (call the lock object over
 * RPC, map its answer with answers.ts), plus what every answer shares: the auth-off marker, CORS, no-store,
 * 405 for a known path with another method, and problem+json for every error. No lock rules live here.
 * Handlers take the lock name only from `c.var.lockName`, which auth set after its scope check.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { methodNotAllowed } from "hono/method-not-allowed";
import { DIRECTORY_REPORT_DELAY_MS } from "../client/src/protocol.ts";
import { SESSION_HEADER } from "../durable-objects/lock-object.ts";
import { setAnswerHeader } from "./answer-header.ts";
import { lockFailure } from "./answers.ts";
import { markInsecure } from "./auth.ts";
import { cors } from "./cors.ts";
import { listDirectory } from "./directory.ts";
import { ALL_LOCKS, inScope, ROLES, scopedPrefixes } from "./keys.ts";
import {
  acquireLock,
  checkTokenOf,
  eventsOf,
  forceReleaseLock,
  inspectLock,
  releaseLock,
  renewLock,
} from "./operations.ts";
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
  // Leases carry their holder's secret leaseId: no cache may keep them, no browser may sniff them.
  setAnswerHeader(c, "cache-control", "no-store");
  setAnswerHeader(c, "x-content-type-options", "nosniff");
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

app.openapi(acquireRoute, async (c) =>
  c.json(await acquireLock(c.env, c.var.lockName, c.var.principal.name, c.req.valid("json")), 200),
);

app.openapi(renewRoute, async (c) =>
  c.json(await renewLock(c.env, c.var.lockName, c.req.valid("json")), 200),
);

app.openapi(releaseRoute, async (c) =>
  c.json(await releaseLock(c.env, c.var.lockName, c.req.valid("json")), 200),
);

app.openapi(forceReleaseRoute, async (c) =>
  c.json(await forceReleaseLock(c.env, c.var.lockName, c.var.principal.name, c.var.requestId), 200),
);

app.openapi(inspectRoute, async (c) =>
  c.json(await inspectLock(c.env, c.var.lockName, c.req.valid("query").after ?? 0), 200),
);

app.openapi(eventsRoute, async (c) => {
  const { since, before, limit } = c.req.valid("query");
  return c.json(
    await eventsOf(c.env, c.var.lockName, { since: since ?? 0, before: before ?? null, limit }),
    200,
  );
});

app.openapi(tokenRoute, async (c) =>
  c.json(await checkTokenOf(c.env, c.var.lockName, c.req.valid("param").token), 200),
);

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
