/**
 * Opening a session's WebSocket (`GET /v1/locks/{name}/session`): with a WHATWG `WebSocket` constructor
 * (Node ≥ 22, browsers, Deno, Bun, or one you pass), the key offered as the subprotocol `bearer.<key>`; or,
 * in the Workers runtime, as a `fetch` upgrade through the client's `fetch` (a service binding's, too) with
 * the usual `Authorization` header. It knows nothing of frames; session-connection.ts speaks over the socket.
 */
import { ServiceError, ValidationError } from "./errors.ts";
import { SESSION_PROTOCOL } from "./protocol.ts";
import type { HttpTransport } from "./transport.ts";

/** The part of a WHATWG WebSocket a session uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: "error", listener: (event: unknown) => void): void;
}

/**
 * A WHATWG `WebSocket` constructor: `globalThis.WebSocket` on Node ≥ 22, Deno, Bun and in browsers, or
 * e.g. the `ws` package's on Node 20.
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A Workers socket from a `fetch` upgrade, which must be accepted before use. */
interface AcceptableSocket extends WebSocketLike {
  accept(): void;
}

/** The WebSocket's `OPEN` readyState. */
export const OPEN = 1;

/** RFC 7230 token characters: what a subprotocol (and so a key offered as one) may contain. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export interface SocketOpenerOptions {
  url: string;
  apiKey: string | undefined;
  /** The constructor to use; `undefined` picks `globalThis.WebSocket`, or a `fetch` upgrade in Workers. */
  WebSocket: WebSocketConstructor | undefined;
  /** The client's HTTP transport: for `fetch` upgrades, and to learn why a refused handshake was refused. */
  http: HttpTransport;
}

/** Opens sessions' sockets the one way this runtime and these options allow. */
export class SocketOpener {
  readonly #wsBase: string;
  readonly #protocols: string[];
  readonly #http: HttpTransport;
  readonly #WebSocket: WebSocketConstructor | undefined;

  constructor(options: SocketOpenerOptions) {
    this.#wsBase = options.url.replace(/\/+$/, "").replace(/^http/i, "ws");
    this.#http = options.http;
    this.#protocols = [SESSION_PROTOCOL];
    const ctor = options.WebSocket ?? (isWorkers() ? undefined : globalWebSocket());
    if (ctor === undefined && !isWorkers()) {
      throw new ValidationError(
        "invalid_argument",
        "sessions need a WebSocket and this runtime has none (Node 20 has no global WebSocket): use Node ≥ 22, " +
          "start Node 20 with --experimental-websocket, or pass a WebSocket constructor as options.WebSocket " +
          '(e.g. `import { WebSocket } from "ws"`)',
      );
    }
    if (ctor !== undefined && options.apiKey !== undefined) {
      if (!TOKEN.test(options.apiKey)) {
        throw new ValidationError(
          "invalid_argument",
          "this API key cannot be offered as a WebSocket subprotocol (it has characters such as / or =); " +
            "edgelock's keys (elk_ + base64url) can",
        );
      }
      this.#protocols.push(`bearer.${options.apiKey}`);
    }
    this.#WebSocket = ctor;
  }

  /**
   * Opens the session socket of lock `name`; resolves once it is open. A refused handshake throws the
   * server's problem (401, 403, 429 …) when it can be learnt, else a retryable `network_error`.
   */
  async open(name: string, timeoutMs: number, signal?: AbortSignal): Promise<WebSocketLike> {
    const path = `/v1/locks/${encodeURIComponent(name)}/session`;
    if (this.#WebSocket === undefined) {
      const ws = (await this.#http.upgrade(path, { timeoutMs, signal })) as AcceptableSocket;
      ws.accept();
      return ws;
    }
    const ws = new this.#WebSocket(`${this.#wsBase}${path}`, this.#protocols);
    const opened = await new Promise<string | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        resolve(`no handshake within ${timeoutMs}ms`);
        ws.close();
      }, timeoutMs);
      const onAbort = (): void => {
        clearTimeout(timer);
        ws.close();
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = (failure: string | null): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        resolve(failure);
      };
      ws.addEventListener("open", () => settle(null));
      ws.addEventListener("close", (e) => settle(`closed during the handshake (${e.code})`));
      ws.addEventListener("error", () => settle("the handshake failed"));
    });
    if (opened === null) return ws;
    // A WebSocket hides the refusal's status and body; the same request over HTTP shows them.
    await this.#http.probeSession(path, { timeoutMs, signal });
    throw new ServiceError("network_error", `could not open the session of ${name}: ${opened}`);
  }
}

function isWorkers(): boolean {
  return "WebSocketPair" in globalThis;
}

function globalWebSocket(): WebSocketConstructor | undefined {
  const ctor = (globalThis as { WebSocket?: unknown }).WebSocket;
  return typeof ctor === "function" ? (ctor as WebSocketConstructor) : undefined;
}
