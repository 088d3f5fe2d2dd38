/**
 * Scenario 6, the floor: sequential round trips that do (almost) nothing, so every lock figure can be
 * read as a multiple of what the platform itself costs. For workerd: a no-op route of a Worker, a no-op
 * Durable Object method, a DO method doing one SQLite write, and one doing a write plus a setAlarm, back to
 * back; the no-op route and the write + setAlarm again after the hand-off scenario's pause. For context: a
 * no-op Node HTTP server (the client's own share), Redis PING and an etcd read.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { postJson } from "../http.mjs";
import { summarize } from "../stats.mjs";
import { countedRedis } from "../systems/redis.mjs";
import { handoffPause } from "./handoff.mjs";

/**
 * Unmeasured calls before each timed sequence. A fresh workerd runs its first few hundred requests slower
 * (RESULTS.md, "Warm-up"); with 10, the first sequence on a fresh floor server read its write + setAlarm
 * floor 10–20% above the same server's later (RESULTS.md, "The P=4 bound, taken beside its runs").
 */
const WARMUP = 200;
const BODY_VALUE = { ttlMs: 10_000, leaseId: "floor-floor-floor-floor" };

/** `count` calls one after the other, each timed; `pause` (untimed) runs before each. */
async function timeSequential(count, call, pause = async () => {}) {
  for (let i = 0; i < WARMUP; i++) await call();
  const latencies = [];
  for (let i = 0; i < count; i++) {
    await pause();
    const t = performance.now();
    await call();
    latencies.push(performance.now() - t);
  }
  return summarize(latencies);
}

function post(url, headers = {}) {
  return async () => {
    const { status } = await postJson(url, BODY_VALUE, headers);
    if (status < 200 || status > 299) throw new Error(`${url}: ${status}`);
  };
}

/**
 * The workerd floors at `url` (a running bench/floor worker). With `paused`, also the no-op route and the
 * write + setAlarm after the hand-off's pause: the hand-off's fair floor, and how much of it is wake-up.
 */
export async function workerdFloor(url, { floorRequests, floorPausedRequests }, { paused = false } = {}) {
  const object = `floor-${randomBytes(4).toString("hex")}`;
  const floor = {
    route: await timeSequential(floorRequests, post(`${url}/noop`)),
    doNoop: await timeSequential(floorRequests, post(`${url}/do/${object}/noop`)),
    doWrite: await timeSequential(floorRequests, post(`${url}/do/${object}/write`)),
    doWriteAlarm: await timeSequential(floorRequests, post(`${url}/do/${object}/writeAlarm`)),
  };
  if (paused) {
    floor.routePaused = await timeSequential(floorPausedRequests, post(`${url}/noop`), handoffPause);
    floor.doWriteAlarmPaused = await timeSequential(
      floorPausedRequests,
      post(`${url}/do/${object}/writeAlarm`),
      handoffPause,
    );
  }
  return floor;
}

/**
 * The write + setAlarm floor alone, back to back on a fresh object: what issue 16's P=4 bound is made of,
 * taken again right before each of the runs it bounds (run.mjs, `boundRuns`). With `serverCpuMs` (a reading
 * of the floor server's CPU time so far), also its CPU per call, warm-up calls included.
 */
export async function writeAlarmFloor(url, { floorRequests }, serverCpuMs) {
  const object = `floor-${randomBytes(4).toString("hex")}`;
  const cpuBefore = serverCpuMs?.();
  const latency = await timeSequential(floorRequests, post(`${url}/do/${object}/writeAlarm`));
  if (cpuBefore === undefined) return latency;
  return { ...latency, serverCpuMsPerCall: (serverCpuMs() - cpuBefore) / (WARMUP + floorRequests) };
}

/**
 * The platform's share of scenario 5: one write on each of `count` fresh Durable Objects, `inFlight` at a
 * time. Creating an object (locally: a new SQLite file) is most of what many-locks measures.
 */
export async function workerdManyFloor(url, count, inFlight) {
  const prefix = `floor-many-${randomBytes(4).toString("hex")}`;
  let next = 0;
  const worker = async () => {
    while (next < count) await post(`${url}/do/${prefix}-${next++}/write`)();
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { objects: count, writesPerSec: Math.round(count / ((performance.now() - started) / 1000)) };
}

/** A no-op HTTP server in this process: what undici and loopback alone cost per request. */
export async function nodeFloor({ floorRequests }) {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end('{"ok":true}'));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    return await timeSequential(floorRequests, post(`http://127.0.0.1:${server.address().port}/noop`));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

export async function redisFloor(port, { floorRequests }) {
  const client = await countedRedis(port, { requests: 0 });
  try {
    return await timeSequential(floorRequests, () => client.ping());
  } finally {
    client.disconnect();
  }
}

export async function etcdFloor(url, { floorRequests }) {
  const { Etcd3 } = await import("etcd3");
  const client = new Etcd3({ hosts: url });
  try {
    return await timeSequential(floorRequests, () => client.kv.range({ key: Buffer.from("floor") }));
  } finally {
    client.close();
  }
}
