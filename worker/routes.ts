/**
 * The API's routes, each defined once: method, path, the permission it needs, its request schemas, its
 * answers and every problem code it can answer with. app.ts registers each with its handler, and the same
 * definition validates the request (through @hono/zod-openapi), answers 405 for other methods on its path,
 * and becomes its OpenAPI operation. The lock answers' codes are checked against the lock object's answer
 * types, so a new rejection is a compile error here until it is documented.
 */
import { createRoute } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { DIRECTORY_REPORT_DELAY_MS, type ErrorCode, PROBLEMS } from "../client/src/protocol.ts";
import type { AcquireAnswer, ReleaseAnswer, RenewAnswer } from "../durable-objects/lock-object.ts";
import type { RejectionCode } from "./answers.ts";
import { auth } from "./auth.ts";
import { readJsonBody } from "./body.ts";
import { PERMISSIONS, type Permission } from "./keys.ts";
import {
  ACQUIRE_RULE_CODES,
  acquireSchema,
  directoryQuerySchema,
  eventsQuerySchema,
  inputCodes,
  inspectQuerySchema,
  lockNameSchema,
  releaseSchema,
  renewSchema,
  tokenParamSchema,
} from "./schemas.ts";
import type { AppEnv } from "./settings.ts";
import {
  forceReleaseResultSchema,
  healthSchema,
  leaseSchema,
  lockDirectorySchema,
  lockEventsSchema,
  lockViewSchema,
  problemSchema,
  releaseResponseSchema,
  tokenCheckSchema,
} from "./wire.ts";

/** A list naming every member of `T`: one left out is a compile error (`missing` says which). */
const every =
  <T extends ErrorCode>() =>
  <const L extends readonly T[]>(
    list: L & ([Exclude<T, L[number]>] extends [never] ? unknown : { missing: Exclude<T, L[number]> }),
  ): L =>
    list;

const ACQUIRE_CODES = every<RejectionCode<AcquireAnswer>>()([
  "lock_held",
  "lock_delay",
  "waiters_ahead",
  "lease_ended",
  "limit_mismatch",
  "reentrant_mismatch",
  "too_many_holds",
  "too_many_waiters",
  "wait_cancelled",
]);
const RENEW_CODES = every<RejectionCode<RenewAnswer>>()(["not_held", "upgrade_not_supported"]);
const RELEASE_CODES = every<RejectionCode<ReleaseAnswer>>()(["not_held"]);

/** What any route that needs a key can answer, before it touches a lock. */
const AUTH_CODES: ErrorCode[] = [
  "unauthorized",
  "auth_not_configured",
  "invalid_name",
  "forbidden_scope",
  "forbidden",
  "unavailable",
  "internal",
];
/** What a malformed query or path parameter answers (other than the lock name). */
const QUERY_CODES: ErrorCode[] = ["invalid_query"];
/** What reading a JSON body can answer, before its fields are checked. */
const BODY_CODES: ErrorCode[] = [
  "unsupported_media_type",
  "body_too_large",
  "malformed_json",
  "invalid_body",
];

const LEASE_ID = "client-chosen-id-123456";
const leaseExample = {
  name: "billing:invoices",
  leaseId: LEASE_ID,
  owner: "billing-cron@host-3",
  token: 42,
  ttlMs: 30000,
  expiresAt: 1795349615855,
  validForMs: 30000,
  mode: "exclusive",
  permits: 1,
  holdCount: 1,
  limit: 1,
} as const;

/** A route on a lock: the key it needs (checked first), and the JSON body it reads, if any. */
function onLock(permission: Permission, withBody: boolean, fromSubprotocol = false) {
  const middleware: MiddlewareHandler<AppEnv>[] = [auth({ permission, fromSubprotocol })];
  if (withBody) middleware.push(readJsonBody());
  return {
    middleware,
    "x-required-role": PERMISSIONS[permission],
    security: [{ bearerAuth: [] }],
  };
}

const lockParams = z.object({
  name: lockNameSchema.meta({
    description: "the lock name; a key may touch only names that start with one of its prefixes",
  }),
});

function jsonBody<S extends z.ZodType>(schema: S, example: z.input<S>) {
  return { required: true, content: { "application/json": { schema, example } } };
}

function ok<S extends z.ZodType>(schema: S, description: string, example: z.output<S>) {
  return { 200: { description, content: { "application/json": { schema, example } } } };
}

/** The problem answers of a route, one per status, each listing its codes (`x-error-codes`). */
function problems(...lists: (readonly ErrorCode[])[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(lists.flat())) {
    const { status } = PROBLEMS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => [
      status,
      {
        description: codes.map((c) => PROBLEMS[c].title).join("; "),
        "x-error-codes": codes,
        headers:
          status === 401
            ? { "WWW-Authenticate": { schema: { type: "string" }, description: 'Bearer realm="edgelock"' } }
            : {
                "Retry-After": {
                  schema: { type: "integer" },
                  description: "seconds (when the code has one)",
                },
              },
        content: {
          "application/problem+json": {
            schema: problemSchema,
            examples: Object.fromEntries(codes.map((c) => [c, { value: problemExample(c) }])),
          },
        },
      },
    ]),
  );
}

/** One example problem per code, as the server would send it; the tests validate them. */
export function problemExample(code: ErrorCode): Record<string, unknown> {
  return {
    type: `https://github.com/edgelock/edgelock/blob/main/docs/api.md#${code}`,
    title: PROBLEMS[code].title,
    status: PROBLEMS[code].status,
    detail: `an example ${code} problem`,
    code,
    ...(code === "lock_held" ? { retryAfterMs: 1200, holders: [], holderCount: 0 } : {}),
    ...(code === "not_held" ? { reason: "expired" } : {}),
  };
}

export const acquireRoute = createRoute({
  method: "post",
  path: "/v1/locks/{name}/acquire",
  operationId: "acquire",
  summary: "Acquire a lease, waiting up to waitMs in a FIFO queue",
  ...onLock("lock", true),
  request: {
    params: lockParams,
    body: jsonBody(acquireSchema, {
      ttlMs: 30000,
      waitMs: 10000,
      owner: "billing-cron@host-3",
      leaseId: LEASE_ID,
    }),
  },
  responses: {
    ...ok(leaseSchema, "the lease", leaseExample),
    ...problems(AUTH_CODES, BODY_CODES, inputCodes(acquireSchema, ACQUIRE_RULE_CODES), ACQUIRE_CODES),
  },
});

export const renewRoute = createRoute({
  method: "post",
  path: "/v1/locks/{name}/renew",
  operationId: "renew",
  summary: "Extend a held lease (and optionally downgrade it to shared)",
  ...onLock("lock", true),
  request: { params: lockParams, body: jsonBody(renewSchema, { leaseId: LEASE_ID, ttlMs: 30000 }) },
  responses: {
    ...ok(leaseSchema, "the renewed lease", leaseExample),
    ...problems(AUTH_CODES, BODY_CODES, inputCodes(renewSchema), RENEW_CODES),
  },
});

export const releaseRoute = createRoute({
  method: "post",
  path: "/v1/locks/{name}/release",
  operationId: "release",
  summary: "Release a held lease (or one reentrant hold), or leave the queue",
  ...onLock("lock", true),
  request: { params: lockParams, body: jsonBody(releaseSchema, { leaseId: LEASE_ID }) },
  responses: {
    ...ok(releaseResponseSchema, "released (or, for a queued leaseId, cancelled)", {
      released: true,
      holdCount: 0,
    }),
    ...problems(AUTH_CODES, BODY_CODES, inputCodes(releaseSchema), RELEASE_CODES),
  },
});

export const forceReleaseRoute = createRoute({
  method: "post",
  path: "/v1/locks/{name}/force-release",
  operationId: "forceRelease",
  summary: "End every lease of a stuck lock and grant the next waiter (admin keys only; any body is ignored)",
  ...onLock("force", false),
  request: { params: lockParams },
  responses: {
    ...ok(
      forceReleaseResultSchema,
      "the leases were ended; `by` names the admin key, as the audit log line does",
      { name: "billing:invoices", forced: true, count: 1, by: "ops-admin" },
    ),
    ...problems(AUTH_CODES),
  },
});

export const inspectRoute = createRoute({
  method: "get",
  path: "/v1/locks/{name}",
  operationId: "inspect",
  summary: "Inspect a lock: holders (never their leaseIds), queue length, last fencing token",
  ...onLock("inspect", false),
  request: { params: lockParams, query: inspectQuerySchema },
  responses: {
    ...ok(lockViewSchema, "the lock's state, with one page of holders", {
      name: "billing:invoices",
      held: true,
      kind: "mutex",
      holders: [
        { owner: "a", token: 3, expiresAt: 1795349615855, mode: "exclusive", permits: 1, holdCount: 1 },
      ],
      holderCount: 1,
      nextAfter: null,
      waiters: 2,
      queue: [
        { owner: "b", mode: "exclusive", permits: 1, waitingSince: 1795349585855 },
        { owner: null, mode: "exclusive", permits: 1, waitingSince: 1795349590855 },
      ],
      lastToken: 3,
      limit: 1,
      permitsInUse: 1,
      lockDelayUntil: null,
    }),
    ...problems(AUTH_CODES, QUERY_CODES),
  },
});

export const sessionRoute = createRoute({
  method: "get",
  path: "/v1/locks/{name}/session",
  operationId: "session",
  summary:
    "Open a WebSocket session with the lock (Upgrade: websocket): acquire, renew, release and watch as JSON " +
    "frames; everything it holds or waits for ends when it closes. Frames: docs/api.md#sessions",
  description:
    "A read key may watch; acquire, renew and release need a write key. Browsers, which cannot set headers " +
    "on a WebSocket, offer the subprotocols `edgelock.v1` and `bearer.<key>` instead of the Authorization header.",
  ...onLock("inspect", false, true),
  // The codes an `error` frame can carry, once the session is open.
  "x-frame-error-codes": [
    ...new Set([
      "invalid_frame",
      "malformed_json",
      "body_too_large",
      "forbidden",
      ...inputCodes(acquireSchema, ACQUIRE_RULE_CODES),
      ...inputCodes(renewSchema),
      ...ACQUIRE_CODES,
      ...RENEW_CODES,
      ...RELEASE_CODES,
    ]),
  ],
  request: { params: lockParams },
  responses: {
    101: { description: "the session is open: JSON text frames both ways (docs/api.md#sessions)" },
    ...problems(AUTH_CODES, ["upgrade_required", "too_many_sessions"]),
  },
});

export const healthRoute = createRoute({
  method: "get",
  path: "/healthz",
  operationId: "health",
  summary: "Liveness; needs no key",
  security: [],
  responses: { ...ok(healthSchema, "the Worker is up", { ok: true }), ...problems(["internal"]) },
});

const eventExample = {
  id: 7,
  at: 1795349585855,
  kind: "granted",
  owner: "billing-cron@host-3",
  token: 42,
  mode: "exclusive",
  permits: 1,
  holdCount: 1,
  waitMs: 1200,
  holdMs: null,
  expiresAt: 1795349615855,
  renewals: null,
  by: null,
} as const;

export const eventsRoute = createRoute({
  method: "get",
  path: "/v1/locks/{name}/events",
  operationId: "events",
  summary:
    "The lock's history, newest first: grants, renewals, releases, expiries, force-releases and waits " +
    "that ended, with wait and hold times (never a leaseId)",
  description:
    "A lock keeps its last 1,000 events, for at most 7 days. A run of renewals of one lease is one event " +
    "(`renewals` counts them). Page on to older events with `?before=<nextBefore>`.",
  ...onLock("inspect", false),
  request: { params: lockParams, query: eventsQuerySchema },
  responses: {
    ...ok(lockEventsSchema, "one page of events, newest first", {
      name: "billing:invoices",
      events: [
        {
          ...eventExample,
          id: 8,
          at: 1795349645855,
          kind: "released",
          holdCount: 0,
          waitMs: null,
          holdMs: 60000,
          expiresAt: null,
        },
        eventExample,
      ],
      nextBefore: 7,
      now: 1795349650000,
    }),
    ...problems(AUTH_CODES, QUERY_CODES),
  },
});

export const tokenRoute = createRoute({
  method: "get",
  path: "/v1/locks/{name}/tokens/{token}",
  operationId: "checkToken",
  summary:
    "Whether a fencing token belongs to a lease that holds the lock now, for resources that cannot store " +
    "a fence (Chubby's CheckSequencer)",
  description:
    "Answers for this instant only: the lease may end right after. A resource that can store the highest " +
    "token it has seen, and refuse lower ones, needs no call at all.",
  ...onLock("inspect", false),
  request: { params: lockParams.extend({ token: tokenParamSchema }) },
  responses: {
    ...ok(tokenCheckSchema, "the token's standing now", {
      name: "billing:invoices",
      token: 42,
      held: true,
      holder: {
        owner: "billing-cron@host-3",
        token: 42,
        expiresAt: 1795349615855,
        mode: "exclusive",
        permits: 1,
        holdCount: 1,
      },
      lastToken: 42,
    }),
    ...problems(AUTH_CODES, QUERY_CODES),
  },
});

export const directoryRoute = createRoute({
  method: "get",
  path: "/v1/locks",
  operationId: "listLocks",
  summary: "The locks under a name prefix that are held or waited for now, within the key's prefixes",
  description:
    "An index the locks report to after their changes, so it lags them by a moment (`lagMs`); a lock's own " +
    "GET is the truth. Names outside the key's prefixes are never listed: a narrower key sees its own " +
    "prefixes under the one asked for, and a prefix outside all of them is 403 forbidden_scope.",
  middleware: [auth({ permission: "inspect", lock: false })],
  "x-required-role": PERMISSIONS.inspect,
  security: [{ bearerAuth: [] }],
  request: { query: directoryQuerySchema },
  responses: {
    ...ok(lockDirectorySchema, "one page of active locks, in name order", {
      prefix: "billing:",
      locks: [
        {
          name: "billing:invoices",
          kind: "mutex",
          holderCount: 1,
          waiters: 2,
          since: 1795349585855,
          reportedAt: 1795349586001,
          until: 1795349645855,
        },
      ],
      nextAfter: null,
      lagMs: DIRECTORY_REPORT_DELAY_MS,
      now: 1795349590000,
    }),
    ...problems(
      AUTH_CODES.filter((c) => c !== "invalid_name"),
      QUERY_CODES,
    ),
  },
});

function page(description: string) {
  return {
    200: { description, content: { "text/html": { schema: z.string() } } },
  };
}

/** The live pages need no key to load: they hold no data, and ask for the key in the page (kept in sessionStorage). */
export const uiDirectoryRoute = createRoute({
  method: "get",
  path: "/ui/",
  operationId: "uiDirectory",
  summary: "The live page of active locks, searchable by prefix (HTML, for people)",
  security: [],
  responses: {
    ...page("the page; it reads GET /v1/locks with the key typed into it"),
    ...problems(["internal"]),
  },
});

export const uiRedirectRoute = createRoute({
  method: "get",
  path: "/ui",
  operationId: "uiRedirect",
  summary: "Redirects to /ui/",
  security: [],
  responses: { 308: { description: "to /ui/" }, ...problems(["internal"]) },
});

export const uiLockRoute = createRoute({
  method: "get",
  path: "/ui/locks/{name}",
  operationId: "uiLock",
  summary: "The live page of one lock: holders, queue, recent events, a timeline of holds (HTML, for people)",
  security: [],
  request: { params: lockParams },
  responses: {
    ...page("the page; it watches the lock over a session and reads its events, with the key typed into it"),
    ...problems(["invalid_name", "internal"]),
  },
});

/** Every route above, for the tests that check each is served, documented, and its examples valid. */
export const ROUTES = [
  acquireRoute,
  renewRoute,
  releaseRoute,
  forceReleaseRoute,
  inspectRoute,
  eventsRoute,
  tokenRoute,
  directoryRoute,
  sessionRoute,
  healthRoute,
  uiDirectoryRoute,
  uiRedirectRoute,
  uiLockRoute,
];
