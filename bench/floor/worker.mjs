/**
 * The bench's floor Worker: a no-op route, a no-op Durable Object method, and a Durable Object method that
 * does one SQLite write in one transaction (what one edgelock state change costs at least), alone and with
 * a setAlarm; and the baton, a lock with no rules that the contended counter runs on as its floor. It reads
 * the request body like edgelock's routes do, and is not part of the product.
 */
import { DurableObject } from "cloudflare:workers";

export class FloorObject extends DurableObject {
  /** The baton's holder (an id), and its waiters in arrival order: memory only, as a floor needs no more. */
  holder = undefined;
  waiters = [];

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

  /**
   * One write plus moving the object's alarm: the most an edgelock acquire or release writes (the lock
   * object moves its alarm only earlier).
   */
  writeAlarm() {
    const now = this.write();
    void this.ctx.storage.setAlarm(now + 60_000);
    return now;
  }

  /**
   * The baton: the least a lock can do per critical section on this platform, as a floor for the contended
   * counter (bench/systems/baton.mjs). Acquire is one write + setAlarm, then a wait in memory until the
   * holder passes the baton; release is one write + setAlarm that answers the next waiter in the same
   * commit. Two write + setAlarm calls per section, and nothing else: no leases, no TTLs, no history.
   */
  batonAcquire(id) {
    this.writeAlarm();
    if (this.holder === undefined) {
      this.holder = id;
      return { granted: true };
    }
    const { promise, resolve } = Promise.withResolvers();
    this.waiters.push({ id, resolve });
    return promise;
  }

  batonRelease(id) {
    if (this.holder !== id) throw new Error(`baton: ${id} does not hold it`);
    this.writeAlarm();
    const next = this.waiters.shift();
    this.holder = next?.id;
    next?.resolve({ granted: true });
    return { released: true };
  }

  alarm() {}
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const body = request.method === "POST" ? await request.text() : "";
    if (pathname === "/healthz" || pathname === "/noop") return Response.json({ ok: true });
    const baton = /^\/baton\/([^/]+)\/(acquire|release)$/.exec(pathname);
    if (baton !== null) {
      const { id } = JSON.parse(body);
      const stub = env.FLOOR.getByName(baton[1]);
      return Response.json(await (baton[2] === "acquire" ? stub.batonAcquire(id) : stub.batonRelease(id)));
    }
    const match = /^\/do\/([^/]+)\/(noop|write|writeAlarm)$/.exec(pathname);
    if (match === null) return new Response("not found", { status: 404 });
    const stub = env.FLOOR.getByName(match[1]);
    const value = await stub[match[2]]();
    return Response.json({ value });
  },
};
