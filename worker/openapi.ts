/**
 * The OpenAPI 3.1 document of API v1, served at `GET /openapi.json`. Request bodies are converted from the
 * very zod schemas that validate them (schemas.ts) with zod's own `z.toJSONSchema`; responses are zod
 * schemas declared here against the wire types of client/src/protocol.ts, so tests can check real
 * answers and every documented example against them. It routes nothing: app.ts does.
 */
import { z } from "zod";
import {
  ERROR_CODES,
  type ErrorCode,
  type HolderView,
  LEASE_ID_PATTERN,
  type Lease,
  LOCK_MODES,
  type LockView,
  MAX_BODY_BYTES,
  NOT_HELD_REASONS,
  PROBLEM_TYPE_BASE,
} from "../client/src/protocol.ts";
import { ALL_LOCKS, ROLES } from "./keys.ts";
import { acquireSchema, lockNameSchema, releaseSchema, renewSchema } from "./schemas.ts";

const mode = z.enum(LOCK_MODES);

export const holderViewSchema = z.strictObject({
  owner: z.string().nullable(),
  token: z.int().positive(),
  expiresAt: z.int(),
  mode,
  permits: z.int().positive(),
  holdCount: z.int().positive(),
}) satisfies z.ZodType<HolderView>;

export const leaseSchema = z.strictObject({
  name: lockNameSchema,
  leaseId: z.string().regex(LEASE_ID_PATTERN),
  owner: z.string().nullable(),
  token: z.int().positive(),
  ttlMs: z.int().positive(),
  expiresAt: z.int(),
  validForMs: z.int().nonnegative(),
  mode,
  permits: z.int().positive(),
  holdCount: z.int().positive(),
  limit: z.int().positive(),
}) satisfies z.ZodType<Lease>;

export const lockViewSchema = z.strictObject({
  name: lockNameSchema,
  held: z.boolean(),
  kind: z.enum(["mutex", "rwlock", "semaphore"]),
  holders: z.array(holderViewSchema),
  holderCount: z.int().nonnegative(),
  nextAfter: z.int().positive().nullable(),
  waiters: z.int().nonnegative(),
  lastToken: z.int().nonnegative(),
  limit: z.int().positive(),
  permitsInUse: z.int().nonnegative(),
  lockDelayUntil: z.int().nullable(),
}) satisfies z.ZodType<LockView>;

export const releaseResponseSchema = z.strictObject({
  released: z.boolean(),
  cancelled: z.literal(true).optional(),
  holdCount: z.int().nonnegative().optional(),
});

export const forceReleaseResultSchema = z.strictObject({
  name: lockNameSchema,
  forced: z.literal(true),
  /** Leases that were ended. */
  count: z.int().nonnegative(),
  /** The name of the admin key that did it. */
  by: z.string(),
});
export type ForceReleaseResult = z.output<typeof forceReleaseResultSchema>;

export const healthSchema = z.strictObject({ ok: z.literal(true) });

const errorCodes = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

export const problemSchema = z.looseObject({
  type: z.string().startsWith(PROBLEM_TYPE_BASE),
  title: z.string(),
  status: z.int().min(400).max(599),
  detail: z.string(),
  code: z.enum(errorCodes),
  retryAfterMs: z.int().nonnegative().optional(),
  reason: z.enum(NOT_HELD_REASONS).optional(),
  holders: z.array(holderViewSchema).optional(),
  holderCount: z.int().nonnegative().optional(),
  position: z.int().positive().optional(),
  leaseId: z.string().regex(LEASE_ID_PATTERN).optional(),
  limit: z.int().positive().optional(),
});

type Schema = z.ZodType;
type Example = { schema: Schema; value: unknown };

/** One documented operation: the source of both the document and the example checks in the tests. */
export interface RouteDoc {
  method: "get" | "post";
  /** OpenAPI path template, `{name}` for the lock name. */
  path: string;
  summary: string;
  /** The role a key needs, or null for routes that need no key. */
  role: (typeof ROLES)[number] | null;
  request?: { schema: Schema; ref: string; example: unknown };
  /** Query parameters, each optional. */
  query?: { name: string; description: string; schema: Schema }[];
  ok: { schema: Schema; ref: string; description: string; example: unknown };
  /** Problem codes this route can answer with, beyond those of its role and body. */
  codes: ErrorCode[];
}

const AUTH_CODES: ErrorCode[] = [
  "unauthorized",
  "auth_not_configured",
  "invalid_name",
  "forbidden_scope",
  "forbidden",
  "unavailable",
  "internal",
];
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
};

export const ROUTE_DOCS: RouteDoc[] = [
  {
    method: "post",
    path: "/v1/locks/{name}/acquire",
    summary: "Acquire a lease, waiting up to waitMs in a FIFO queue",
    role: "write",
    request: {
      schema: acquireSchema,
      ref: "AcquireRequest",
      example: { ttlMs: 30000, waitMs: 10000, owner: "billing-cron@host-3", leaseId: LEASE_ID },
    },
    ok: { schema: leaseSchema, ref: "Lease", description: "the lease", example: leaseExample },
    codes: [
      "lock_held",
      "lock_delay",
      "limit_mismatch",
      "lease_ended",
      "wait_cancelled",
      "too_many_waiters",
      "invalid_ttl",
      "invalid_wait",
      "invalid_owner",
      "invalid_lease_id",
      "invalid_mode",
      "invalid_limit",
      "invalid_permits",
      "permits_exceed_limit",
      "invalid_reentrant",
      "holder_key_required",
      "invalid_holder_key",
      "invalid_repoll",
      "invalid_lock_delay",
    ],
  },
  {
    method: "post",
    path: "/v1/locks/{name}/renew",
    summary: "Extend a held lease (and optionally downgrade it to shared)",
    role: "write",
    request: { schema: renewSchema, ref: "RenewRequest", example: { leaseId: LEASE_ID, ttlMs: 30000 } },
    ok: { schema: leaseSchema, ref: "Lease", description: "the renewed lease", example: leaseExample },
    codes: ["not_held", "upgrade_not_supported", "invalid_lease_id", "invalid_ttl", "invalid_mode"],
  },
  {
    method: "post",
    path: "/v1/locks/{name}/release",
    summary: "Release a held lease, or leave the queue",
    role: "write",
    request: { schema: releaseSchema, ref: "ReleaseRequest", example: { leaseId: LEASE_ID } },
    ok: {
      schema: releaseResponseSchema,
      ref: "ReleaseResponse",
      description: "released (or, for a queued leaseId, cancelled)",
      example: { released: true, holdCount: 0 },
    },
    codes: ["not_held", "invalid_lease_id"],
  },
  {
    method: "post",
    path: "/v1/locks/{name}/force-release",
    summary:
      "End every lease of a stuck lock and grant the next waiter (admin keys only; any body is ignored)",
    role: "admin",
    ok: {
      schema: forceReleaseResultSchema,
      ref: "ForceReleaseResult",
      description: "the leases were ended; `by` names the admin key, as the audit log line does",
      example: { name: "billing:invoices", forced: true, count: 1, by: "ops-admin" },
    },
    codes: [],
  },
  {
    method: "get",
    path: "/v1/locks/{name}",
    summary: "Inspect a lock: holders (never their leaseIds), queue length, last fencing token",
    role: "read",
    query: [
      {
        name: "after",
        description: "page on through the holders: the `nextAfter` of the previous answer",
        schema: z.int().positive(),
      },
    ],
    ok: {
      schema: lockViewSchema,
      ref: "LockView",
      description: "the lock's state",
      example: {
        name: "billing:invoices",
        held: true,
        kind: "mutex",
        holders: [
          { owner: "a", token: 3, expiresAt: 1795349615855, mode: "exclusive", permits: 1, holdCount: 1 },
        ],
        holderCount: 1,
        nextAfter: null,
        waiters: 2,
        lastToken: 3,
        limit: 1,
        permitsInUse: 1,
        lockDelayUntil: null,
      },
    },
    codes: ["invalid_query"],
  },
  {
    method: "get",
    path: "/healthz",
    summary: "Liveness; needs no key",
    role: null,
    ok: { schema: healthSchema, ref: "Health", description: "the Worker is up", example: { ok: true } },
    codes: [],
  },
];

/** Every problem code a route can answer with. */
export function routeCodes(route: RouteDoc): ErrorCode[] {
  const codes = new Set<ErrorCode>(route.codes);
  if (route.role !== null) for (const c of AUTH_CODES) codes.add(c);
  if (route.request !== undefined) for (const c of BODY_CODES) codes.add(c);
  if (route.role === null) codes.add("internal");
  return [...codes];
}

/** One example problem per code, as the server would send it; the tests validate them. */
export function problemExample(code: ErrorCode): Record<string, unknown> {
  return {
    type: PROBLEM_TYPE_BASE + code,
    title: code,
    status: ERROR_CODES[code],
    detail: `an example ${code} problem`,
    code,
    ...(code === "lock_held" ? { retryAfterMs: 1200, holders: [] } : {}),
    ...(code === "not_held" ? { reason: "expired" } : {}),
  };
}

type Json = Record<string, unknown>;

function jsonSchema(schema: Schema, io: "input" | "output"): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, target: "draft-2020-12" }) as Json;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

let built: Json | undefined;

/** The document; built once per isolate, since it depends on nothing but code. */
export function openApiDocument(): Json {
  built ??= build();
  return built;
}

function build(): Json {
  const schemas: Json = {
    Problem: jsonSchema(problemSchema, "output"),
    ErrorCode: { type: "string", enum: errorCodes },
  };
  const paths: Record<string, Json> = {};
  for (const route of ROUTE_DOCS) {
    schemas[route.ok.ref] = jsonSchema(route.ok.schema, "output");
    if (route.request !== undefined) schemas[route.request.ref] = jsonSchema(route.request.schema, "input");
    paths[route.path] = { ...paths[route.path], [route.method]: operation(route) };
  }
  paths["/openapi.json"] = {
    get: {
      summary: "This document; needs no key",
      operationId: "openapi",
      security: [],
      responses: { "200": { description: "the OpenAPI 3.1 document", content: { "application/json": {} } } },
    },
  };
  return {
    openapi: "3.1.0",
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
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
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description:
            "An edgelock API key: `Authorization: Bearer <key>`. The server stores only its SHA-256 (docs/security.md).",
        },
      },
    },
    "x-error-codes": ERROR_CODES,
    "x-limits": { maxBodyBytes: MAX_BODY_BYTES },
  };
}

function operation(route: RouteDoc): Json {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of routeCodes(route)) {
    const status = ERROR_CODES[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Json = {
    "200": {
      description: route.ok.description,
      content: { "application/json": { schema: ref(route.ok.ref), example: route.ok.example } },
    },
  };
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: `problem: ${codes.join(", ")}`,
      "x-error-codes": codes,
      ...(status === 401 || status === 409 || status === 429 || status === 503
        ? { headers: problemHeaders(status) }
        : {}),
      content: {
        "application/problem+json": {
          schema: ref("Problem"),
          examples: Object.fromEntries(codes.map((c) => [c, { value: problemExample(c) }])),
        },
      },
    };
  }
  const op: Json = {
    summary: route.summary,
    operationId: operationId(route),
    responses,
  };
  if (route.role === null) op.security = [];
  else op["x-required-role"] = route.role;
  if (route.path.includes("{name}")) {
    op.parameters = [
      {
        name: "name",
        in: "path",
        required: true,
        description: "the lock name; a key may touch only names that start with one of its prefixes",
        schema: jsonSchema(lockNameSchema, "input"),
      },
      ...(route.query ?? []).map((q) => ({
        name: q.name,
        in: "query",
        required: false,
        description: q.description,
        schema: jsonSchema(q.schema, "input"),
      })),
    ];
  }
  if (route.request !== undefined) {
    op.requestBody = {
      required: true,
      content: { "application/json": { schema: ref(route.request.ref), example: route.request.example } },
    };
  }
  return op;
}

function problemHeaders(status: number): Json {
  if (status === 401) {
    return { "WWW-Authenticate": { schema: { type: "string" }, description: 'Bearer realm="edgelock"' } };
  }
  return { "Retry-After": { schema: { type: "integer" }, description: "seconds (when the code has one)" } };
}

function operationId(route: RouteDoc): string {
  if (route.path === "/healthz") return "health";
  const action = route.path.split("/")[4];
  return action === undefined ? "inspect" : action.replace(/-(\w)/g, (_, ch: string) => ch.toUpperCase());
}

/** The examples the document shows, each with the schema it must satisfy: for tests. */
export function documentedExamples(): { where: string; example: Example }[] {
  const out: { where: string; example: Example }[] = [];
  for (const route of ROUTE_DOCS) {
    const at = `${route.method.toUpperCase()} ${route.path}`;
    out.push({ where: `${at} 200`, example: { schema: route.ok.schema, value: route.ok.example } });
    if (route.request !== undefined) {
      out.push({
        where: `${at} body`,
        example: { schema: route.request.schema, value: route.request.example },
      });
    }
    for (const code of routeCodes(route)) {
      out.push({ where: `${at} ${code}`, example: { schema: problemSchema, value: problemExample(code) } });
    }
  }
  return out;
}
