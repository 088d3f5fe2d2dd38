/**
 * The fenced store: the shared resource the chaos clients protect with the lock. Per resource it keeps the
 * highest token of any access (`seen`) and of any write (`written`). A write is refused below `seen` (someone
 * newer, reader or writer, has been here); a read is refused below `written` (a newer writer has been here);
 * equal is the same holder again. Readers raise `seen`, so a stalled writer cannot write under a newer reader.
 * It runs in the orchestrator process, single-threaded, so check-and-set is atomic; every decision is logged.
 */
import { createServer, type Server } from "node:http";
import type { JsonlStream } from "./jsonl.ts";

export interface AccessRequest {
  op: "write" | "read";
  resource: string;
  token: number;
  leaseId: string;
  client: string;
  /** The client knows it stalled past its lease: the fence must be what stops this access. */
  late: boolean;
}

export interface AccessAnswer {
  accepted: boolean;
  /** `seen` and `written` before this access. */
  seen: number;
  written: number;
  /** When the store decided (epoch ms), which is what matters for whether the client still held the lock. */
  at: number;
}

/** One line of store.jsonl. */
export type StoreAccess = { kind: "store-access" } & AccessRequest & AccessAnswer;

export interface FencedStore {
  readonly url: string;
  close(): Promise<void>;
}

export async function startFencedStore(log: JsonlStream): Promise<FencedStore> {
  const seen = new Map<string, number>();
  const written = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const a = JSON.parse(Buffer.concat(chunks).toString("utf8")) as AccessRequest;
      const answer: AccessAnswer = {
        accepted: false,
        seen: seen.get(a.resource) ?? 0,
        written: written.get(a.resource) ?? 0,
        at: Date.now(),
      };
      answer.accepted = a.token >= (a.op === "write" ? answer.seen : answer.written);
      if (answer.accepted) {
        seen.set(a.resource, Math.max(answer.seen, a.token));
        if (a.op === "write") written.set(a.resource, a.token);
      }
      const record: StoreAccess = { kind: "store-access", ...a, ...answer };
      log.write({ ...record });
      res.writeHead(answer.accepted ? 200 : 409, { "content-type": "application/json" });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const addr = server.address();
  if (addr === null || typeof addr !== "object") throw new Error("store has no address");
  return {
    url: `http://127.0.0.1:${addr.port}`,
    close: () =>
      new Promise((res) => {
        server.closeAllConnections();
        server.close(() => res());
      }),
  };
}
