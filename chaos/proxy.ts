/**
 * The fault-injecting HTTP proxy between the chaos clients and the server. Every request is forwarded
 * whole; for a seeded fraction of POSTs the proxy lets the server act, reads its answer, and then destroys the
 * client's connection instead of answering (a "dropped response"). It also keeps forwarding when the client
 * has gone away, so its log holds every answer the server gave: the authoritative record of grants, renews
 * and releases that the checker works from, including grants nobody received. Session WebSockets pass
 * through session-relay.ts, which logs their frames the same way and can cut them.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { JsonlStream } from "./jsonl.ts";
import type { Rng } from "./rng.ts";
import {
  type CutMode,
  NOT_FORWARDED,
  type PushRecord,
  type SessionExchange,
  type SessionRecord,
  sessionRelays,
} from "./session-relay.ts";

/** One request/answer pair as seen by the proxy; times are this machine's epoch ms (same clock as workerd). */
export interface Exchange {
  readonly kind: "exchange";
  readonly id: number;
  readonly method: string;
  readonly path: string;
  /** When the request was sent upstream: a lower bound on when the server acted on it. */
  readonly sentAt: number;
  readonly answeredAt: number;
  readonly request: unknown;
  readonly status: number | null;
  readonly response: unknown;
  readonly upstreamError: string | null;
  /** The answer was withheld on purpose and the client's connection destroyed. */
  readonly dropped: boolean;
  /** The client had already gone (crashed or timed out) when the answer came. */
  readonly clientGone: boolean;
  /** For a session frame (method `WS`): the proxy's number of the session it went over. */
  readonly session?: number;
}

/** Everything proxy.jsonl holds: HTTP and session exchanges, sessions' lives, and pushed frames. */
export type ProxyRecord = Exchange | SessionExchange | SessionRecord | PushRecord;

/** The `upstreamError` of a request that arrived while no server was up: it never reached one. */
export const SERVER_DOWN = "server down";

/** Whether an exchange never reached a server (so the server did nothing with it). */
export function neverSent(ex: Exchange): boolean {
  return ex.status === null && (ex.upstreamError === SERVER_DOWN || ex.upstreamError === NOT_FORWARDED);
}

export interface ChaosProxy {
  readonly url: string;
  setUpstream(url: string | null): void;
  /** Cuts one open session (see session-relay.ts); returns its number, or null when none is open. */
  cutSession(rng: Rng, mode: CutMode): number | null;
  readonly stats: {
    requests: number;
    dropped: number;
    upstreamErrors: number;
    sessions: number;
    refused: number;
    cuts: number;
    silentCuts: number;
  };
  close(): Promise<void>;
}

export async function startProxy(opts: {
  rng: Rng;
  dropRate: number;
  log: JsonlStream;
}): Promise<ChaosProxy> {
  let upstream: URL | null = null;
  let nextId = 1;
  const httpStats = { requests: 0, dropped: 0, upstreamErrors: 0 };
  const relays = sessionRelays(opts.log, () => nextId++);

  const server: Server = createServer((req, res) => {
    const id = nextId++;
    httpStats.requests++;
    let clientGone = false;
    res.on("close", () => {
      if (!res.writableFinished) clientGone = true;
    });
    readBody(req).then(
      (body) => {
        const sentAt = Date.now();
        const finish = (status: number | null, text: string, upstreamError: string | null): void => {
          const dropped =
            upstreamError === null && !clientGone && req.method === "POST" && opts.rng.chance(opts.dropRate);
          if (dropped) httpStats.dropped++;
          if (upstreamError !== null) httpStats.upstreamErrors++;
          const exchange: Exchange = {
            kind: "exchange",
            id,
            method: req.method ?? "",
            path: req.url ?? "",
            sentAt,
            answeredAt: Date.now(),
            request: parseJson(body),
            status,
            response: parseJson(text),
            upstreamError,
            dropped,
            clientGone,
          };
          opts.log.write({ ...exchange });
          if (dropped || upstreamError !== null || clientGone) {
            // Like a connection reset after the server acted: the client sees a network error.
            req.socket.destroy();
            return;
          }
          res.writeHead(status ?? 502, { "content-type": "application/json", connection: "close" });
          res.end(text);
        };
        if (upstream === null) return finish(null, "", SERVER_DOWN);
        const up = httpRequest(
          new URL(req.url ?? "/", upstream),
          {
            method: req.method,
            agent: false,
            headers: {
              "content-type": req.headers["content-type"] ?? "application/json",
              connection: "close",
            },
          },
          (upRes) => {
            readBody(upRes).then(
              (text) => finish(upRes.statusCode ?? null, text, null),
              (err: Error) => finish(null, "", err.message),
            );
          },
        );
        up.on("error", (err) => finish(null, "", err.message));
        up.end(body);
      },
      () => req.socket.destroy(),
    );
  });
  server.on("upgrade", (req: IncomingMessage, socket, head: Buffer) =>
    relays.handle(req, socket, head, upstream),
  );
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const addr = server.address();
  if (addr === null || typeof addr !== "object") throw new Error("proxy has no address");
  return {
    url: `http://127.0.0.1:${addr.port}`,
    setUpstream: (url) => {
      upstream = url === null ? null : new URL(url);
    },
    cutSession: (rng, mode) => relays.cut(rng, mode),
    get stats() {
      return { ...httpStats, ...relays.stats };
    },
    close: async () => {
      await relays.closeAll();
      await new Promise<void>((res) => {
        server.closeAllConnections();
        server.close(() => res());
      });
    },
  };
}

function readBody(stream: IncomingMessage): Promise<string> {
  return new Promise((res, rej) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => res(Buffer.concat(chunks).toString("utf8")));
    stream.on("error", rej);
    stream.on("aborted", () => rej(new Error("aborted")));
  });
}

function parseJson(text: string): unknown {
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
