/** Calls the Worker inside the test runtime over its real fetch entry, with JSON in and out. */
import { exports } from "cloudflare:workers";

export interface Reply {
  status: number;
  type: string;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: test assertions read arbitrary JSON members
  body: any;
}

export async function call(method: string, path: string, body?: unknown): Promise<Reply> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers = { "content-type": "application/json" };
  }
  const res = await exports.default.fetch(`http://edgelock.test${path}`, init);
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    headers: res.headers,
    body: text === "" ? null : JSON.parse(text),
  };
}

export const acquire = (name: string, body: Record<string, unknown>) =>
  call("POST", `/v1/locks/${name}/acquire`, body);
export const renew = (name: string, body: Record<string, unknown>) =>
  call("POST", `/v1/locks/${name}/renew`, body);
export const release = (name: string, leaseId: string) =>
  call("POST", `/v1/locks/${name}/release`, { leaseId });
export const inspect = (name: string) => call("GET", `/v1/locks/${name}`);

export function tick(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
