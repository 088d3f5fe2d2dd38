/**
 * The Worker's configuration, read from its vars and secrets on every request (they exist only per
 * request on Workers). Values are read as plain strings whatever `wrangler types` inferred for them, so
 * a var that is absent, empty, or set only in `.dev.vars` or by `--var` reads the same way.
 */
import type { ErrorCode } from "../client/src/protocol.ts";
import type { Principal } from "./auth.ts";

export interface Settings {
  /** `EDGELOCK_KEYS`: the API keys secret (JSON; see keys.ts), or null when unset or blank. */
  readonly keys: string | null;
  /** `EDGELOCK_INSECURE_NO_AUTH=true`: every request is an admin of every lock. Local development only. */
  readonly insecureNoAuth: boolean;
  /** `EDGELOCK_CORS_ORIGINS`: comma-separated origins allowed to call from a browser; empty means CORS off. */
  readonly corsOrigins: readonly string[];
  /** `EDGELOCK_HISTORY=off` stops locks from recording history; only the bench sets it, to measure its cost. */
  readonly history: boolean;
}

/** The Hono environment of the app: bindings, plus what auth leaves for the handler. */
export type AppEnv = {
  Bindings: Env;
  Variables: {
    /** Who is calling: the matched key (or the insecure stand-in). */
    principal: Principal;
    /** The lock name from the path, validated and scope-checked; the only name a handler may use. */
    lockName: string;
    /** The request's id, in its log line and its `x-request-id` answer header (request-log.ts). */
    requestId: string;
    /** The problem code the request was answered with, for its log line. */
    problemCode: ErrorCode;
  };
};

export function readSettings(env: Env): Settings {
  const vars = env as unknown as Record<string, unknown>;
  const text = (name: string): string => {
    const v = vars[name];
    return typeof v === "string" ? v.trim() : "";
  };
  const keys = text("EDGELOCK_KEYS");
  return {
    keys: keys === "" ? null : keys,
    insecureNoAuth: text("EDGELOCK_INSECURE_NO_AUTH") === "true",
    corsOrigins: text("EDGELOCK_CORS_ORIGINS")
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== ""),
    history: text("EDGELOCK_HISTORY") !== "off",
  };
}
