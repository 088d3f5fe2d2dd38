/**
 * API keys: the `EDGELOCK_KEYS` secret's format, its parsing, and matching a presented bearer key against
 * it. The secret holds SHA-256 hashes, never keys, so a leaked config (or log of it) grants nothing.
 * What a key may do to a given lock (role × name prefix) is `allows()`; the HTTP side is in auth.ts.
 */
import { z } from "zod";

/** Roles, weakest first: each can do everything the one before it can. */
export const ROLES = ["read", "write", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** What a route needs: `inspect` (read), `lock` (acquire, renew, release: write), `force` (force-release: admin). */
export const PERMISSIONS = { inspect: "read", lock: "write", force: "admin" } as const satisfies Record<
  string,
  Role
>;
export type Permission = keyof typeof PERMISSIONS;

/** The prefix that covers every lock name; spelled out so that an empty string never does by accident. */
export const ALL_LOCKS = "*";

/** Keys are at most this long; anything longer is refused before hashing. */
export const MAX_KEY_LENGTH = 256;

const keyEntrySchema = z.strictObject({
  /** Who this key is, in logs and in force-release records. Never secret. */
  name: z.string().regex(/^[A-Za-z0-9._@:-]{1,64}$/, "name: 1–64 of A–Z a–z 0–9 . _ @ : -"),
  /** SHA-256 of the key, lowercase or uppercase hex. */
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, "sha256: 64 hex digits (SHA-256 of the key)"),
  role: z.enum(ROLES),
  /** Lock-name prefixes this key may touch; "*" for all. */
  prefixes: z
    .array(
      z.union([
        z.literal(ALL_LOCKS),
        z.string().regex(/^[A-Za-z0-9._:-]{1,200}$/, "prefixes: lock-name characters, or '*'"),
      ]),
    )
    .min(1, "prefixes: at least one (use '*' for every lock)"),
});

/** The `EDGELOCK_KEYS` secret: a JSON array of key entries. */
export const keysConfigSchema = z
  .array(keyEntrySchema)
  .min(1, "list at least one key")
  .superRefine((keys, ctx) => {
    const seen = new Set<string>();
    for (const k of keys) {
      const hash = k.sha256.toLowerCase();
      if (seen.has(hash)) ctx.addIssue({ code: "custom", message: `key "${k.name}": the same hash twice` });
      seen.add(hash);
    }
  });

export type KeyEntry = z.output<typeof keyEntrySchema>;

/** A configured key, ready to match: its hash as bytes. */
export interface ApiKey {
  readonly name: string;
  readonly role: Role;
  readonly prefixes: readonly string[];
  readonly hash: Uint8Array;
}

export type KeysConfig = { ok: true; keys: readonly ApiKey[] } | { ok: false; error: string };

let cached: { raw: string; config: KeysConfig } | undefined;

/** Parses the secret; the result is cached per isolate for as long as the secret's text is the same. */
export function parseKeys(raw: string): KeysConfig {
  if (cached?.raw === raw) return cached.config;
  const config = parseUncached(raw);
  cached = { raw, config };
  return config;
}

function parseUncached(raw: string): KeysConfig {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, error: "EDGELOCK_KEYS is not valid JSON" };
  }
  const parsed = keysConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join(".")}` : "";
    return { ok: false, error: `EDGELOCK_KEYS is invalid${where}: ${issue?.message ?? "unknown issue"}` };
  }
  return {
    ok: true,
    keys: parsed.data.map((k) => ({
      name: k.name,
      role: k.role,
      prefixes: k.prefixes,
      hash: fromHex(k.sha256),
    })),
  };
}

/** SHA-256 of a key, as bytes. */
export async function hashKey(key: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
}

/**
 * The configured key whose hash equals `hash`, or null. Every configured hash is compared, in constant
 * time and without stopping at a match, so timing tells neither whether nor where a key matched.
 */
export function matchKey(keys: readonly ApiKey[], hash: Uint8Array): ApiKey | null {
  let found: ApiKey | null = null;
  for (const k of keys) {
    if (crypto.subtle.timingSafeEqual(k.hash, hash) && found === null) found = k;
  }
  return found;
}

/** Whether `key` may touch the lock `name` at all (tenant isolation). */
export function inScope(key: Pick<ApiKey, "prefixes">, name: string): boolean {
  return key.prefixes.some((p) => p === ALL_LOCKS || name.startsWith(p));
}

/**
 * The prefixes to list for a key that asks for the names under `prefix`: the prefix itself where the key
 * covers all of it, the key's own narrower prefixes under it otherwise, none where they do not meet.
 */
export function scopedPrefixes(key: Pick<ApiKey, "prefixes">, prefix: string): string[] {
  const out = new Set<string>();
  for (const p of key.prefixes) {
    if (p === ALL_LOCKS || prefix.startsWith(p)) out.add(prefix);
    else if (p.startsWith(prefix)) out.add(p);
  }
  // A prefix under another one in the list adds nothing.
  return [...out].filter((p, _, all) => !all.some((q) => q !== p && p.startsWith(q)));
}

/** Whether `key`'s role covers `permission`. */
export function hasRole(key: Pick<ApiKey, "role">, permission: Permission): boolean {
  return ROLES.indexOf(key.role) >= ROLES.indexOf(PERMISSIONS[permission]);
}

function fromHex(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}
