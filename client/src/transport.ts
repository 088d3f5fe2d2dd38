/**
 * One HTTP exchange with the edgelock API: build the request (base URL, bearer key, JSON), send it through
 * the injected `fetch`, and turn the answer into a parsed body or a typed error. It never retries and
 * knows nothing of leases; client.ts and lease.ts own those decisions.
 */
import { AuthError, EdgelockError, errorFromProblem, ServiceError } from "./errors.ts";
import type { ErrorCode, Problem } from "./protocol.ts";
import { linkSignals, TimeoutError } from "./retry.ts";

/**
 * The `fetch` the client calls. Any WHATWG fetch fits: the global one, a service binding's
 * (`env.EDGELOCK.fetch.bind(env.EDGELOCK)`), or a test's `exports.default.fetch`.
 */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface TransportOptions {
  /** Base URL of the service, e.g. `https://edgelock.example.workers.dev`. */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string | undefined;
  /** @default globalThis.fetch */
  fetch?: FetchLike | undefined;
  /** Extra headers for every request (tracing ids, say). */
  headers?: Record<string, string> | undefined;
}

export interface CallOptions {
  /** The caller's signal: when it aborts, the call rejects with its reason (not a ServiceError). */
  signal?: AbortSignal | undefined;
  /** Give up after this long and fail with a retryable `network_error`. */
  timeoutMs: number;
}

export class Transport {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #fetch: FetchLike;

  constructor(options: TransportOptions) {
    this.#base = options.url.replace(/\/+$/, "");
    this.#headers = { accept: "application/json, application/problem+json", ...options.headers };
    if (options.apiKey !== undefined) this.#headers.authorization = `Bearer ${options.apiKey}`;
    // Wrapped, not stored bare: a global fetch called as a method of another object throws "Illegal invocation".
    const injected = options.fetch;
    this.#fetch = injected ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** POST a JSON body to `/v1/locks/{name}/{action}`, or GET the lock when `action` is omitted. */
  async call(
    name: string,
    action: string | null,
    body: object | null,
    options: CallOptions,
  ): Promise<unknown> {
    const path = `/v1/locks/${encodeURIComponent(name)}${action === null ? "" : `/${action}`}`;
    const { signal, dispose } = linkSignals([options.signal], options.timeoutMs);
    const init: RequestInit = {
      method: body === null ? "GET" : "POST",
      headers: body === null ? this.#headers : { ...this.#headers, "content-type": "application/json" },
      signal,
    };
    if (body !== null) init.body = JSON.stringify(body);
    try {
      let response: Response;
      try {
        response = await this.#fetch(`${this.#base}${path}`, init);
      } catch (error) {
        throw this.#networkError(error, options.signal, signal);
      }
      const text = await response.text().catch((error: unknown) => {
        throw this.#networkError(error, options.signal, signal);
      });
      return parseAnswer(response, text);
    } finally {
      dispose();
    }
  }

  #networkError(error: unknown, callerSignal: AbortSignal | undefined, linked: AbortSignal): unknown {
    if (callerSignal?.aborted) return callerSignal.reason;
    if (error instanceof EdgelockError) return error;
    const cause = linked.aborted && linked.reason instanceof TimeoutError ? linked.reason : error;
    const message = cause instanceof Error ? cause.message : String(cause);
    return new ServiceError("network_error", `could not reach ${this.#base}: ${message}`, { cause });
  }
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
  const code: ErrorCode = status === 503 ? "unavailable" : status >= 500 ? "internal" : "not_found";
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
