/**
 * One exchange with the edgelock API, over HTTP (`fetch`) or over Workers RPC (a service binding to the
 * `EdgelockRpc` entrypoint): send the request, turn the answer into a body or a typed error. A transport
 * never retries and knows nothing of leases; client.ts and lease.ts own those decisions.
 */
import { AuthError, EdgelockError, errorFromProblem, ServiceError } from "./errors.ts";
import type { EdgelockRpcApi, ErrorCode, Problem } from "./protocol.ts";

/**
 * The `fetch` the client calls. Any WHATWG fetch fits: the global one, a service binding's
 * (`env.EDGELOCK.fetch.bind(env.EDGELOCK)`), or a test's `exports.default.fetch`.
 */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** What a transport can be asked to do to one lock. */
export type Action = "acquire" | "renew" | "release" | "inspect";

export interface CallOptions {
  /** The caller's signal: when it aborts, the call rejects with its reason (not a ServiceError). */
  signal?: AbortSignal | undefined;
  /** Give up after this long and fail with a retryable `network_error`. */
  timeoutMs: number;
}

export interface Transport {
  /** Sends `action` on the lock `name` (`body` is the request body; `null` for `inspect`). */
  call(name: string, action: Action, body: object | null, options: CallOptions): Promise<unknown>;
}

export interface HttpTransportOptions {
  /** Base URL of the service, e.g. `https://edgelock.example.workers.dev`. */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string | undefined;
  /** @default globalThis.fetch */
  fetch?: FetchLike | undefined;
  /** Extra headers for every request (tracing ids, say). */
  headers?: Record<string, string> | undefined;
}

/** API v1 over HTTP: POST a JSON body to `/v1/locks/{name}/{action}`, or GET the lock for `inspect`. */
export class HttpTransport implements Transport {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: FetchLike;

  constructor(options: HttpTransportOptions) {
    this.#base = options.url.replace(/\/+$/, "");
    this.#headers = { accept: "application/json, application/problem+json", ...options.headers };
    if (options.apiKey !== undefined) this.#headers.authorization = `Bearer ${options.apiKey}`;
    // Wrapped, not stored bare: a global fetch called as a method of another object throws "Illegal invocation".
    const injected = options.fetch;
    this.#fetch = injected ?? ((input, init) => globalThis.fetch(input, init));
  }

  async call(name: string, action: Action, body: object | null, options: CallOptions): Promise<unknown> {
    const path = `/v1/locks/${encodeURIComponent(name)}${action === "inspect" ? "" : `/${action}`}`;
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
    const init: RequestInit = {
      method: body === null ? "GET" : "POST",
      headers: body === null ? this.#headers : { ...this.#headers, "content-type": "application/json" },
      signal,
    };
    if (body !== null) init.body = JSON.stringify(body);
    const failed = (error: unknown): unknown => {
      if (options.signal?.aborted) return options.signal.reason;
      if (error instanceof EdgelockError) return error;
      return networkError(this.#base, timeout.aborted ? timedOut(options.timeoutMs) : error);
    };
    let response: Response;
    try {
      response = await this.#fetch(`${this.#base}${path}`, init);
    } catch (error) {
      throw failed(error);
    }
    const text = await response.text().catch((error: unknown) => {
      throw failed(error);
    });
    return parseAnswer(response, text);
  }
}

/**
 * API v1 over Workers RPC, through a service binding to the `EdgelockRpc` entrypoint: no URL, no JSON, no
 * HTTP. An RPC call cannot be cancelled once sent, so an abort or timeout only stops waiting for it.
 */
export class RpcTransport implements Transport {
  readonly #binding: EdgelockRpcApi;
  readonly #apiKey: string | undefined;

  constructor(binding: EdgelockRpcApi, apiKey: string | undefined) {
    this.#binding = binding;
    this.#apiKey = apiKey;
  }

  async call(name: string, action: Action, body: object | null, options: CallOptions): Promise<unknown> {
    const target = this.#apiKey === undefined ? { name } : { name, apiKey: this.#apiKey };
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
    signal.throwIfAborted();
    let pending: Promise<unknown>;
    try {
      pending = this.#invoke(target, action, body);
    } catch (error) {
      pending = Promise.reject(error);
    }
    // A call we stop waiting for may still settle later; its outcome is the caller's retry's business.
    pending.catch(() => undefined);
    let stop: () => void = () => undefined;
    const stopped = new Promise<never>((_, reject) => {
      stop = () => reject(options.signal?.aborted ? options.signal.reason : timedOut(options.timeoutMs));
      signal.addEventListener("abort", stop, { once: true });
    });
    stopped.catch(() => undefined);
    let result: unknown;
    try {
      result = await Promise.race([pending, stopped]);
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw rpcFailure(error);
    } finally {
      signal.removeEventListener("abort", stop);
    }
    if (typeof result !== "object" || result === null || !("ok" in result)) {
      throw new ServiceError(
        "bad_response",
        "the RPC answer is not edgelock's: is the binding's entrypoint EdgelockRpc?",
      );
    }
    const answer = result as { ok: unknown; value?: unknown; problem?: unknown };
    if (answer.ok === true) return answer.value;
    if (!isProblem(answer.problem)) {
      throw new ServiceError("bad_response", "the RPC answer is neither a value nor a problem");
    }
    const problem = answer.problem as ProblemLike;
    const title = problem.title ?? problem.code;
    const status = typeof problem.status === "number" ? problem.status : 500;
    throw errorFromProblem({ ...problem, title, detail: problem.detail ?? title }, status);
  }

  #invoke(target: { name: string; apiKey?: string }, action: Action, body: object | null): Promise<unknown> {
    switch (action) {
      case "acquire":
        return this.#binding.acquire({
          ...target,
          request: body as Parameters<EdgelockRpcApi["acquire"]>[0]["request"],
        });
      case "renew":
        return this.#binding.renew({
          ...target,
          request: body as Parameters<EdgelockRpcApi["renew"]>[0]["request"],
        });
      case "release":
        return this.#binding.release({
          ...target,
          request: body as Parameters<EdgelockRpcApi["release"]>[0]["request"],
        });
      case "inspect":
        return this.#binding.inspect(target);
      default:
        return assertNever(action);
    }
  }
}

/** A failed RPC call: an exception of the entrypoint's own code is a bug (`internal`), anything else transient. */
function rpcFailure(error: unknown): unknown {
  if (error instanceof EdgelockError) return error;
  const e =
    typeof error === "object" && error !== null ? (error as { remote?: unknown; retryable?: unknown }) : {};
  const message = error instanceof Error ? error.message : String(error);
  if (e.remote === true && e.retryable !== true) {
    return new ServiceError("internal", `the edgelock entrypoint failed: ${message}`, { cause: error });
  }
  return new ServiceError("network_error", `the edgelock binding failed: ${message}`, { cause: error });
}

function networkError(base: string, cause: unknown): ServiceError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new ServiceError("network_error", `could not reach ${base}: ${message}`, { cause });
}

function timedOut(timeoutMs: number): Error {
  return new Error(`no answer within ${timeoutMs}ms`);
}

function parseAnswer(response: Response, text: string): unknown {
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (response.ok) {
    if (json === undefined) {
      throw new ServiceError("bad_response", `expected JSON from the service, got ${describe(text)}`, {
        status: response.status,
      });
    }
    return json;
  }
  const retryAfterMs = retryAfterHeaderMs(response.headers.get("retry-after"));
  if (isProblem(json)) {
    const title = json.title ?? json.code;
    throw errorFromProblem({ ...json, title, detail: json.detail ?? title }, response.status, retryAfterMs);
  }
  throw statusError(response.status, text, retryAfterMs);
}

/** An error answer without a problem body (a proxy, or an auth layer that answers plain text). */
function statusError(status: number, text: string, retryAfterMs: number | undefined): EdgelockError {
  const detail = `HTTP ${status}: ${describe(text)}`;
  if (status === 401) return new AuthError("unauthorized", detail, { status });
  if (status === 403) return new AuthError("forbidden", detail, { status });
  // A proxy's 502/503/504 says the service is out of reach for now; any other 5xx is a failure of its own.
  const code: ErrorCode =
    status === 502 || status === 503 || status === 504
      ? "unavailable"
      : status >= 500
        ? "internal"
        : "not_found";
  return new ServiceError(status >= 500 || status === 404 ? code : "bad_response", detail, {
    status,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
}

/** A problem body as it may arrive: `detail` and `title` are optional on the wire (RFC 9457). */
type ProblemLike = Omit<
  { [K in keyof Problem as string extends K ? never : K]: Problem[K] },
  "detail" | "title"
> & {
  detail?: string;
  title?: string;
};

function isProblem(value: unknown): value is ProblemLike {
  if (typeof value !== "object" || value === null) return false;
  const { code, detail, title } = value as { code?: unknown; detail?: unknown; title?: unknown };
  return (
    typeof code === "string" &&
    (detail === undefined || typeof detail === "string") &&
    (title === undefined || typeof title === "string")
  );
}

function retryAfterHeaderMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1_000 : undefined;
}

function describe(text: string): string {
  const trimmed = text.trim().replace(/\s+/g, " ");
  if (trimmed === "") return "an empty body";
  return trimmed.length > 120 ? `"${trimmed.slice(0, 120)}…"` : `"${trimmed}"`;
}

function assertNever(value: never): never {
  throw new Error(`unexpected ${String(value)}`);
}
