/**
 * The API's answers as zod schemas, each declared against its wire type in client/src/protocol.ts
 * (`satisfies`), so the OpenAPI document, the tests that check real answers and the client's types all
 * describe one shape. Request bodies are in schemas.ts; this file validates nothing at run time.
 */
import { z } from "zod";
import {
  type DirectoryEntry,
  type ForceReleaseResult,
  type HolderView,
  LEASE_ID_PATTERN,
  type Lease,
  LOCK_EVENT_KINDS,
  LOCK_KINDS,
  LOCK_MODES,
  type LockDirectory,
  type LockEvent,
  type LockEvents,
  type LockView,
  MAX_DIRECTORY_PAGE_SIZE,
  MAX_EVENTS_PAGE_SIZE,
  NOT_HELD_REASONS,
  PROBLEM_TYPE_BASE,
  PROBLEMS,
  QUEUE_VIEW_SIZE,
  type ReleaseResponse,
  type TokenCheck,
  type WaiterView,
} from "../client/src/protocol.ts";
import { lockNameSchema } from "./schemas.ts";

const mode = z.enum(LOCK_MODES);

/** What anyone may see of a lease; its holder sees these and more (`leaseSchema`). */
const holderFields = {
  owner: z.string().nullable(),
  token: z.int().positive(),
  expiresAt: z.int(),
  mode,
  permits: z.int().positive(),
  holdCount: z.int().positive(),
};

export const holderViewSchema = z
  .strictObject(holderFields)
  .meta({ id: "HolderView" }) satisfies z.ZodType<HolderView>;

export const leaseSchema = z
  .strictObject({
    ...holderFields,
    name: lockNameSchema,
    leaseId: z.string().regex(LEASE_ID_PATTERN),
    ttlMs: z.int().positive(),
    validForMs: z.int().nonnegative(),
    limit: z.int().positive(),
  })
  .meta({ id: "Lease" }) satisfies z.ZodType<Lease>;

export const waiterViewSchema = z
  .strictObject({
    owner: z.string().nullable(),
    mode,
    permits: z.int().positive(),
    waitingSince: z.int(),
  })
  .meta({ id: "WaiterView" }) satisfies z.ZodType<WaiterView>;

export const lockViewSchema = z
  .strictObject({
    name: lockNameSchema,
    held: z.boolean(),
    kind: z.enum(LOCK_KINDS),
    holders: z.array(holderViewSchema),
    holderCount: z.int().nonnegative(),
    nextAfter: z.int().positive().nullable(),
    waiters: z.int().nonnegative(),
    queue: z.array(waiterViewSchema).max(QUEUE_VIEW_SIZE),
    lastToken: z.int().nonnegative(),
    limit: z.int().positive(),
    permitsInUse: z.int().nonnegative(),
    lockDelayUntil: z.int().nullable(),
  })
  .meta({ id: "LockView" }) satisfies z.ZodType<LockView>;

export const releaseResponseSchema = z
  .strictObject({
    released: z.boolean(),
    cancelled: z.literal(true).exactOptional(),
    holdCount: z.int().nonnegative().exactOptional(),
  })
  .meta({ id: "ReleaseResponse" }) satisfies z.ZodType<ReleaseResponse>;

export const forceReleaseResultSchema = z
  .strictObject({
    name: lockNameSchema,
    forced: z.literal(true),
    count: z.int().nonnegative(),
    by: z.string(),
  })
  .meta({ id: "ForceReleaseResult" }) satisfies z.ZodType<ForceReleaseResult>;

export const lockEventSchema = z
  .strictObject({
    id: z.int().positive(),
    at: z.int(),
    kind: z.enum(LOCK_EVENT_KINDS),
    owner: z.string().nullable(),
    token: z.int().positive().nullable(),
    mode,
    permits: z.int().positive(),
    holdCount: z.int().nonnegative().nullable(),
    waitMs: z.int().nonnegative().nullable(),
    holdMs: z.int().nonnegative().nullable(),
    expiresAt: z.int().nullable(),
    renewals: z.int().positive().nullable(),
    by: z.string().nullable(),
  })
  .meta({ id: "LockEvent" }) satisfies z.ZodType<LockEvent>;

export const lockEventsSchema = z
  .strictObject({
    name: lockNameSchema,
    events: z.array(lockEventSchema).max(MAX_EVENTS_PAGE_SIZE),
    nextBefore: z.int().positive().nullable(),
    now: z.int(),
  })
  .meta({ id: "LockEvents" }) satisfies z.ZodType<LockEvents>;

export const tokenCheckSchema = z
  .strictObject({
    name: lockNameSchema,
    token: z.int().positive(),
    held: z.boolean(),
    holder: holderViewSchema.nullable(),
    lastToken: z.int().nonnegative(),
  })
  .meta({ id: "TokenCheck" }) satisfies z.ZodType<TokenCheck>;

export const directoryEntrySchema = z
  .strictObject({
    name: lockNameSchema,
    kind: z.enum(LOCK_KINDS),
    holderCount: z.int().nonnegative(),
    waiters: z.int().nonnegative(),
    since: z.int(),
    reportedAt: z.int(),
    until: z.int(),
  })
  .meta({ id: "DirectoryEntry" }) satisfies z.ZodType<DirectoryEntry>;

export const lockDirectorySchema = z
  .strictObject({
    prefix: z.string(),
    locks: z.array(directoryEntrySchema).max(MAX_DIRECTORY_PAGE_SIZE),
    nextAfter: lockNameSchema.nullable(),
    lagMs: z.int().nonnegative(),
    now: z.int(),
  })
  .meta({ id: "LockDirectory" }) satisfies z.ZodType<LockDirectory>;

export const healthSchema = z.strictObject({ ok: z.literal(true) }).meta({ id: "Health" });

const errorCodes = Object.keys(PROBLEMS) as [keyof typeof PROBLEMS, ...(keyof typeof PROBLEMS)[]];
export const errorCodeSchema = z.enum(errorCodes).meta({ id: "ErrorCode" });

export const problemSchema = z
  .looseObject({
    type: z.string().startsWith(PROBLEM_TYPE_BASE),
    title: z.string(),
    status: z.int().min(400).max(599),
    detail: z.string(),
    code: errorCodeSchema,
    retryAfterMs: z.int().nonnegative().optional(),
    reason: z.enum(NOT_HELD_REASONS).optional(),
    holders: z.array(holderViewSchema).optional(),
    holderCount: z.int().nonnegative().optional(),
    position: z.int().positive().optional(),
    leaseId: z.string().regex(LEASE_ID_PATTERN).optional(),
    limit: z.int().positive().optional(),
  })
  .meta({ id: "Problem" });
