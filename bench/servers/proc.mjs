/**
 * Process helpers for the bench's peers (Redis, etcd): child processes that log to a file and are always
 * stopped, and readiness polling. Free ports come from scripts/local-server.ts, which also starts edgelock
 * itself and reads its memory.
 */
import { spawn } from "node:child_process";
import { openSync } from "node:fs";

export { freePort } from "../../scripts/local-server.ts";

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
