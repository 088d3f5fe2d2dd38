/**
 * The `edgelock` command: `run` holds a lock while a command runs (renewing in the background and
 * SIGTERMing the command if the lease is lost), and `acquire`/`renew`/`release`/`status` serve scripts.
 * Every failure is one line on stderr and a distinct exit code (EXIT_CODES). Process wiring lives in bin.ts.
 */
import { spawn } from "node:child_process";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { type AcquireOptions, EdgelockClient } from "./client.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { AuthError, EdgelockError, LeaseLostError, LockHeldError, ValidationError } from "./errors.ts";
import type { Lease } from "./lease.ts";
import type { LockMode, LockView, Lease as WireLease } from "./protocol.ts";

/** Exit codes, from sysexits(3) where one fits. `run` otherwise exits with the command's own code. */
export const EXIT_CODES = {
  ok: 0,
  /** Bad flags, lock name, duration or a request the server refused as invalid (EX_USAGE). */
  invalid: 64,
  /** The service could not be reached (EX_UNAVAILABLE). */
  unreachable: 69,
  /** The service failed (5xx) or answered something that is not the API (EX_SOFTWARE). */
  service: 70,
  /** The lock is held and `--wait` ran out (EX_TEMPFAIL: try again later). */
  held: 75,
  /** The lease was lost: expired, released by someone else, or not held (for renew/release). */
  lost: 76,
  /** Missing, wrong or under-scoped API key (EX_NOPERM). */
  auth: 77,
} as const;

/** After SIGTERM, how long a command gets to exit before SIGKILL. */
export const KILL_GRACE_MS = 10_000;

const USAGE = `usage: edgelock <command> NAME [flags]

commands:
  run NAME [flags] -- COMMAND [ARGS...]   run COMMAND while holding the lock; exit with its code
  acquire NAME [flags]                    acquire and print the lease (keep its leaseId)
  renew NAME --lease-id ID [--ttl D]      extend a lease
  release NAME --lease-id ID              release a lease (or cancel a queued wait)
  status NAME                             show holders, waiters and the last token

flags:
  --url URL         service URL (default: $EDGELOCK_URL)
  --token KEY       API key (default: $EDGELOCK_TOKEN)
  --ttl D           lease length, e.g. 500ms, 30s, 5m (default 30s)
  --wait D          how long to wait for the lock (default 0: try once)
  --owner LABEL     who holds it, for people (default: user@host:pid for run)
  --lease-id ID     choose the leaseId (acquire, run) or name the lease (renew, release)
  --mode M          exclusive | shared
  --limit N         semaphore limit; --permits N permits to take
  --json            print JSON instead of a readable line
  -h, --help        show this help

exit codes: 0 ok, 64 invalid, 69 unreachable, 70 service error, 75 held, 76 lease lost, 77 auth;
run exits with the command's code (128+signal if it was killed).`;

const FLAGS = {
  url: { type: "string" },
  token: { type: "string" },
  ttl: { type: "string" },
  wait: { type: "string" },
  owner: { type: "string" },
  "lease-id": { type: "string" },
  mode: { type: "string" },
  limit: { type: "string" },
  permits: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Flags = { [K in keyof typeof FLAGS]?: (typeof FLAGS)[K]["type"] extends "boolean" ? boolean : string };

interface Io {
  env: Record<string, string | undefined>;
  out: (line: string) => void;
  err: (line: string) => void;
}

const defaultIo: Io = {
  env: process.env,
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Runs the CLI with `argv` (without node and the script) and resolves to the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  const split = argv.indexOf("--");
  const own = split === -1 ? [...argv] : argv.slice(0, split);
  const command = split === -1 ? [] : argv.slice(split + 1);
  let flags: Flags;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: own, options: { ...FLAGS }, allowPositionals: true, strict: true });
    flags = parsed.values as Flags;
    positionals = parsed.positionals;
  } catch (error) {
    return fail(io, new ValidationError("invalid_argument", messageOf(error)));
  }
  const [verb, name, ...extra] = positionals;
  if (flags.help === true || verb === undefined) {
    (flags.help === true ? io.out : io.err)(USAGE);
    return flags.help === true ? EXIT_CODES.ok : EXIT_CODES.invalid;
  }
  try {
    if (name === undefined) throw usage(`${verb} needs a lock NAME`);
    if (extra.length > 0) throw usage(`unexpected argument ${JSON.stringify(extra[0])}`);
    const client = makeClient(flags, io.env);
    switch (verb) {
      case "run":
        if (command.length === 0) throw usage("run needs a command after --");
        return await run(client, name, flags, command, io);
      case "acquire": {
        const lease = await client.acquire(name, acquireOptions(flags));
        print(io, flags, lease, describeLease("acquired", lease));
        return EXIT_CODES.ok;
      }
      case "renew": {
        const lease = await client.renewById(
          name,
          leaseIdOf(flags),
          flags.ttl === undefined ? {} : { ttl: parseDuration(flags.ttl, "--ttl") },
        );
        print(io, flags, lease, describeLease("renewed", lease));
        return EXIT_CODES.ok;
      }
      case "release": {
        const answer = await client.releaseById(name, leaseIdOf(flags));
        const line = answer.cancelled === true ? `cancelled the wait on ${name}` : `released ${name}`;
        print(io, flags, answer, line);
        return EXIT_CODES.ok;
      }
      case "status": {
        const view = await client.status(name);
        print(io, flags, view, describeView(view));
        return EXIT_CODES.ok;
      }
      default:
        throw usage(`unknown command ${JSON.stringify(verb)}; try --help`);
    }
  } catch (error) {
    return fail(io, error);
  }
}

/** Holds the lock while `command` runs; see the module header. */
async function run(
  client: EdgelockClient,
  name: string,
  flags: Flags,
  command: string[],
  io: Io,
): Promise<number> {
  const stopWaiting = new AbortController();
  const onSignal = (): void => stopWaiting.abort(new Error("interrupted while waiting for the lock"));
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let lease: Lease;
  try {
    lease = await client.acquire(name, {
      ...acquireOptions(flags),
      owner: flags.owner ?? `${io.env.USER ?? "edgelock"}@${hostname()}:${process.pid}`,
      signal: stopWaiting.signal,
      autoRenew: true,
    });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  const [file, ...args] = command as [string, ...string[]];
  const child = spawn(file, args, { stdio: "inherit" });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const forwards = { SIGINT: forward("SIGINT"), SIGTERM: forward("SIGTERM"), SIGHUP: forward("SIGHUP") };
  for (const [signal, fn] of Object.entries(forwards)) process.on(signal as "SIGINT", fn);
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const onLost = (): void => {
    io.err(
      `edgelock: lost the lock ${name} (${lease.lost?.detail ?? "unknown"}); sending SIGTERM to the command`,
    );
    child.kill("SIGTERM");
    killTimer = setTimeout(() => child.kill("SIGKILL"), KILL_GRACE_MS);
  };
  lease.signal.addEventListener("abort", onLost, { once: true });
  const exit = await new Promise<{
    code: number | null;
    signal: string | null;
    error?: Error & { code?: string };
  }>((resolve) => {
    child.on("error", (error) => resolve({ code: null, signal: null, error }));
    child.on("exit", (code, signal) => resolve({ code, signal }));
  });
  if (killTimer !== undefined) clearTimeout(killTimer);
  lease.signal.removeEventListener("abort", onLost);
  for (const [signal, fn] of Object.entries(forwards)) process.off(signal as "SIGINT", fn);
  await lease.release().catch(() => undefined);
  if (lease.lost !== null) return EXIT_CODES.lost;
  if (exit.error !== undefined) {
    io.err(`edgelock: could not start ${JSON.stringify(file)}: ${exit.error.message}`);
    return exit.error.code === "ENOENT" ? 127 : 126;
  }
  if (exit.code !== null) return exit.code;
  return 128 + (SIGNAL_NUMBERS[exit.signal ?? ""] ?? 0);
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

function makeClient(flags: Flags, env: Record<string, string | undefined>): EdgelockClient {
  const url = flags.url ?? env.EDGELOCK_URL;
  if (url === undefined || url === "") throw usage("no service URL: pass --url or set EDGELOCK_URL");
  if (!/^https?:\/\//.test(url))
    throw usage(`the service URL must start with http:// or https:// (got ${url})`);
  const apiKey = flags.token ?? env.EDGELOCK_TOKEN;
  return new EdgelockClient({ url, apiKey: apiKey === "" ? undefined : apiKey });
}

function acquireOptions(flags: Flags): AcquireOptions {
  const mode = flags.mode;
  if (mode !== undefined && mode !== "exclusive" && mode !== "shared") {
    throw usage(`--mode must be exclusive or shared (got ${mode})`);
  }
  return {
    ttl: parseDuration(flags.ttl ?? "30s", "--ttl"),
    wait: parseDuration(flags.wait ?? 0, "--wait"),
    owner: flags.owner,
    leaseId: flags["lease-id"],
    mode: mode as LockMode | undefined,
    limit: integerFlag(flags.limit, "--limit"),
    permits: integerFlag(flags.permits, "--permits"),
  };
}

function integerFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw usage(`${flag} must be a whole number (got ${value})`);
  return Number(value);
}

function leaseIdOf(flags: Flags): string {
  const id = flags["lease-id"];
  if (id === undefined) throw usage("--lease-id is required (acquire prints it)");
  return id;
}

function describeLease(verb: string, lease: WireLease | Lease): string {
  const expires = formatDuration(lease.ttlMs);
  const owner = lease.owner === null ? "" : ` owner=${lease.owner}`;
  return `${verb} ${lease.name} token=${lease.token} leaseId=${lease.leaseId}${owner} ttl=${expires}`;
}

function describeView(view: LockView): string {
  const waiting = view.waiters > 0 ? `, ${view.waiters} waiting` : "";
  if (!view.held) return `${view.name}: free (last token ${view.lastToken}${waiting})`;
  const holders = view.holders
    .map(
      (h) =>
        `${h.owner ?? "anonymous"} (token ${h.token}, ${h.mode}, expires in ${formatDuration(Math.max(0, h.expiresAt - Date.now()))})`,
    )
    .join(", ");
  return `${view.name}: held by ${holders}${waiting}; last token ${view.lastToken}`;
}

function print(io: Io, flags: Flags, value: WireLease | Lease | object, line: string): void {
  io.out(flags.json === true ? JSON.stringify(toJson(value)) : line);
}

function toJson(value: WireLease | Lease | object): object {
  if (!(value instanceof Object) || !("leaseId" in value) || !("deadline" in value)) return value;
  const { name, leaseId, owner, token, ttlMs, expiresAt, mode, permits, holdCount, limit } = value as Lease;
  return { name, leaseId, owner, token, ttlMs, expiresAt, mode, permits, holdCount, limit };
}

/** One readable line on stderr and the exit code of the error's class. */
export function fail(io: Pick<Io, "err">, error: unknown): number {
  const code = exitCodeOf(error);
  io.err(`edgelock: ${describeError(error)}`);
  return code;
}

export function exitCodeOf(error: unknown): number {
  if (error instanceof LockHeldError) return EXIT_CODES.held;
  if (error instanceof LeaseLostError) return EXIT_CODES.lost;
  if (error instanceof ValidationError) return EXIT_CODES.invalid;
  if (error instanceof AuthError) return EXIT_CODES.auth;
  if (error instanceof EdgelockError && error.code === "network_error") return EXIT_CODES.unreachable;
  return EXIT_CODES.service;
}

function describeError(error: unknown): string {
  if (error instanceof LockHeldError) {
    const h = error.holder;
    const by = h === null ? "" : ` by ${h.owner ?? "anonymous"} (token ${h.token})`;
    return `the lock is held${by}; retry in ${formatDuration(error.retryAfterMs)} or pass --wait`;
  }
  if (error instanceof EdgelockError) return `${error.detail} [${error.code}]`;
  return messageOf(error);
}

function usage(detail: string): ValidationError {
  return new ValidationError("invalid_argument", detail);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
