/**
 * The `edgelock` command: `run` holds one or more locks while a command runs (renewing in the background,
 * and stopping the command's whole process group if a lease is lost), and `acquire`/`renew`/`release`/
 * `status` serve scripts. Every failure is one line on stderr and a distinct exit code (EXIT_CODES).
 * Process wiring lives in bin.ts; process groups in process-group.ts.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { parseArgs } from "node:util";
import { type AcquireOptions, EdgelockClient } from "./client.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import { AuthError, EdgelockError, LeaseLostError, LockHeldError, ValidationError } from "./errors.ts";
import type { Lease } from "./lease.ts";
import { type CommandExit, ProcessGroup } from "./process-group.ts";
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

/** After SIGTERM, how long the command's process group gets to exit before SIGKILL. */
export const KILL_GRACE_MS = 10_000;

const USAGE = `usage: edgelock <command> NAME [flags]

commands:
  run NAME [NAME...] [flags] -- COMMAND [ARGS...]
                                          run COMMAND while holding the lock(s); exit with its code
  acquire NAME [flags]                    acquire and print the lease (keep its leaseId)
  renew NAME --lease-id ID [--ttl D]      extend a lease
  release NAME --lease-id ID              release a lease (or cancel a queued wait)
  status NAME                             show holders, waiters and the last token

flags:
  --url URL         service URL (default: $EDGELOCK_URL)
  --token KEY       API key (default: $EDGELOCK_TOKEN)
  --ttl D           lease length, e.g. 500ms, 30s, 5m (default 30s)
  --wait D          how long to wait for the lock(s) (default 0: try once)
  --owner LABEL     who holds it, for people (default: user@host:pid for run)
  --lease-id ID     choose the leaseId (acquire, run with one NAME) or name the lease (renew, release)
  --mode M          exclusive | shared
  --limit N         semaphore limit; --permits N permits to take
  --kill-after D    run: after SIGTERM, SIGKILL the command's process group this much later (default 10s)
  --pass-token      run: give the command the API key as $EDGELOCK_TOKEN (default: it is removed)
  --json            print JSON instead of a readable line
  -h, --help        show this help
  --version         print the version

run gives the command EDGELOCK_LOCK, EDGELOCK_FENCE (the fencing token) and EDGELOCK_LEASE_ID; with
several NAMEs each is a space-separated list in the order given. Locks are taken in sorted order.

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
  "kill-after": { type: "string" },
  "pass-token": { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
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

/** The package's version, from the package.json next to `dist/` (or `src/`). */
export function version(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  const v = typeof pkg === "object" && pkg !== null && "version" in pkg ? pkg.version : undefined;
  return typeof v === "string" ? v : "unknown";
}

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
  if (flags.version === true) {
    io.out(version());
    return EXIT_CODES.ok;
  }
  const [verb, ...names] = positionals;
  if (flags.help === true || verb === undefined) {
    (flags.help === true ? io.out : io.err)(USAGE);
    return flags.help === true ? EXIT_CODES.ok : EXIT_CODES.invalid;
  }
  try {
    const [name, ...extra] = names;
    if (name === undefined) throw usage(`${verb} needs a lock NAME`);
    if (verb !== "run" && extra.length > 0) throw usage(`unexpected argument ${JSON.stringify(extra[0])}`);
    const client = makeClient(flags, io.env);
    switch (verb) {
      case "run":
        if (command.length === 0) throw usage("run needs a command after --");
        return await run(client, names, flags, command, io);
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

/**
 * Holds the locks while `command` runs, in its own process group. The group is stopped (SIGTERM, then
 * SIGKILL after the grace) when a lease is lost, when edgelock itself is told to stop, and when the command
 * exits but left processes behind: nothing the command started outlives the lock. The locks are released
 * only once the group is gone.
 */
async function run(
  client: EdgelockClient,
  names: string[],
  flags: Flags,
  command: string[],
  io: Io,
): Promise<number> {
  const graceMs = parseDuration(flags["kill-after"] ?? KILL_GRACE_MS, "--kill-after");
  if (names.length > 1 && flags["lease-id"] !== undefined) {
    throw usage("--lease-id names one lease; leave it out with several lock names");
  }
  const stopWaiting = new AbortController();
  let group: ProcessGroup | undefined;
  let stoppedBy: NodeJS.Signals | undefined;
  // Before the command starts, a signal stops the wait; after, it goes to the whole group, and a second
  // one does not cut the group's grace short.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (group === undefined) {
      stopWaiting.abort(new Error(`interrupted by ${signal} while waiting for the lock`));
      return;
    }
    stoppedBy ??= signal;
    void group.stop(graceMs, signal);
  };
  const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const signal of signals) process.on(signal, onSignal);
  // If edgelock exits for any other reason (a crash), the group must not run on without the lock.
  const onExit = (): void => group?.kill();
  process.on("exit", onExit);
  const options = {
    ...acquireOptions(flags),
    owner: flags.owner ?? `${io.env.USER ?? "edgelock"}@${hostname()}:${process.pid}`,
    signal: stopWaiting.signal,
  };
  const hold = async (leases: Lease[], lost: AbortSignal): Promise<CommandExit> => {
    const [file, ...args] = command as [string, ...string[]];
    const started = new ProcessGroup(file, args, commandEnv(io.env, leases, flags));
    group = started;
    const onLost = (): void => {
      const loss = leases.find((lease) => lease.lost !== null);
      const error = loss?.lost;
      io.err(
        `edgelock: lost the lock ${loss?.name ?? names.join(" ")} (${error?.detail ?? "unknown"}) [${error?.code ?? "lost"}]; stopping the command's process group`,
      );
      void started.stop(graceMs);
    };
    lost.addEventListener("abort", onLost, { once: true });
    const exit = await started.exited;
    // The command is done; whatever it left running in its group goes too, before the locks are released.
    await started.stop(graceMs);
    lost.removeEventListener("abort", onLost);
    return exit;
  };
  let exit: CommandExit;
  try {
    exit =
      names.length === 1 && flags["lease-id"] !== undefined
        ? await client.withLock(names[0] as string, (lease) => hold([lease], lease.signal), options)
        : await client.withLocks(names, hold, options);
  } catch (error) {
    if (error instanceof LeaseLostError && group !== undefined) return EXIT_CODES.lost;
    throw error;
  } finally {
    for (const signal of signals) process.off(signal, onSignal);
    process.off("exit", onExit);
  }
  if (exit.error !== undefined) {
    io.err(`edgelock: could not start ${JSON.stringify(command[0])}: ${exit.error.message}`);
    return exit.error.code === "ENOENT" ? 127 : 126;
  }
  if (exit.code !== null) return exit.code;
  return 128 + (SIGNAL_NUMBERS[exit.signal ?? stoppedBy ?? ""] ?? 0);
}

/**
 * The command's environment: edgelock's own, plus what the command needs to fence its writes, minus the
 * API key (the command can do with it whatever edgelock could) unless `--pass-token` asks for it.
 */
function commandEnv(
  env: Record<string, string | undefined>,
  leases: readonly Lease[],
  flags: Flags,
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  delete out.EDGELOCK_TOKEN;
  const token = flags.token ?? env.EDGELOCK_TOKEN;
  if (flags["pass-token"] === true && token !== undefined) out.EDGELOCK_TOKEN = token;
  out.EDGELOCK_LOCK = leases.map((lease) => lease.name).join(" ");
  out.EDGELOCK_FENCE = leases.map((lease) => String(lease.token)).join(" ");
  out.EDGELOCK_LEASE_ID = leases.map((lease) => lease.leaseId).join(" ");
  return out;
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
    const what =
      error.code === "lock_delay"
        ? "the lock is closed for its lock-delay after a lost holder"
        : error.code === "waiters_ahead"
          ? `earlier waiters are queued for the lock (held${by || " by nobody"})`
          : error.code === "too_many_waiters"
            ? "the lock's queue is full"
            : `the lock is held${by}`;
    return `${what}; retry in ${formatDuration(error.retryAfterMs)} or pass --wait [${error.code}]`;
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
