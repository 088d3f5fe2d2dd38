import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { ERROR_CODES, type ErrorCode, type Lease } from "../client/src/protocol.ts";
import { app } from "../worker/app.ts";
import { ROUTES } from "../worker/routes.ts";
import { acquireSchema } from "../worker/schemas.ts";
import * as wire from "../worker/wire.ts";
import { callAs, envWith } from "./helpers/auth.ts";
import { lockName } from "./helpers/names.ts";

type Example = { schema: z.ZodType; value: unknown };
type Media = { schema: z.ZodType; example?: unknown; examples?: Record<string, { value: unknown }> };

/** The examples the route table shows, each with the schema it must satisfy. */
function documentedExamples(): { where: string; example: Example }[] {
  const out: { where: string; example: Example }[] = [];
  for (const route of ROUTES) {
    const at = `${route.method.toUpperCase()} ${route.path}`;
    const { request } = route as { request?: { body?: { content: Record<string, Media> } } };
    const body = request?.body;
    const json = body?.content["application/json"];
    if (json !== undefined)
      out.push({ where: `${at} body`, example: { schema: json.schema, value: json.example } });
    for (const [status, response] of Object.entries(route.responses)) {
      for (const media of Object.values((response as { content?: Record<string, Media> }).content ?? {})) {
        if (media.example !== undefined) {
          out.push({ where: `${at} ${status}`, example: { schema: media.schema, value: media.example } });
        }
        for (const [code, { value }] of Object.entries(media.examples ?? {})) {
          out.push({ where: `${at} ${code}`, example: { schema: media.schema, value } });
        }
      }
    }
  }
  return out;
}

type Json = Record<string, unknown>;
type Doc = {
  openapi: string;
  paths: Record<string, Record<string, Json & { responses: Record<string, Json> }>>;
  components: { schemas: Record<string, Json>; securitySchemes: Record<string, Json> };
  security: unknown[];
};

async function fetchDoc(): Promise<Doc> {
  const res = await callAs("/openapi.json", { env: envWith({ EDGELOCK_KEYS: undefined }) });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("application/json");
  return res.json<Doc>();
}

/** The documented problem codes of one operation, from its responses' `x-error-codes`. */
function documentedCodes(doc: Doc, path: string, method: string): ErrorCode[] {
  const op = doc.paths[path]?.[method];
  if (op === undefined) throw new Error(`${method} ${path} is not documented`);
  return Object.values(op.responses).flatMap((r) => (r["x-error-codes"] as ErrorCode[] | undefined) ?? []);
}

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document, served without a key even when no keys are configured", async () => {
    const doc = await fetchDoc();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/healthz"]?.get?.security).toEqual([]);
  });

  it("documents exactly the routes the app serves", async () => {
    const doc = await fetchDoc();
    const served = new Set(
      app.routes
        .filter((r) => r.method !== "ALL" && r.path !== "/openapi.json")
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, "{$1}")}`),
    );
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)),
    );
    expect(served.size).toBeGreaterThanOrEqual(6);
    expect([...documented].sort()).toEqual([...served].sort());
  });

  it("gives every documented route's request body the schema that validates it", async () => {
    const doc = await fetchDoc();
    const acquire = doc.paths["/v1/locks/{name}/acquire"]?.post?.requestBody as Json;
    expect(acquire).toMatchObject({
      content: { "application/json": { schema: { $ref: "#/components/schemas/AcquireRequest" } } },
    });
    const body = doc.components.schemas.AcquireRequest as { required: string[]; properties: Json };
    expect(body.required).toEqual(["ttlMs"]);
    expect(Object.keys(body.properties).sort()).toEqual(Object.keys(acquireSchema.shape).sort());
  });

  it("lists the auth problems, the security scheme's challenge and every lock code", async () => {
    const doc = await fetchDoc();
    for (const [path, method, role] of [
      ["/v1/locks/{name}/acquire", "post", "write"],
      ["/v1/locks/{name}/renew", "post", "write"],
      ["/v1/locks/{name}/release", "post", "write"],
      ["/v1/locks/{name}/force-release", "post", "admin"],
      ["/v1/locks/{name}", "get", "read"],
      ["/v1/locks/{name}/events", "get", "read"],
      ["/v1/locks/{name}/tokens/{token}", "get", "read"],
      ["/v1/locks", "get", "read"],
    ] as const) {
      const codes = documentedCodes(doc, path, method);
      for (const code of ["unauthorized", "forbidden", "forbidden_scope", "auth_not_configured"] as const) {
        expect(codes, `${method} ${path}`).toContain(code);
      }
      expect(doc.paths[path]?.[method]?.["x-required-role"]).toBe(role);
      expect(doc.paths[path]?.[method]?.responses["401"]?.headers).toHaveProperty("WWW-Authenticate");
    }
    expect(documentedCodes(doc, "/v1/locks/{name}/acquire", "post")).toContain("too_many_waiters");
    expect(doc.components.schemas.ErrorCode).toEqual({ type: "string", enum: Object.keys(ERROR_CODES) });
    // Every code the server has is answered by some route, and documented there.
    const everywhere = new Set(
      Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.entries(ops).flatMap(([m, op]) => [
          ...documentedCodes(doc, path, m),
          ...((op["x-frame-error-codes"] as ErrorCode[] | undefined) ?? []),
        ]),
      ),
    );
    const unused = Object.keys(ERROR_CODES).filter(
      (c) => !everywhere.has(c as ErrorCode) && !["not_found", "method_not_allowed"].includes(c),
    );
    expect(unused).toEqual([]);
  });

  it.each(documentedExamples().map((e) => [e.where, e.example] as const))(
    "example %s validates against its schema",
    (_, { schema, value }) => {
      const parsed = schema.safeParse(value);
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    },
  );

  it("shows each example inside the document too", async () => {
    const doc = JSON.stringify(await fetchDoc());
    for (const { example } of documentedExamples()) expect(doc).toContain(JSON.stringify(example.value));
  });
});

describe("real answers match the documented schemas", () => {
  it("for every route, and every problem carries a code the route documents", async () => {
    const doc = await fetchDoc();
    const name = lockName("billing:");
    const lease = await (
      await callAs(`/v1/locks/${name}/acquire`, { key: "billingWrite", body: { ttlMs: 5000, owner: "o" } })
    ).json<Lease>();
    expect(wire.leaseSchema.parse(lease).name).toBe(name);
    const renew = await callAs(`/v1/locks/${name}/renew`, {
      key: "billingWrite",
      body: { leaseId: lease.leaseId },
    });
    wire.leaseSchema.parse(await renew.json());
    wire.lockViewSchema.parse(await (await callAs(`/v1/locks/${name}`, { key: "billingRead" })).json());
    const events = await callAs(`/v1/locks/${name}/events`, { key: "billingRead" });
    expect(wire.lockEventsSchema.parse(await events.json()).events.length).toBeGreaterThan(0);
    const token = await callAs(`/v1/locks/${name}/tokens/${lease.token}`, { key: "billingRead" });
    expect(wire.tokenCheckSchema.parse(await token.json()).held).toBe(true);
    wire.lockDirectorySchema.parse(
      await (await callAs("/v1/locks?prefix=billing:", { key: "billingRead" })).json(),
    );
    const release = await callAs(`/v1/locks/${name}/release`, {
      key: "billingWrite",
      body: { leaseId: lease.leaseId },
    });
    wire.releaseResponseSchema.parse(await release.json());
    const forced = await callAs(`/v1/locks/${name}/force-release`, { method: "POST", key: "admin" });
    wire.forceReleaseResultSchema.parse(await forced.json());
    wire.healthSchema.parse(await (await callAs("/healthz")).json());

    const problems: [string, string, Response][] = [
      ["/v1/locks/{name}/acquire", "post", await callAs(`/v1/locks/${name}/acquire`, { body: { ttlMs: 5 } })],
      [
        "/v1/locks/{name}/acquire",
        "post",
        await callAs(`/v1/locks/${name}/acquire`, { key: "billingWrite", body: { ttlMs: 5 } }),
      ],
      ["/v1/locks/{name}", "get", await callAs("/v1/locks/payments:x", { key: "billingRead" })],
      ["/v1/locks", "get", await callAs("/v1/locks?limit=x", { key: "billingRead" })],
      [
        "/v1/locks/{name}/force-release",
        "post",
        await callAs(`/v1/locks/${name}/force-release`, { method: "POST", key: "billingWrite" }),
      ],
      [
        "/v1/locks/{name}/renew",
        "post",
        await callAs(`/v1/locks/${name}/renew`, { key: "billingWrite", body: { leaseId: lease.leaseId } }),
      ],
    ];
    const seen = new Set<string>();
    for (const [path, method, res] of problems) {
      const problem = wire.problemSchema.parse(await res.json());
      expect(res.status).toBe(problem.status);
      expect(documentedCodes(doc, path, method)).toContain(problem.code);
      seen.add(problem.code);
    }
    expect([...seen].sort()).toEqual([
      "forbidden",
      "forbidden_scope",
      "invalid_query",
      "invalid_ttl",
      "not_held",
      "unauthorized",
    ]);
  });
});
