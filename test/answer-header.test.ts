import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { setAnswerHeader } from "../worker/answer-header.ts";

/** An app whose one middleware sets a header after `next()`, and the Response its handler built. */
function appWith(answer: () => Response) {
  let built: Response | undefined;
  const app = new Hono();
  app.use(async (c, next) => {
    await next();
    setAnswerHeader(c, "x-after", "set");
  });
  app.get("/", () => {
    built = answer();
    return built;
  });
  return { app, built: () => built };
}

describe("setAnswerHeader", () => {
  it("sets the header on the answer the handler built, without copying it", async () => {
    const { app, built } = appWith(() => Response.json({ ok: true }));
    const res = await app.request("/");
    expect(res.headers.get("x-after")).toBe("set");
    // Hono's c.header would have answered a copy (one per header set after next()).
    expect(res).toBe(built());
    expect(await res.json()).toEqual({ ok: true });
  });

  it("still sets it on a Response whose headers are immutable, by copying that one", async () => {
    const { app, built } = appWith(() => Response.redirect("https://example.com/next", 302));
    const res = await app.request("/");
    expect(() => built()?.headers.set("x-probe", "1")).toThrow(TypeError); // what the fallback is for
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("https://example.com/next");
    expect(res.headers.get("x-after")).toBe("set");
  });
});

describe("setAnswerHeader on a session's upgrade", () => {
  it("leaves a 101 answer as the runtime made it, WebSocket and headers", async () => {
    const { app, built } = appWith(() => {
      const [client, server] = Object.values(new WebSocketPair());
      server?.accept();
      return new Response(null, { status: 101, webSocket: client ?? null });
    });
    const res = await app.request("/");
    expect(res.status).toBe(101);
    expect(res).toBe(built());
    expect(res.webSocket).not.toBeNull();
    expect(res.headers.get("x-after")).toBeNull();
  });
});
