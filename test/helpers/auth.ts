/**
 * Auth test fixtures: a set of keys with their `EDGELOCK_KEYS` config, and `call()`, which sends a request
 * through the Hono app with that config in place of the test Worker's default (auth off, see
 * vitest.config.ts) while keeping the real LOCK binding.
 */
import { env } from "cloudflare:workers";
import { app } from "../../worker/app.ts";

/** Raw keys, as clients hold them. Only their hashes go into the config. */
export const KEYS = {
  admin: "elk_test_admin_0000000000000000000000000000",
  billingWrite: "elk_test_billing_write_00000000000000000000",
  billingWrite2: "elk_test_billing_write2_0000000000000000000",
  billingRead: "elk_test_billing_read_000000000000000000000",
  paymentsWrite: "elk_test_payments_write_0000000000000000000",
  billingAdmin: "elk_test_billing_admin_00000000000000000000",
} as const;
export type KeyName = keyof typeof KEYS;

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function keysConfig(): Promise<string> {
  return JSON.stringify([
    { name: "ops-admin", sha256: await sha256Hex(KEYS.admin), role: "admin", prefixes: ["*"] },
    { name: "billing-rw", sha256: await sha256Hex(KEYS.billingWrite), role: "write", prefixes: ["billing:"] },
    {
      name: "billing-rw2",
      sha256: await sha256Hex(KEYS.billingWrite2),
      role: "write",
      prefixes: ["billing:"],
    },
    { name: "billing-ro", sha256: await sha256Hex(KEYS.billingRead), role: "read", prefixes: ["billing:"] },
    {
      name: "payments-rw",
      sha256: await sha256Hex(KEYS.paymentsWrite),
      role: "write",
      prefixes: ["payments:", "shared."],
    },
    {
      name: "billing-admin",
      sha256: await sha256Hex(KEYS.billingAdmin),
      role: "admin",
      prefixes: ["billing:"],
    },
  ]);
}

/** The test Worker's env with auth switched back on and the given overrides (undefined deletes). */
export function envWith(overrides: Record<string, string | undefined>): Env {
  const next: Record<string, unknown> = { ...env, EDGELOCK_INSECURE_NO_AUTH: undefined };
  for (const [k, v] of Object.entries(overrides)) next[k] = v;
  for (const [k, v] of Object.entries(next)) if (v === undefined) delete next[k];
  return next as unknown as Env;
}

let securedEnv: Env | undefined;
/** The env with the fixture keys configured. */
export async function secured(): Promise<Env> {
  securedEnv ??= envWith({ EDGELOCK_KEYS: await keysConfig() });
  return securedEnv;
}

export interface CallInit {
  method?: "GET" | "POST" | "OPTIONS";
  key?: KeyName;
  /** A raw Authorization header, instead of a key's. */
  authorization?: string;
  body?: unknown;
  headers?: Record<string, string>;
  env?: Env;
}

/** Sends a request through the Hono app with the fixture keys configured (or `init.env`), as `init.key`. */
export async function callAs(path: string, init: CallInit = {}): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key !== undefined) headers.authorization = `Bearer ${KEYS[init.key]}`;
  if (init.authorization !== undefined) headers.authorization = init.authorization;
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const method = init.method ?? (init.body === undefined ? "GET" : "POST");
  return app.request(
    path,
    { method, headers, ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }) },
    init.env ?? (await secured()),
  );
}
