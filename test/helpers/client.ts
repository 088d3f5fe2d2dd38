/**
 * The client library wired to the Worker inside the test runtime: every request (and session upgrade) goes
 * through the Worker's real fetch entry, auth off. Not a fake: no part of the server is stood in for.
 */
import { exports } from "cloudflare:workers";
import { type ClientOptions, EdgelockClient, type FetchLike } from "../../client/src/index.ts";

/** The Worker's own fetch entry, as a client's `fetch`. */
export const workerFetch: FetchLike = (input, init) => exports.default.fetch(input, init);

/** A client of the Worker in this runtime, with `options` on top of its url and fetch. */
export function workerClient(options: Omit<ClientOptions, "url"> = {}): EdgelockClient {
  return new EdgelockClient({ url: "https://edgelock.test", fetch: workerFetch, ...options });
}
