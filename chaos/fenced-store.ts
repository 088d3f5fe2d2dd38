/**
 * The fenced store: the shared resource the chaos clients protect with the lock. It keeps, per resource, the
 * highest fencing token it has accepted and refuses any write with a lower token (equal is the same holder
 * writing again). It runs in the orchestrator process, single-threaded, so its check-and-set is atomic; every
 * decision is logged for the checker.
 */
import { createServer, type Server } from "node:http";
import type { JsonlStream } from "./jsonl.ts";

export interface WriteRequest {
  resource: string;
  token: number;
  leaseId: string;
  writer: string;
  /** The writer knows it stalled past its lease: the fence must be what stops this write. */
  late: boolean;
}

export interface WriteAnswer {
  accepted: boolean;
  highest: number;
  /** When the store decided (epoch ms), which is what matters for whether the writer still held the lock. */
  at: number;
}

export interface FencedStore {
  readonly url: string;
  readonly stats: { accepted: number; rejected: number };
  close(): Promise<void>;
}

export async function startFencedStore(log: JsonlStream): Promise<FencedStore> {
  const highest = new Map<string, number>();
  const stats = { accepted: 0, rejected: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const w = JSON.parse(Buffer.concat(chunks).toString("utf8")) as WriteRequest;
      const at = Date.now();
      const seen = highest.get(w.resource) ?? 0;
      const accepted = w.token >= seen;
      if (accepted) highest.set(w.resource, w.token);
      if (accepted) stats.accepted++;
      else stats.rejected++;
      log.write({ kind: "store-write", at, ...w, accepted, highestBefore: seen });
      const answer: WriteAnswer = { accepted, highest: Math.max(seen, w.token), at };
      res.writeHead(accepted ? 200 : 409, { "content-type": "application/json" });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const addr = server.address();
  if (addr === null || typeof addr !== "object") throw new Error("store has no address");
  return {
    url: `http://127.0.0.1:${addr.port}`,
    stats,
    close: () =>
      new Promise((res) => {
        server.closeAllConnections();
        server.close(() => res());
      }),
  };
}
