/**
 * The bench's floor Worker: a no-op route, a no-op Durable Object method, and a Durable Object method that
 * does one SQLite write in one transaction (what one edgelock state change costs at least). It reads the
 * request body like edgelock's routes do, and is not part of the product.
 */
import { DurableObject } from "cloudflare:workers";

export class FloorObject extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS cell (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)");
  }

  noop() {
    return 1;
  }

  write() {
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      this.ctx.storage.sql.exec("INSERT OR REPLACE INTO cell (id, value) VALUES (1, ?)", now);
    });
    return now;
  }
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (request.method === "POST") await request.text();
    if (pathname === "/healthz" || pathname === "/noop") return Response.json({ ok: true });
    const match = /^\/do\/([^/]+)\/(noop|write)$/.exec(pathname);
    if (match === null) return new Response("not found", { status: 404 });
    const stub = env.FLOOR.getByName(match[1]);
    const value = match[2] === "noop" ? await stub.noop() : await stub.write();
    return Response.json({ value });
  },
};
