/**
 * The bench's floor Worker: a no-op route, a no-op Durable Object method, and a Durable Object method that
 * does one SQLite write in one transaction (what one edgelock state change costs at least), alone and with
 * a setAlarm. It reads the request body like edgelock's routes do, and is not part of the product.
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

  /** One write plus moving the object's alarm, as every edgelock acquire and release does. */
  writeAlarm() {
    const now = this.write();
    void this.ctx.storage.setAlarm(now + 60_000);
    return now;
  }

  alarm() {}
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (request.method === "POST") await request.text();
    if (pathname === "/healthz" || pathname === "/noop") return Response.json({ ok: true });
    const match = /^\/do\/([^/]+)\/(noop|write|writeAlarm)$/.exec(pathname);
    if (match === null) return new Response("not found", { status: 404 });
    const stub = env.FLOOR.getByName(match[1]);
    const value = await stub[match[2]]();
    return Response.json({ value });
  },
};
