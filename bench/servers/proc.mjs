/**
 * Process helpers for the bench: free loopback ports, child processes that log to a file and are always
 * stopped, readiness polling, and the resident memory of a process tree read from /proc (Linux only).
 */
import { spawn } from "node:child_process";
import { openSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `probe` until it resolves truthy, or throws after `timeoutMs`. */
export async function waitFor(probe, { timeoutMs = 30_000, what = "server" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    await sleep(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms${lastError ? `: ${lastError.message}` : ""}`);
}

/**
 * Spawns a long-running server in its own process group, stdout and stderr to `logFile`. `stop()` sends
 * SIGTERM to the group (so grandchildren such as workerd go too), then SIGKILL after a grace period.
 */
export function startProcess(command, args, { logFile, env, cwd } = {}) {
  const out = openSync(logFile, "a");
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", out, out],
    detached: true,
  });
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
    // A binary that cannot be spawned never exits; its readiness probe times out and the caller skips it.
    child.once("error", (error) => resolve({ error }));
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode !== null || child.signalCode !== null) return;
    killGroup(child.pid, "SIGTERM");
    const done = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
    if (!done) killGroup(child.pid, "SIGKILL");
    await Promise.race([exited, sleep(2_000)]);
  };
  return { child, pid: child.pid, exited, stop };
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

function readStat(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    return { pid, comm, ppid: Number(fields[1]) };
  } catch {
    return null;
  }
}

/** `root` and every process below it, with their command names. */
export function processTree(root) {
  const all = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readStat(Number(d)))
    .filter((s) => s !== null);
  const found = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift();
    const self = all.find((s) => s.pid === pid);
    if (self !== undefined) found.push(self);
    for (const s of all) if (s.ppid === pid) queue.push(s.pid);
  }
  return found;
}

/** Resident set size in MiB of one process (VmRSS), or null if it is gone. */
export function rssMiB(pid) {
  try {
    const status = readFileSync(join("/proc", String(pid), "status"), "utf8");
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return Number.isFinite(kb) ? kb / 1024 : null;
  } catch {
    return null;
  }
}

/** RSS of every process named `comm` under `root` (e.g. the workerd runtimes under wrangler dev). */
export function treeRss(root, comm) {
  return processTree(root)
    .filter((p) => comm === undefined || p.comm === comm)
    .map((p) => ({ pid: p.pid, comm: p.comm, rssMiB: rssMiB(p.pid) }));
}
