/**
 * The peers' servers: Redis 7 and etcd 3 from Debian, installed with apt when absent, started on
 * 127.0.0.1 and free ports with their data under the run's temp dir, and stopped by the caller.
 * A peer that cannot be installed or started is skipped with a message, not an error.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { freePort, startProcess, waitFor } from "./proc.mjs";

function has(binary) {
  try {
    execFileSync("sh", ["-c", `command -v ${binary}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Installs the Debian packages for any missing binary; returns the binaries still missing. */
export function ensureInstalled(wanted) {
  const missing = () => Object.keys(wanted).filter((bin) => !has(bin));
  if (missing().length === 0) return [];
  const packages = [...new Set(missing().map((bin) => wanted[bin]))];
  console.log(`installing ${packages.join(", ")} with apt-get (missing: ${missing().join(", ")})`);
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore", env });
    execFileSync("apt-get", ["install", "-y", "-qq", ...packages], { stdio: "ignore", env });
  } catch (err) {
    console.log(`apt-get failed (${err.message.split("\n")[0]})`);
  }
  return missing();
}

export function version(command, args, pattern) {
  try {
    const out = execFileSync(command, args, { encoding: "utf8" });
    return pattern.exec(out)?.[1] ?? out.trim().split("\n")[0];
  } catch {
    return null;
  }
}

/** Waits for a started server, stopping it if it never becomes ready. */
async function ready(proc, probe) {
  try {
    await probe();
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** redis-server without persistence (as a lock server usually runs), on a free loopback port. */
export async function startRedis(tmp) {
  const port = await freePort();
  const dir = join(tmp, "redis");
  mkdirSync(dir, { recursive: true });
  const args = ["--bind", "127.0.0.1", "--port", String(port), "--dir", dir];
  args.push("--save", "", "--appendonly", "no", "--protected-mode", "yes");
  const proc = startProcess("redis-server", args, { logFile: join(tmp, "redis.log") });
  const { default: Redis } = await import("ioredis");
  await ready(proc, () =>
    waitFor(
      async () => {
        const probe = new Redis({ host: "127.0.0.1", port, lazyConnect: true, retryStrategy: () => null });
        probe.on("error", () => {}); // refused until redis-server listens; waitFor retries
        try {
          await probe.connect();
          return (await probe.ping()) === "PONG";
        } finally {
          probe.disconnect();
        }
      },
      { what: "redis-server" },
    ),
  );
  return { port, pid: proc.pid, stop: proc.stop };
}

/**
 * A single etcd member. The shorter heartbeat (50 ms) and election timeout (500 ms) lower etcd's minimum
 * lease TTL from 2 s to 1 s (it is 1.5 × election ticks × heartbeat, rounded up to whole seconds).
 */
export async function startEtcd(tmp) {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = ["--name", "bench", "--data-dir", join(tmp, "etcd")];
  args.push("--listen-client-urls", url, "--advertise-client-urls", url);
  args.push("--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer);
  args.push("--initial-cluster", `bench=${peer}`, "--heartbeat-interval", "50", "--election-timeout", "500");
  args.push("--log-level", "warn");
  const proc = startProcess("etcd", args, { logFile: join(tmp, "etcd.log") });
  await ready(proc, () =>
    waitFor(
      async () => {
        const res = await fetch(`${url}/health`);
        return res.ok && (await res.json()).health === "true";
      },
      { what: "etcd" },
    ),
  );
  return { url, pid: proc.pid, stop: proc.stop };
}
