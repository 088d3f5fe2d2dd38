/**
 * The HTTP API v1 as Hono routes: authenticate and scope-check (auth.ts), read the JSON body, and run the
 * operation (operations.ts, shared with the Workers RPC entrypoint in rpc.ts). No lock rules live here;
 * see durable-objects/lock-state.ts. Handlers take the lock name only from `c.var.lockName`, which auth
 * set after its scope check.
 */
import { type Context, Hono } from "hono";
import type { z } from "zod";
import { MAX_BODY_BYTES } from "../client/src/protocol.ts";
import { auth } from "./auth.ts";
import { cors } from "./cors.ts";
import { openApiDocument } from "./openapi.ts";
import {
  acquireLock,
  forceReleaseLock,
  inspectLock,
  parseBody,
  releaseLock,
  renewLock,
} from "./operations.ts";
import { ProblemError, problem } from "./problem.ts";
import { acquireSchema, releaseSchema, renewSchema } from "./schemas.ts";
import type { AppEnv } from "./settings.ts";

export const app = new Hono<AppEnv>();

app.use(cors());
app.use("/v1/*", async function noStore(c, next) {
  await next();
  // Leases carry their holder's secret leaseId: no cache may keep them, no browser may sniff them.
  c.header("cache-control", "no-store");
  c.header("x-content-type-options", "nosniff");
});

app.get("/healthz", (c) => c.json({ ok: true }));

app.get("/openapi.json", (c) => c.json(openApiDocument()));

app.post("/v1/locks/:name/acquire", auth({ permission: "lock" }), async (c) => {
  const body = await readBody(c, acquireSchema);
  return Response.json(await acquireLock(c.env, c.var.lockName, body));
});

app.post("/v1/locks/:name/renew", auth({ permission: "lock" }), async (c) => {
  const body = await readBody(c, renewSchema);
  return Response.json(await renewLock(c.env, c.var.lockName, body));
});

app.post("/v1/locks/:name/release", auth({ permission: "lock" }), async (c) => {
  const body = await readBody(c, releaseSchema);
  return Response.json(await releaseLock(c.env, c.var.lockName, body));
});

app.post("/v1/locks/:name/force-release", auth({ permission: "force" }), async (c) => {
  return Response.json(await forceReleaseLock(c.env, c.var.lockName, c.var.principal.name));
});

app.get("/v1/locks/:name", auth({ permission: "inspect" }), async (c) => {
  return Response.json(await inspectLock(c.env, c.var.lockName, readAfter(c.req.query("after"))));
});

const ROUTES: [RegExp, string][] = [
  [/^\/v1\/locks\/[^/]+\/(acquire|renew|release|force-release)$/, "POST"],
  [/^\/v1\/locks\/[^/]+$/, "GET"],
  [/^\/(healthz|openapi\.json)$/, "GET"],
];

app.notFound((c) => {
  const allowed = ROUTES.find(([re]) => re.test(c.req.path))?.[1];
  if (allowed !== undefined) {
    return problem("method_not_allowed", `${c.req.method} is not allowed here; use ${allowed}`, {
      headers: { allow: allowed },
    });
  }
  return problem("not_found", `no route for ${c.req.method} ${c.req.path}`);
});

app.onError((err, c) => {
  if (err instanceof ProblemError) return err.getResponse();
  console.error(`unhandled error on ${c.req.method} ${c.req.path}:`, err);
  return problem(
    "internal",
    "the server failed to handle this request; it changed nothing it could not keep",
  );
});

async function readBody<S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.output<S>> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new ProblemError(
      "unsupported_media_type",
      "send the body as JSON with content-type: application/json",
    );
  }
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const text = await c.req.text();
  if (new TextEncoder().encode(text).byteLength > MAX_BODY_BYTES) throw tooLarge();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ProblemError("malformed_json", "the request body is not valid JSON");
  }
  return parseBody(schema, json);
}

/** `?after=`: the token after which the page of holders starts (a previous answer's `nextAfter`). */
function readAfter(raw: string | undefined): number {
  if (raw === undefined) return 0;
  // Anything but digits is refused by inspectLock, as a token must be.
  return /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
}

function tooLarge(): ProblemError {
  return new ProblemError("body_too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
}
