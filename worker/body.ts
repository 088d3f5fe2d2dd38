/**
 * Reading a JSON request body before its schema is checked: it must be sent as JSON (415), stop at
 * MAX_BODY_BYTES whether or not it declares its length (413, through hono/body-limit), and parse (400).
 * What the fields may be is the route's schema's business, checked next (see app.ts's validation hook).
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { MAX_BODY_BYTES } from "../client/src/protocol.ts";
import { ProblemError } from "./problem.ts";
import type { AppEnv } from "./settings.ts";

const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw new ProblemError("body_too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
  },
});

export function readJsonBody(): MiddlewareHandler<AppEnv> {
  return async function readJsonBody(c, next) {
    const type = c.req.header("content-type") ?? "";
    if (!/^application\/json\s*(;|$)/i.test(type)) {
      throw new ProblemError(
        "unsupported_media_type",
        "send the body as JSON with content-type: application/json",
      );
    }
    await limitBody(c, async () => {});
    try {
      // Parsed once here; the schema's validator reads the same parsed body.
      await c.req.json();
    } catch {
      throw new ProblemError("malformed_json", "the request body is not valid JSON");
    }
    await next();
  };
}
