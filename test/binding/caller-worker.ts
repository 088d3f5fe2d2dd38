/**
 * A Worker that uses edgelock the way a user's Worker would: through a service binding, with the client
 * library. `POST /job?lock=NAME[&via=http]` runs one job under `withLock` and answers what it saw; the
 * binding test drives it end to end. Not part of edgelock: it is the other side of the binding.
 */
import { EdgelockClient, type EdgelockRpcApi } from "../../client/src/index.ts";

export interface CallerEnv {
  /** Service binding to edgelock's `EdgelockRpc` entrypoint. */
  EDGELOCK: EdgelockRpcApi;
  /** Service binding to edgelock's default entrypoint (HTTP). */
  EDGELOCK_HTTP: Fetcher;
  /** The API key this Worker uses (a secret in a real deployment). */
  EDGELOCK_TOKEN: string;
}

export function clientFor(env: CallerEnv, via: "rpc" | "http"): EdgelockClient {
  return via === "rpc"
    ? new EdgelockClient({ binding: env.EDGELOCK, apiKey: env.EDGELOCK_TOKEN })
    : new EdgelockClient({
        url: "https://edgelock",
        fetch: (input, init) => env.EDGELOCK_HTTP.fetch(input, init),
        apiKey: env.EDGELOCK_TOKEN,
      });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const lock = url.searchParams.get("lock");
    if (request.method !== "POST" || url.pathname !== "/job" || lock === null) {
      return new Response("POST /job?lock=NAME", { status: 404 });
    }
    const client = clientFor(env, url.searchParams.get("via") === "http" ? "http" : "rpc");
    const seen = await client.withLock(
      lock,
      async (lease) => {
        const view = await client.status(lock);
        return { token: lease.token, heldDuringJob: view.held, holderToken: view.holders[0]?.token };
      },
      { ttl: "5s", wait: "5s" },
    );
    const after = await client.status(lock);
    return Response.json({ ...seen, heldAfterJob: after.held });
  },
} satisfies ExportedHandler<CallerEnv>;
