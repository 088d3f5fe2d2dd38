/**
 * CORS for browser clients: off unless `EDGELOCK_CORS_ORIGINS` lists origins. Preflights are answered here,
 * before authentication, since browsers never send credentials on them. Bearer keys travel in a header,
 * not a cookie, so credentials mode stays off.
 */
import type { MiddlewareHandler } from "hono";
import { cors as honoCors } from "hono/cors";
import { INSECURE_HEADER } from "./auth.ts";
import { type AppEnv, readSettings } from "./settings.ts";

/** How long a browser may cache a preflight answer. */
export const CORS_MAX_AGE_S = 600;

const answer = honoCors({
  origin: (origin, c) => {
    const allowed = readSettings(c.env as Env).corsOrigins;
    if (allowed.includes("*")) return "*";
    return allowed.includes(origin) ? origin : null;
  },
  allowMethods: ["GET", "POST"],
  allowHeaders: ["authorization", "content-type"],
  exposeHeaders: ["retry-after", "www-authenticate", INSECURE_HEADER],
  maxAge: CORS_MAX_AGE_S,
});

export function cors(): MiddlewareHandler<AppEnv> {
  return async function cors(c, next) {
    if (readSettings(c.env).corsOrigins.length === 0) return next();
    return answer(c, next);
  };
}
