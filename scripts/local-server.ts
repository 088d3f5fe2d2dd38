/**
 * The one launcher of local edgelock servers, for the e2e tests, chaos and bench: starts either local path
 * (`direct`: scripts/direct-server.ts, what `npm start` serves; `wrangler-dev`: `wrangler dev`) as its own
 * process on a free port, with persisted state, vars and a log file, and stops the whole process tree. It also
 * reads the resident memory of the workerd processes beneath it. Linux /proc is used where present.
 */
import { spawn } from "node:child_process";
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const LOCAL_PATHS = ["direct", "wrangler-dev"] as const;
/** `direct`: Miniflare with a socket on the Worker; `wrangler-dev`: dev proxy worker, then the Worker. */
export type LocalPath = (typeof LOCAL_PATHS)[number];

/** `value` as a local path, or an error that names `what` (the flag or variable it came from). */
export function parseLocalPath(value: string, what: string): LocalPath {
  const path = LOCAL_PATHS.find((p) => p === value);
  if (path === undefined) throw new Error(`${what} must be one of ${LOCAL_PATHS.join(", ")}, not ${value}`);
  return path;
}

export interface LocalServerOptions {
  path: LocalPath;
  /** @default the repo's wrangler.toml */
  config?: string;
  /** Where state persists (`--persist-to`); reuse it to restart with the same state. @default a new temp dir */
  persistTo?: string;
  /** Worker vars over the config's and `.dev.vars` (`--var K:V`). */
  vars?: Record<string, string>;
  /** Appended with the server's stdout and stderr. @default `server.log` in `persistTo` */
  logFile?: string;
  /** @default a free port */
  port?: number;
  /** How long the server may take to answer `GET /healthz`. @default 60_000 */
  readyTimeoutMs?: number;
}

export interface LocalServer {
  readonly path: LocalPath;
  readonly url: string;
  readonly port: number;
  /** Direct path only: Miniflare's own socket, entry worker before the Worker (the bench's breakdown). */
  readonly entryUrl: string | undefined;
  readonly persistTo: string;
  readonly logFile: string;
  readonly pid: number;
  /** Resident memory of every workerd beneath the server (one on the direct path, two under wrangler dev). */
  rss(): ProcessRss[];
  /** CPU time (user + system, ms) the workerd processes beneath the server have used so far; Linux only. */
  cpuMs(): number;
  /**
   * SIGKILLs the process tree, leaves first, and resolves once all of it is reaped. No graceful shutdown:
   * committed state is on disk (SQLite), and it is the harshest restart, which chaos wants anyway.
   */
  stop(): Promise<void>;
}

export interface ProcessRss {
  pid: number;
  comm: string;
  rssMiB: number | null;
}

export const ROOT_DIR = resolve(import.meta.dirname, "..");
export const WRANGLER_BIN = join(ROOT_DIR, "node_modules/wrangler/bin/wrangler.js");
/** Offline, no telemetry (shared/PLATFORM.md §8). */
export const WRANGLER_ENV = { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" };
const DIRECT_SERVER = join(ROOT_DIR, "scripts/direct-server.ts");

/** How many times a start that lost a port to another process is tried again on fresh ports. */
const PORT_CLASH_TRIES = 3;

/**
 * Starts a server and resolves once it answers `GET /healthz`; on failure it is stopped and the log quoted.
 * The ports are chosen free (freePort), but another process may bind one before the server does: wrangler's
 * and workerd's own port-0 sockets, or a server starting beside it in another test file. Such a start fails
 * with "Address already in use" and is tried again on fresh ports (a port the caller fixed stays fixed).
 */
export async function startLocalServer(o: LocalServerOptions): Promise<LocalServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(o);
    } catch (err) {
      if (!(err instanceof PortClash) || attempt >= PORT_CLASH_TRIES) throw err;
    }
  }
}

/** A start that failed because a port it was given was taken before it could bind it. */
class PortClash extends Error {}

async function startOnce(o: LocalServerOptions): Promise<LocalServer> {
  const config = o.config ?? join(ROOT_DIR, "wrangler.toml");
  const persistTo = o.persistTo ?? mkdtempSync(join(tmpdir(), "edgelock-local-"));
  mkdirSync(persistTo, { recursive: true });
  const logFile = o.logFile ?? join(persistTo, "server.log");
  const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
  const port = o.port ?? (await freePort());
  const common = ["--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistTo];
  for (const [k, v] of Object.entries(o.vars ?? {})) common.push("--var", `${k}:${v}`);
  let entryUrl: string | undefined;
  let args: string[];
  if (o.path === "direct") {
    const entryPort = await freePort();
    entryUrl = `http://127.0.0.1:${entryPort}`;
    args = [DIRECT_SERVER, "--config", config, "--entry-port", String(entryPort), ...common];
  } else {
    args = [WRANGLER_BIN, "dev", "-c", config, ...common, "--inspector-port", String(await freePort())];
    args.push("--show-interactive-dev-session=false", "--log-level", "warn");
  }
  const out = openSync(logFile, "a");
  const child = spawn(process.execPath, args, {
    cwd: ROOT_DIR,
    // Its own process group, which killTree falls back to killing where there is no /proc.
    detached: true,
    stdio: ["ignore", out, out],
    env: { ...process.env, ...WRANGLER_ENV, CI: "1" },
  });
  closeSync(out);
  let ended: string | null = null;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, sig) => {
      ended = `exited early (${code ?? sig})`;
      resolve();
    });
    child.once("error", (err) => {
      ended = `could not start: ${err.message}`;
      resolve();
    });
  });
  const server: LocalServer = {
    path: o.path,
    url: `http://127.0.0.1:${port}`,
    port,
    entryUrl,
    persistTo,
    logFile,
    pid: child.pid ?? -1,
    rss: () => treeRss(child.pid ?? -1, "workerd"),
    cpuMs: () => treeCpuMs(child.pid ?? -1, "workerd"),
    stop: async () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        // What the runtime logs after this line ("crashed … being restarted") is the kill, not a fault.
        appendFileSync(logFile, `\n--- local-server: SIGKILL to the process tree, leaves first ---\n`);
        await killTree(child.pid);
      }
      await exited;
    },
  };
  try {
    await untilHealthy(server.url, () => ended, o.readyTimeoutMs ?? 60_000);
  } catch (err) {
    await server.stop();
    const bytes = readFileSync(logFile);
    const message = `${o.path} server (${config}): ${(err as Error).message}`;
    // Only this attempt's output: the file may hold earlier runs' (a restart on the same state appends).
    const clash = /Address already in use|EADDRINUSE/.test(bytes.subarray(logStart).toString("utf8"));
    const tail = bytes.toString("utf8").split("\n").slice(-40).join("\n");
    throw new (clash ? PortClash : Error)(`${message}\n${logFile}:\n${tail}`);
  }
  return server;
}

/** Polls `GET /healthz` until it answers 200; `ended()` says why the process is gone, if it is. */
async function untilHealthy(url: string, ended: () => string | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reason = ended();
    if (reason !== null) throw new Error(reason);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url}/healthz within ${timeoutMs} ms`);
}

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === "object" && addr !== null ? resolve(addr.port) : reject(new Error("no port")),
      );
    });
  });
}

/**
 * SIGKILLs a process tree leaves first, waiting until each parent has reaped its children. Killing the whole
 * group at once would orphan workerd and esbuild to PID 1, which in a container may never reap them.
 * Without /proc (not Linux) it falls back to killing the process group.
 *
 * `pid` must lead its own process group (startLocalServer spawns it detached). wrangler restarts a workerd
 * that died ("runtime crashed"); one it starts between the last read of its children and its own kill is in
 * no tree any more, but still in the group, with the dead server's ports and state open. The group kill at
 * the end is for it, and the call resolves only once nothing of the group is alive.
 */
export async function killTree(pid: number): Promise<void> {
  if (!HAS_PROC) {
    signal(-pid, "SIGKILL");
    return;
  }
  await killLeavesFirst(pid);
  const until = Date.now() + 5_000;
  while (liveInGroup(pid).length > 0 && Date.now() < until) {
    signal(-pid, "SIGKILL");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function killLeavesFirst(pid: number): Promise<void> {
  // wrangler restarts a workerd that died ("runtime crashed"), so re-read the children until none are left.
  for (let round = 0; round < 5; round++) {
    const children = childrenOf(pid);
    if (children.length === 0) break;
    for (const c of children) await killLeavesFirst(c);
  }
  if (!signal(pid, "SIGKILL")) return;
  const until = Date.now() + 5_000;
  while (Date.now() < until && readStat(pid) !== null) await new Promise((r) => setTimeout(r, 20));
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false; // already gone
  }
}

const HAS_PROC = (() => {
  try {
    readFileSync("/proc/self/stat");
    return true;
  } catch {
    return false;
  }
})();

export interface ProcStat {
  pid: number;
  comm: string;
  /** R, S, D, …; Z for a zombie, dead and waiting to be reaped. */
  state: string;
  ppid: number;
  pgrp: number;
  /** CPU time used so far, user + system, in ms. */
  cpuMs: number;
}

const CLOCK_TICKS_PER_S = 100; // USER_HZ: the unit of /proc/<pid>/stat's times on Linux

/** One process's name, state, parent, group and CPU time from /proc; a zombie has them until it is reaped. */
function readStat(pid: number): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
    return {
      pid,
      comm,
      state: fields[0] ?? "",
      ppid: Number(fields[1]),
      pgrp: Number(fields[2]),
      cpuMs: (ticks * 1000) / CLOCK_TICKS_PER_S,
    };
  } catch {
    return null;
  }
}

function allProcesses(): ProcStat[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readStat(Number(d)))
    .filter((s) => s !== null);
}

/** The processes of group `pgrp` that are not zombies (a zombie holds no ports or files). */
export function liveInGroup(pgrp: number): ProcStat[] {
  return allProcesses().filter((p) => p.pgrp === pgrp && p.state !== "Z");
}

function childrenOf(pid: number): number[] {
  return allProcesses()
    .filter((p) => p.ppid === pid)
    .map((p) => p.pid);
}

/** `root` and every process below it. */
export function processTree(root: number): ProcStat[] {
  if (!HAS_PROC) return [];
  const all = allProcesses();
  const found: ProcStat[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    const self = all.find((s) => s.pid === pid);
    if (self !== undefined) found.push(self);
    for (const s of all) if (s.ppid === pid) queue.push(s.pid);
  }
  return found;
}

/** Resident set size in MiB of one process (VmRSS), or null if it is gone or /proc is absent. */
export function rssMiB(pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return Number.isFinite(kb) ? kb / 1024 : null;
  } catch {
    return null;
  }
}

/** The processes named `comm` under `root` (e.g. the workerd runtimes under a server), or all of them. */
function namedIn(root: number, comm?: string): ProcStat[] {
  return processTree(root).filter((p) => comm === undefined || p.comm === comm);
}

/** CPU time (ms) used so far by every process named `comm` under `root`. */
export function treeCpuMs(root: number, comm?: string): number {
  return namedIn(root, comm).reduce((sum, p) => sum + p.cpuMs, 0);
}

/** RSS of every process named `comm` under `root`. */
export function treeRss(root: number, comm?: string): ProcessRss[] {
  return namedIn(root, comm).map((p) => ({ pid: p.pid, comm: p.comm, rssMiB: rssMiB(p.pid) }));
}
