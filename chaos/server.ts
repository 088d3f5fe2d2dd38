/**
 * Starts and stops `wrangler dev` for the chaos run, always with the same `--persist-to` directory, so a
 * restart keeps the lock objects' SQLite state (leases, tokens, queue) and loses only in-flight requests.
 * It runs wrangler in its own process group so a stop also ends the workerd child it spawns.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";

export interface DevServer {
  readonly port: number;
  readonly url: string;
  /** SIGKILLs the whole process group (no graceful shutdown: the harshest restart). */
  kill(): Promise<void>;
}

const ROOT = resolve(import.meta.dirname, "..");

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === "object" && addr !== null ? res(addr.port) : rej(new Error("no port")),
      );
    });
  });
}

export async function startDevServer(
  persistTo: string,
  logPath: string,
  timeoutMs = 60_000,
): Promise<DevServer> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const wrangler = resolve(ROOT, "node_modules/.bin/wrangler");
  const child: ChildProcess = spawn(
    process.execPath,
    [
      wrangler,
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      persistTo,
      "--show-interactive-dev-session=false",
      "--log-level",
      "warn",
      // The harness hunts lock bugs, not auth: run without keys, explicitly (the server refuses otherwise).
      "--var",
      "EDGELOCK_INSECURE_NO_AUTH:true",
    ],
    {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "1" },
    },
  );
  const log = createWriteStream(logPath, { flags: "a" });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<void>((res) => child.once("exit", () => res()));
  const url = `http://127.0.0.1:${port}`;
  const kill = async (): Promise<void> => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      await killTree(child.pid);
    }
    await exited;
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`wrangler dev exited early (${child.exitCode}); see ${logPath}`);
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      if (res.ok) return { port, url, kill };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await kill();
  throw new Error(`wrangler dev did not answer /healthz within ${timeoutMs} ms; see ${logPath}`);
}

/**
 * SIGKILLs a process tree leaves first, waiting until each parent has reaped its children. Killing the whole
 * group at once would orphan workerd and esbuild to PID 1, which in this container does not reap zombies.
 */
async function killTree(pid: number): Promise<void> {
  // wrangler restarts a workerd that died ("runtime crashed"), so re-read the children until none are left.
  for (let round = 0; round < 5; round++) {
    const children = childrenOf(pid);
    if (children.length === 0) break;
    for (const c of children) await killTree(c);
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  const until = Date.now() + 5_000;
  while (Date.now() < until && isAlive(pid)) await new Promise((r) => setTimeout(r, 20));
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** True until the process is reaped (a zombie still has a /proc entry, state Z). */
function isAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").length > 0;
  } catch {
    return false;
  }
}
