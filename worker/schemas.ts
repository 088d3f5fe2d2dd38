/**
 * The zod schemas for every request body and query: the one place input is checked. A failed check becomes
 * the problem code of the first field at fault (`invalid_ttl`, `invalid_wait`, ...); rules that span fields
 * carry their own code in the issue's params, from a list declared beside them, which the route table
 * documents.
 */
import { z } from "zod";
import {
  DIRECTORY_PAGE_SIZE,
  type ErrorCode,
  EVENTS_PAGE_SIZE,
  LEASE_ID_PATTERN,
  LOCK_MODES,
  LOCK_NAME_PATTERN,
  LOCK_NAME_RULE,
  MAX_DIRECTORY_PAGE_SIZE,
  MAX_EVENTS_PAGE_SIZE,
  MAX_LIMIT,
  MAX_LOCK_DELAY_MS,
  MAX_OWNER_LENGTH,
  MAX_SESSION_WAIT_MS,
  MAX_TTL_MS,
  MAX_WAIT_MS,
  MIN_TTL_MS,
} from "../client/src/protocol.ts";

/** A lock name, in a path (auth.ts checks it before the key's scope) or a query. */
export const lockNameSchema = z.string().regex(LOCK_NAME_PATTERN, LOCK_NAME_RULE);

/**
 * Owners are labels shown to people (GET, logs, the live page), so they must render as what they are:
 * well-formed (no lone surrogates, which storage would corrupt), and free of control, format (bidi
 * overrides, zero-width characters) and line or paragraph separator characters, which let one label
 * impersonate another or forge log lines.
 */
const OWNER_CHARACTERS = /^[^\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]*$/u;

const ttlMs = z.int().min(MIN_TTL_MS).max(MAX_TTL_MS);
const leaseId = z.string().regex(LEASE_ID_PATTERN);
const mode = z.enum(LOCK_MODES);

/** The codes of the acquire rules that span fields (the superRefine below may use no other). */
export const ACQUIRE_RULE_CODES = [
  "invalid_permits",
  "permits_exceed_limit",
  "invalid_mode",
  "holder_key_required",
] as const satisfies ErrorCode[];

const acquireFields = {
  ttlMs,
  waitMs: z.int().min(0).max(MAX_WAIT_MS).default(0),
  owner: z
    .string()
    .min(1)
    .max(MAX_OWNER_LENGTH)
    // A refinement, not .regex(): the pattern needs the `u` flag, which JSON Schema patterns cannot say.
    .refine((o) => OWNER_CHARACTERS.test(o))
    .meta({ description: "a label for people: no control, format or line-separator characters" })
    .optional(),
  leaseId: leaseId.optional(),
  mode: mode.default("exclusive"),
  limit: z.int().min(1).max(MAX_LIMIT).optional(),
  permits: z.int().min(1).max(MAX_LIMIT).default(1),
  reentrant: z.boolean().default(false),
  holderKey: leaseId.optional(),
  repoll: z.boolean().default(false),
  lockDelayMs: z.int().min(0).max(MAX_LOCK_DELAY_MS).default(0),
};

type AcquireFields = z.output<z.ZodObject<typeof acquireFields>>;

/** The acquire rules that span fields, for HTTP bodies and session frames alike. */
function checkAcquire(b: AcquireFields, ctx: z.RefinementCtx): void {
  const fail = (code: (typeof ACQUIRE_RULE_CODES)[number], message: string) =>
    ctx.addIssue({ code: "custom", message, params: { code } });
  if (b.limit === undefined && b.permits !== 1) {
    fail("invalid_permits", "permits is only for semaphores: state the lock's limit too");
  } else if (b.limit !== undefined && b.permits > b.limit) {
    fail("permits_exceed_limit", `permits (${b.permits}) exceed the limit (${b.limit})`);
  }
  if (b.limit !== undefined && b.limit > 1 && b.mode === "shared") {
    fail("invalid_mode", "shared mode is for read-write locks; a semaphore takes permits");
  }
  if (b.reentrant && b.holderKey === undefined) {
    fail(
      "holder_key_required",
      "a reentrant acquire needs a holderKey: holds are counted per holder, never per public owner label",
    );
  }
}

export const acquireSchema = z
  .strictObject(acquireFields)
  .superRefine(checkAcquire)
  .meta({ id: "AcquireRequest" });

const renewFields = { leaseId, ttlMs: ttlMs.optional(), mode: mode.optional() };
export const renewSchema = z.strictObject(renewFields).meta({ id: "RenewRequest" });
export const releaseSchema = z.strictObject({ leaseId }).meta({ id: "ReleaseRequest" });

/**
 * Session frames (client → server): the HTTP bodies with a `type` and a client-chosen `id`, checked by the
 * same fields and rules. A session's acquire may wait up to MAX_SESSION_WAIT_MS: its grant is pushed.
 */
export const frameHeadSchema = z.object({
  type: z.enum(["acquire", "renew", "release", "watch"]),
  id: z.union([z.int(), z.string().max(64)]),
});
const frameHead = { type: z.string(), id: frameHeadSchema.shape.id };
export const sessionAcquireSchema = z
  .strictObject({
    ...frameHead,
    ...acquireFields,
    waitMs: z.int().min(0).max(MAX_SESSION_WAIT_MS).default(0),
  })
  .superRefine(checkAcquire);
export const sessionRenewSchema = z.strictObject({ ...frameHead, ...renewFields });
export const sessionReleaseSchema = z.strictObject({ ...frameHead, leaseId });
export const sessionWatchSchema = z.strictObject(frameHead);

/** A non-negative integer in a query or path (a token, an event id, an instant), at most 15 digits. */
const integerParam = (message: string) =>
  z
    .string()
    .regex(/^\d{1,15}$/, message)
    .transform(Number);

/** A page size in a query: 1 to `max`, `fallback` when absent. */
const limitParam = (fallback: number, max: number) =>
  integerParam(`limit must be an integer from 1 to ${max}`)
    .pipe(
      z
        .int()
        .min(1, `limit must be an integer from 1 to ${max}`)
        .max(max, `limit must be an integer from 1 to ${max}`),
    )
    .optional()
    .transform((v) => v ?? fallback)
    .meta({ description: `how many to answer at most (1–${max}, default ${fallback})` });

/** `GET /v1/locks/{name}?after=`: the token after which the page of holders starts (a `nextAfter`). */
export const inspectQuerySchema = z.object({
  after: integerParam("after must be a token: a non-negative integer (a nextAfter)")
    .optional()
    .meta({ description: "page on through the holders: the `nextAfter` of the previous answer" }),
});

/** `GET /v1/locks/{name}/events?since=&before=&limit=`: one page of the lock's history, newest first. */
export const eventsQuerySchema = z.object({
  since: integerParam("since must be an instant in epoch milliseconds")
    .optional()
    .meta({ description: "only events at or after this instant (epoch ms)" }),
  before: integerParam("before must be an event id (a nextBefore)")
    .optional()
    .meta({ description: "page on to older events: the `nextBefore` of the previous answer" }),
  limit: limitParam(EVENTS_PAGE_SIZE, MAX_EVENTS_PAGE_SIZE),
});

/** `GET /v1/locks/{name}/tokens/{token}`: a fencing token in the path. */
export const tokenParamSchema = integerParam("token must be a fencing token: a positive integer")
  .pipe(z.int().min(1, "token must be a fencing token: a positive integer"))
  .meta({ description: "the fencing token to check" });

/** `GET /v1/locks?prefix=&after=&limit=`: the directory of active locks under a name prefix. */
export const directoryQuerySchema = z.object({
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{0,200}$/, "prefix must be up to 200 lock-name characters (A–Z a–z 0–9 . _ - :)")
    .optional()
    .transform((v) => v ?? "")
    .meta({
      description: "list the locks whose names start with this (default: every lock the key may see)",
    }),
  after: lockNameSchema
    .optional()
    .meta({ description: "page on: the `nextAfter` of the previous answer (a lock name)" }),
  limit: limitParam(DIRECTORY_PAGE_SIZE, MAX_DIRECTORY_PAGE_SIZE),
});

const FIELD_CODES: Record<string, ErrorCode> = {
  ttlMs: "invalid_ttl",
  waitMs: "invalid_wait",
  owner: "invalid_owner",
  leaseId: "invalid_lease_id",
  mode: "invalid_mode",
  limit: "invalid_limit",
  permits: "invalid_permits",
  reentrant: "invalid_reentrant",
  holderKey: "invalid_holder_key",
  repoll: "invalid_repoll",
  lockDelayMs: "invalid_lock_delay",
  type: "invalid_frame",
  id: "invalid_frame",
};

const HINTS: Partial<Record<ErrorCode, string>> = {
  invalid_ttl: `ttlMs must be an integer from ${MIN_TTL_MS} to ${MAX_TTL_MS}`,
  invalid_wait: `waitMs must be an integer from 0 to ${MAX_WAIT_MS}; wait longer by re-polling with the same leaseId`,
  invalid_owner: `owner must be 1–${MAX_OWNER_LENGTH} well-formed characters, without control, format (bidi, zero-width) or line-separator characters`,
  invalid_lease_id: "leaseId must be 16–128 characters of A–Z a–z 0–9 _ -",
  invalid_mode: `mode must be one of ${LOCK_MODES.join(", ")}`,
  invalid_limit: `limit must be an integer from 1 to ${MAX_LIMIT}`,
  invalid_permits: `permits must be an integer from 1 to ${MAX_LIMIT}`,
  invalid_reentrant: "reentrant must be a boolean",
  invalid_holder_key: "holderKey must be 16–128 characters of A–Z a–z 0–9 _ -",
  invalid_repoll: "repoll must be a boolean",
  invalid_lock_delay: `lockDelayMs must be an integer from 0 to ${MAX_LOCK_DELAY_MS}`,
  invalid_frame:
    'a frame is a JSON object with a "type" (acquire, renew, release, watch) and an "id" (an integer or a string of up to 64 characters)',
};

/**
 * The problem code and a readable detail for a failed parse of `input`. Unknown fields come first: a typo
 * such as `ttl` for `ttlMs` is the real mistake, not the missing field it leaves.
 */
export function describeIssue(error: z.ZodError, input: unknown): { code: ErrorCode; detail: string } {
  const issue = error.issues.find((i) => i.code === "unrecognized_keys") ?? error.issues[0];
  if (issue === undefined) return { code: "invalid_body", detail: "invalid request body" };
  if (issue.code === "custom" && typeof issue.params?.code === "string") {
    return { code: issue.params.code as ErrorCode, detail: issue.message };
  }
  if (issue.code === "unrecognized_keys") {
    return { code: "invalid_body", detail: `unknown field(s): ${issue.keys.join(", ")}` };
  }
  const field = issue.path[0];
  const code = typeof field === "string" ? FIELD_CODES[field] : undefined;
  if (code === undefined) return { code: "invalid_body", detail: issue.message };
  const given = typeof input === "object" && input !== null && Object.hasOwn(input, field as string);
  return { code, detail: `${HINTS[code] ?? issue.message}${given ? "" : " (missing)"}` };
}

/**
 * The problem of a failed query or path parameter: `invalid_query` with the message its schema gives (the
 * names of query parameters may repeat body fields, e.g. `limit`, with other meanings), or `invalid_name`.
 */
export function describeParamIssue(error: z.ZodError): { code: ErrorCode; detail: string } {
  const issue = error.issues[0];
  // The live page's lock name is a path parameter, checked here rather than by auth (the page needs no key).
  if (issue?.path[0] === "name") return { code: "invalid_name", detail: LOCK_NAME_RULE };
  // Every other parameter's schema words its own message, naming the parameter.
  return { code: "invalid_query", detail: issue?.message ?? "a query parameter is invalid" };
}

/** The codes a failed parse of `schema` can produce: one per field, and the rules that span fields. */
export function inputCodes(schema: z.ZodObject, rules: readonly ErrorCode[] = []): ErrorCode[] {
  const fields = Object.keys(schema.shape).flatMap((k) => FIELD_CODES[k] ?? []);
  return [...new Set([...fields, ...rules])];
}
