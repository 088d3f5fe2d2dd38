/**
 * The session protocol's frames as the lock object reads and writes them: a client frame checked by the
 * same schemas and rules as the HTTP bodies (worker/schemas.ts), and every server frame built from the same
 * wire shapes and problems as the HTTP answers (worker/answers.ts). What a session knows between frames
 * lives in its socket's attachment, so it survives hibernation. No lock rules and no socket I/O here.
 */
import type {
  Lease,
  LockView,
  NotHeldReason,
  ReleaseResponse,
  SessionFrameId,
  SessionServerFrame,
} from "../client/src/protocol.ts";
import { MAX_BODY_BYTES } from "../client/src/protocol.ts";
import { ProblemError } from "../worker/problem.ts";
import {
  describeIssue,
  frameHeadSchema,
  sessionAcquireSchema,
  sessionReleaseSchema,
  sessionRenewSchema,
  sessionWatchSchema,
} from "../worker/schemas.ts";
import type { AcquireInput } from "./lock-object.ts";

/** A client-chosen frame id, echoed in the answer. */
export type FrameId = SessionFrameId;

/** A session's roles, weakest first, as the Worker checked them at the upgrade. */
export const SESSION_ROLES = ["read", "write", "admin"] as const;
export type SessionRole = (typeof SESSION_ROLES)[number];

/** Who opened the session, as the Worker hands it to the lock object (a header it sets itself). */
export interface SessionOpening {
  readonly principal: string;
  readonly role: SessionRole;
}

/** What a session's socket carries between events (structured clone, well under 16 KiB). */
export interface SessionAttachment {
  readonly session: string;
  readonly principal: string;
  readonly role: SessionRole;
  /** When the last frame or ping arrived. */
  lastSeen: number;
  /** Whether it asked for `state` pushes. */
  watching: boolean;
  /** Acquires that wait, by leaseId: the frame id their grant (or refusal) answers, and when it came. */
  pending: Record<string, [id: FrameId, arrivedAt: number]>;
}

/** Acquires one session may have waiting at once: its attachment stays small. */
export const MAX_PENDING_PER_SESSION = 32;

export type Frame =
  | {
      readonly type: "acquire";
      readonly id: FrameId;
      readonly input: Omit<AcquireInput, "principal" | "session">;
    }
  | {
      readonly type: "renew";
      readonly id: FrameId;
      readonly leaseId: string;
      readonly ttlMs: number | null;
      readonly mode: "shared" | "exclusive" | null;
    }
  | { readonly type: "release"; readonly id: FrameId; readonly leaseId: string }
  | { readonly type: "watch"; readonly id: FrameId };

export type ParsedFrame =
  | { readonly ok: true; readonly frame: Frame }
  | { readonly ok: false; readonly id: FrameId | null; readonly problem: ProblemError };

/** Reads one client frame. `newLeaseId` names an acquire that did not choose its own leaseId. */
export function parseFrame(message: string | ArrayBuffer, newLeaseId: () => string): ParsedFrame {
  if (typeof message !== "string") {
    return refuse(null, "invalid_frame", "frames are JSON text, not binary");
  }
  if (message.length > MAX_BODY_BYTES) {
    return refuse(null, "body_too_large", `frames are limited to ${MAX_BODY_BYTES} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(message);
  } catch {
    return refuse(null, "malformed_json", "the frame is not valid JSON");
  }
  const head = frameHeadSchema.safeParse(json);
  if (!head.success) {
    const id = (json as { id?: unknown } | null)?.id;
    return refuse(typeof id === "number" || typeof id === "string" ? id : null, ...issue(head.error, json));
  }
  const { type, id } = head.data;
  switch (type) {
    case "acquire": {
      const r = sessionAcquireSchema.safeParse(json);
      if (!r.success) return refuse(id, ...issue(r.error, json));
      const { type: _, id: __, reentrant, holderKey, leaseId, owner, limit, ...rest } = r.data;
      return {
        ok: true,
        frame: {
          type,
          id,
          input: {
            ...rest,
            leaseId: leaseId ?? newLeaseId(),
            owner: owner ?? null,
            limit: limit ?? null,
            holderKey: reentrant ? (holderKey ?? null) : null,
          },
        },
      };
    }
    case "renew": {
      const r = sessionRenewSchema.safeParse(json);
      if (!r.success) return refuse(id, ...issue(r.error, json));
      return {
        ok: true,
        frame: { type, id, leaseId: r.data.leaseId, ttlMs: r.data.ttlMs ?? null, mode: r.data.mode ?? null },
      };
    }
    case "release": {
      const r = sessionReleaseSchema.safeParse(json);
      if (!r.success) return refuse(id, ...issue(r.error, json));
      return { ok: true, frame: { type, id, leaseId: r.data.leaseId } };
    }
    case "watch": {
      const r = sessionWatchSchema.safeParse(json);
      if (!r.success) return refuse(id, ...issue(r.error, json));
      return { ok: true, frame: { type, id } };
    }
    default:
      return assertNever(type);
  }
}

const send = (frame: SessionServerFrame): string => JSON.stringify(frame);

/** The frames the server sends (protocol.ts's SessionServerFrame): each is the HTTP answer it stands for. */
export const frames = {
  granted: (id: FrameId, lease: Lease) => send({ type: "granted", id, ...lease }),
  released: (id: FrameId, answer: ReleaseResponse) => send({ type: "released", id, ...answer }),
  /** The problem's members, with its `type` URI as `problemType`: the frame's `type` is "error". */
  error: (id: FrameId | null, problem: ProblemError) => {
    const { type: problemType, ...members } = problem.body();
    return send({ type: "error", id, problemType, ...members });
  },
  lost: (leaseId: string, reason: NotHeldReason, by: string | null) =>
    send({ type: "lost", leaseId, reason, ...(by === null ? {} : { by }) }),
  state: (id: FrameId | null, view: LockView) =>
    send({ type: "state", ...(id === null ? {} : { id }), ...view }),
};

/** Whether a session may send this frame: watching needs a read key, the rest a write key. */
export function allowed(role: SessionRole, type: Frame["type"]): boolean {
  const needed: SessionRole = type === "watch" ? "read" : "write";
  return SESSION_ROLES.indexOf(role) >= SESSION_ROLES.indexOf(needed);
}

function issue(error: Parameters<typeof describeIssue>[0], json: unknown) {
  const { code, detail } = describeIssue(error, json);
  return [code, detail] as const;
}

function refuse(id: FrameId | null, code: ProblemError["code"], detail: string): ParsedFrame {
  return { ok: false, id, problem: new ProblemError(code, detail) };
}

function assertNever(x: never): never {
  throw new Error(`unhandled frame type ${JSON.stringify(x)}`);
}
