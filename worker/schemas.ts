/**
 * The zod schemas for every request body: the one place input is checked. A failed check becomes the
 * problem code of the first field at fault (`invalid_ttl`, `invalid_wait`, ...); rules that span fields
 * carry their own code in the issue's params.
 */
import { z } from "zod";
import {
  type ErrorCode,
  LEASE_ID_PATTERN,
  LOCK_MODES,
  LOCK_NAME_PATTERN,
  MAX_LIMIT,
  MAX_LOCK_DELAY_MS,
  MAX_OWNER_LENGTH,
  MAX_TTL_MS,
  MAX_WAIT_MS,
  MIN_TTL_MS,
} from "../client/src/protocol.ts";

const ttlMs = z.int().min(MIN_TTL_MS).max(MAX_TTL_MS);
const leaseId = z.string().regex(LEASE_ID_PATTERN);
const mode = z.enum(LOCK_MODES);

export const acquireSchema = z
  .strictObject({
    ttlMs,
    waitMs: z.int().min(0).max(MAX_WAIT_MS).default(0),
    owner: z
      .string()
      .min(1)
      .max(MAX_OWNER_LENGTH)
      .regex(/^[^\p{Cc}]*$/u)
      .optional(),
    leaseId: leaseId.optional(),
    mode: mode.default("exclusive"),
    limit: z.int().min(1).max(MAX_LIMIT).optional(),
    permits: z.int().min(1).max(MAX_LIMIT).default(1),
    reentrant: z.boolean().default(false),
    holderKey: leaseId.optional(),
    repoll: z.boolean().default(false),
    lockDelayMs: z.int().min(0).max(MAX_LOCK_DELAY_MS).default(0),
  })
  .superRefine((b, ctx) => {
    const fail = (code: ErrorCode, message: string) =>
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
  });

export const renewSchema = z.strictObject({ leaseId, ttlMs: ttlMs.optional(), mode: mode.optional() });
export const releaseSchema = z.strictObject({ leaseId });

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
};

const HINTS: Partial<Record<ErrorCode, string>> = {
  invalid_ttl: `ttlMs must be an integer from ${MIN_TTL_MS} to ${MAX_TTL_MS}`,
  invalid_wait: `waitMs must be an integer from 0 to ${MAX_WAIT_MS}; wait longer by re-polling with the same leaseId`,
  invalid_owner: `owner must be 1–${MAX_OWNER_LENGTH} characters without control characters`,
  invalid_lease_id: "leaseId must be 16–128 characters of A–Z a–z 0–9 _ -",
  invalid_mode: `mode must be one of ${LOCK_MODES.join(", ")}`,
  invalid_limit: `limit must be an integer from 1 to ${MAX_LIMIT}`,
  invalid_permits: `permits must be an integer from 1 to ${MAX_LIMIT}`,
  invalid_reentrant: "reentrant must be a boolean",
  invalid_holder_key: "holderKey must be 16–128 characters of A–Z a–z 0–9 _ -",
  invalid_repoll: "repoll must be a boolean",
  invalid_lock_delay: `lockDelayMs must be an integer from 0 to ${MAX_LOCK_DELAY_MS}`,
};

/** The problem code and a readable detail for the first issue of a failed parse. */
export function describeIssue(error: z.ZodError): { code: ErrorCode; detail: string } {
  // An unknown field first: `{"ttl": 1000}` is a typo of ttlMs, not a missing ttlMs.
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
  const got = issue.code === "invalid_type" && issue.input === undefined ? " (missing)" : "";
  return { code, detail: `${HINTS[code] ?? issue.message}${got}` };
}

/** A lock name in a path; auth.ts checks it before the key's scope, the OpenAPI document describes it. */
export const lockNameSchema = z.string().regex(LOCK_NAME_PATTERN);
