/**
 * Bearer-key authentication and per-lock authorization, as one Hono middleware per route: who is calling
 * (401), is the configuration there at all (503, fail closed), is the lock name valid (400), in the key's
 * prefixes (403 forbidden_scope), and within its role (403 forbidden). Only then does the handler run, with
 * the checked name in `c.var.lockName`. The RPC entrypoint (rpc.ts) runs the same two checks,
 * `authenticate` and `authorize`. Key formats and matching live in keys.ts.
 */
import type { Context, MiddlewareHandler } from "hono";
import { LOCK_NAME_RULE } from "../client/src/protocol.ts";
import { setAnswerHeader } from "./answer-header.ts";
import {
  ALL_LOCKS,
  type ApiKey,
  hashKey,
  hasRole,
  inScope,
  MAX_KEY_LENGTH,
  matchKey,
  PERMISSIONS,
  type Permission,
  parseKeys,
  type Role,
} from "./keys.ts";
import { ProblemError } from "./problem.ts";
import { lockNameSchema } from "./schemas.ts";
import { type AppEnv, readSettings } from "./settings.ts";

/** Who made a request. */
export type Principal = Pick<ApiKey, "name" | "role" | "prefixes">;

export interface AuthOptions {
  /** What the route does to the lock named in its path. */
  permission: Permission;
  /**
   * Also take the key from the WebSocket subprotocol `bearer.<key>`, for browsers, which cannot set headers
   * on a WebSocket. @default false
   */
  fromSubprotocol?: boolean;
  /**
   * The route names one lock in its path, checked here against the key's prefixes. Without one (the
   * directory), the handler limits what it answers to `c.var.principal`'s prefixes. @default true
   */
  lock?: boolean;
}

/** The principal every request gets while `EDGELOCK_INSECURE_NO_AUTH=true`. */
export const INSECURE_PRINCIPAL: Principal = {
  name: "insecure-no-auth",
  role: "admin",
  prefixes: [ALL_LOCKS],
};

/** Response header that marks every answer given with authentication off, so it is never silent. */
export const INSECURE_HEADER = "x-edgelock-auth";

const REALM = 'Bearer realm="edgelock"';
/** The subprotocol prefix by which a browser offers its key on a session's upgrade. */
export const BEARER_SUBPROTOCOL = "bearer.";
// RFC 6750 b64token, the only syntax a bearer credential may have.
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

let warnedInsecure = false;

export function auth({
  permission,
  fromSubprotocol = false,
  lock = true,
}: AuthOptions): MiddlewareHandler<AppEnv> {
  return async function auth(c, next) {
    const header = c.req.header("authorization") ?? (fromSubprotocol ? subprotocolKey(c) : undefined);
    const principal = await authenticate(c.env, header);
    let name: string | null = null;
    if (lock) name = authorize(principal, c.req.param("name") ?? "", permission);
    else checkRole(principal, permission);
    c.set("principal", principal);
    if (name !== null) c.set("lockName", name);
    await next();
  };
}

/** Marks every answer, errors and health checks included, while authentication is off: it is never silent. */
export function markInsecure(): MiddlewareHandler<AppEnv> {
  return async function markInsecure(c, next) {
    await next();
    if (readSettings(c.env).insecureNoAuth) setAnswerHeader(c, INSECURE_HEADER, "insecure-no-auth");
  };
}

/**
 * The lock name, once it is valid (400), in the key's prefixes (403 forbidden_scope) and within its role
 * (403 forbidden). Checked before the handler runs; the handler uses only the name this returns.
 */
export function authorize(principal: Principal, rawName: string, permission: Permission): string {
  const name = checkName(rawName);
  if (!inScope(principal, name)) {
    throw new ProblemError(
      "forbidden_scope",
      `key "${principal.name}" may not touch lock "${name}": its names must start with ${principal.prefixes
        .map((p) => JSON.stringify(p))
        .join(" or ")}`,
    );
  }
  checkRole(principal, permission);
  return name;
}

/** 403 forbidden unless the key's role allows `permission`. */
export function checkRole(principal: Principal, permission: Permission): void {
  if (!hasRole(principal, permission)) {
    throw new ProblemError(
      "forbidden",
      `key "${principal.name}" has role ${principal.role}; this needs ${describeRole(PERMISSIONS[permission])}`,
    );
  }
}

/**
 * Who is calling, from an `Authorization` header value (HTTP) or `Bearer <apiKey>` (RPC): 401 without a
 * known key, 503 when no keys are configured (fail closed), the stand-in admin when auth is off.
 */
export async function authenticate(env: Env, header: string | undefined): Promise<Principal> {
  const settings = readSettings(env);
  if (settings.insecureNoAuth) {
    if (!warnedInsecure) {
      warnedInsecure = true;
      console.warn("EDGELOCK_INSECURE_NO_AUTH=true: authentication is OFF; every caller is an admin");
    }
    return INSECURE_PRINCIPAL;
  }
  if (settings.keys === null) {
    throw new ProblemError(
      "auth_not_configured",
      "no API keys are configured, so every lock request is refused: set the EDGELOCK_KEYS secret " +
        "(`wrangler secret put EDGELOCK_KEYS`, see docs/security.md); for local development run `npm start`",
    );
  }
  const config = parseKeys(settings.keys);
  if (!config.ok) {
    // What is wrong with it goes to the operator's log only: callers may be anyone.
    console.error(`refusing lock requests: EDGELOCK_KEYS is invalid: ${config.error}`);
    throw new ProblemError(
      "auth_not_configured",
      "the EDGELOCK_KEYS secret is invalid, so every lock request is refused; the operator's log says why (see docs/security.md)",
    );
  }
  if (header === undefined) {
    throw unauthorized(REALM, "send an API key as `Authorization: Bearer <key>` (over RPC: apiKey)");
  }
  const token = BEARER.exec(header)?.[1];
  if (token === undefined || token.length > MAX_KEY_LENGTH) {
    throw unauthorized(
      `${REALM}, error="invalid_request"`,
      "the Authorization header is malformed; send `Authorization: Bearer <key>`",
    );
  }
  const key = matchKey(config.keys, await hashKey(token));
  if (key === null) {
    throw unauthorized(`${REALM}, error="invalid_token"`, "this API key is not known");
  }
  return key;
}

/** The lock name (from the path, or an RPC call): validated here, before the scope check. */
function checkName(name: string): string {
  if (!lockNameSchema.safeParse(name).success) {
    throw new ProblemError("invalid_name", LOCK_NAME_RULE);
  }
  return name;
}

/** `Sec-WebSocket-Protocol: edgelock.v1, bearer.<key>` as the Authorization header it stands for. */
function subprotocolKey(c: Context<AppEnv>): string | undefined {
  const offered = (c.req.header("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim());
  const key = offered.find((p) => p.startsWith(BEARER_SUBPROTOCOL))?.slice(BEARER_SUBPROTOCOL.length);
  return key === undefined ? undefined : `Bearer ${key}`;
}

function unauthorized(challenge: string, detail: string): ProblemError {
  return new ProblemError("unauthorized", detail, { headers: { "www-authenticate": challenge } });
}

function describeRole(role: Role): string {
  return role === "read"
    ? "a read key or better"
    : role === "write"
      ? "a write or admin key"
      : "an admin key";
}
