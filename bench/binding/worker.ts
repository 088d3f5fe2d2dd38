/**
 * The caller Worker of the RPC-vs-HTTP bench scenario: `GET /run?path=P&pairs=N` times N uncontended
 * acquire + release pairs on one lock, back to back, from inside workerd, over one of four paths: the client
 * library over Workers RPC or over the HTTP binding, and bare calls over each. Answers the latencies (ms).
 */
import { EdgelockClient, type EdgelockRpcApi } from "../../client/src/index.ts";

interface CallerEnv {
  EDGELOCK: EdgelockRpcApi;
  EDGELOCK_HTTP: Fetcher;
  /** The API key, when the bench runs edgelock with auth on. */
  BENCH_API_KEY?: string;
}

const WARMUP = 20;
type Pair = () => Promise<void>;

function paths(env: CallerEnv, name: string): Record<string, Pair> {
  const apiKey = env.BENCH_API_KEY || undefined;
  const viaRpc = new EdgelockClient({ binding: env.EDGELOCK, apiKey });
  const viaHttp = new EdgelockClient({
    url: "https://edgelock",
    fetch: (input, init) => env.EDGELOCK_HTTP.fetch(input, init),
    apiKey,
  });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
  const post = async (action: string, body: object): Promise<{ leaseId?: string }> => {
    const res = await env.EDGELOCK_HTTP.fetch(`https://edgelock/v1/locks/${name}/${action}`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${action}: HTTP ${res.status}`);
    return res.json();
  };
  const call = apiKey === undefined ? { name } : { name, apiKey };
  return {
    "client over RPC": async () => {
      await (await viaRpc.acquire(name, { ttl: 10_000 })).release();
    },
    "client over HTTP binding": async () => {
      await (await viaHttp.acquire(name, { ttl: 10_000 })).release();
    },
    "bare RPC calls": async () => {
      const got = await env.EDGELOCK.acquire({ ...call, request: { ttlMs: 10_000 } });
      if (!got.ok) throw new Error(`acquire: ${got.problem.code}`);
      const released = await env.EDGELOCK.release({ ...call, request: { leaseId: got.value.leaseId } });
      if (!released.ok) throw new Error(`release: ${released.problem.code}`);
    },
    "bare HTTP binding requests": async () => {
      const lease = await post("acquire", { ttlMs: 10_000 });
      await post("release", { leaseId: lease.leaseId ?? "" });
    },
  };
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const path = url.searchParams.get("path") ?? "";
    const pairs = Number(url.searchParams.get("pairs") ?? "100");
    const pair = paths(env, `bench-binding-${crypto.randomUUID().slice(0, 8)}`)[path];
    if (url.pathname !== "/run" || pair === undefined) return new Response("unknown path", { status: 404 });
    for (let i = 0; i < WARMUP; i++) await pair();
    const latencies: number[] = [];
    const started = performance.now();
    for (let i = 0; i < pairs; i++) {
      const t = performance.now();
      await pair();
      latencies.push(performance.now() - t);
    }
    return Response.json({ latencies, totalMs: performance.now() - started });
  },
} satisfies ExportedHandler<CallerEnv>;
