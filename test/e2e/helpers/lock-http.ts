/**
 * Raw HTTP calls to the service for e2e tests that act behind a client's back (releasing its lease,
 * reading the lock's state), so the tests never rely on the client to check the client.
 */
import type { LockView } from "../../../client/src/protocol.ts";

/** `Authorization` for `key`, or no header (for a server with auth off). */
function auth(key: string | undefined): Record<string, string> {
  return key === undefined ? {} : { authorization: `Bearer ${key}` };
}

export async function rawRelease(
  baseUrl: string,
  name: string,
  leaseId: string,
  key?: string,
): Promise<Response> {
  return fetch(`${baseUrl}/v1/locks/${name}/release`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth(key) },
    body: JSON.stringify({ leaseId }),
  });
}

export async function rawStatus(baseUrl: string, name: string, key?: string): Promise<LockView> {
  const res = await fetch(`${baseUrl}/v1/locks/${name}`, { headers: auth(key) });
  if (!res.ok) throw new Error(`status of ${name}: HTTP ${res.status}`);
  return (await res.json()) as LockView;
}

/**
 * These tests run the server without API keys. The auth layer (being added) refuses every request when no
 * keys are configured unless this variable is set; before it lands the variable is unused.
 */
export const NO_AUTH = { EDGELOCK_INSECURE_NO_AUTH: "true" };

let counter = 0;
/** A lock name no other test uses. */
export function uniqueName(label: string): string {
  counter += 1;
  return `e2e-${label}-${counter}-${Date.now().toString(36)}`;
}
