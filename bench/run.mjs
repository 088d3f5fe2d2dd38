/**
 * npm run bench: edgelock against Redis and etcd locks on this machine, in one run. Starts every server
 * itself (127.0.0.1, free ports, state in a temp dir), runs the same scenarios against each system, stops
 * everything, then prints the tables and writes bench/results/<date>.json, bench/RESULTS.md and the chart.
 * Flags: --quick (tiny sizes, for development), --only=key,key (edgelock-direct, edgelock-session,
 * edgelock-capped, edgelock-dev, edgelock-rpc, history, redis, redlock-default, redlock-tuned, etcd).
 * Benchmarks print; they never assert on speed.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { rssMiB, startLocalServer } from "../scripts/local-server.ts";
import {
  BENCH_DIR,
  CAPPED,
  EDGELOCK_API_KEY,
  EDGELOCK_HEADERS,
  EDGELOCK_VARS,
  parameters,
  REDLOCK_TUNED_DELAY_MS,
  ROOT_DIR,
} from "./config.mjs";
import { machineInfo, report } from "./report.mjs";
import { rpcVersusHttp } from "./scenarios/binding.mjs";
import { contended } from "./scenarios/contended.mjs";
import {
  etcdFloor,
  nodeFloor,
  redisFloor,
  workerdFloor,
  workerdManyFloor,
  writeAlarmFloor,
} from "./scenarios/floor.mjs";
import { expiry, handoff } from "./scenarios/handoff.mjs";
import { historyCost } from "./scenarios/history-cost.mjs";
import { manyLocks } from "./scenarios/many-locks.mjs";
import { uncontended } from "./scenarios/uncontended.mjs";
import { ensureInstalled, startEtcd, startRedis } from "./servers/peers.mjs";
import { REDLOCK_DEFAULT } from "./systems/redlock.mjs";

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const only =
  argv
    .find((a) => a.startsWith("--only="))
    ?.slice(7)
    .split(",") ?? null;
const wanted = (key) => only === null || only.includes(key);
const params = parameters(quick);
const tmp = mkdtempSync(join(tmpdir(), "edgelock-bench-"));
const EDGELOCK_CONFIG = join(ROOT_DIR, "wrangler.toml");
const FLOOR_CONFIG = join(BENCH_DIR, "floor/wrangler.toml");
const running = new Set();
const t0 = performance.now();
const log = (msg) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);

/** Starts a server and remembers it, so that every exit path stops it. */
async function started(server) {
  running.add(server);
  return server;
}
async function stop(server) {
  running.delete(server);
  await server.stop();
}
async function stopAll() {
  for (const server of [...running]) await stop(server).catch(() => {});
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    console.log(`\n${signal}: stopping servers`);
    stopAll().finally(() => process.exit(130));
  });
}

/** Every scenario, in the order a suite runs them; `memory()` reads the server's RSS in MiB. */
const SCENARIOS = {
  uncontended: (spec, p) => uncontended(spec, p),
  contended: (spec, p) => contendedRuns(spec, p),
  handoff: (spec, p) => handoff(spec, p),
  expiry: (spec, p) => expiry(spec, p),
  many: (spec, p, memory) => manyLocks(spec, p, memory),
};

/** The scenarios named in `only` (all by default) against one system. */
async function suite(key, spec, memory, extra = {}, sizes = {}, only = Object.keys(SCENARIOS)) {
  const p = { ...params, ...sizes };
  const result = { key, label: spec.label, ...extra };
  for (const name of only) {
    if (name !== "contended") log(`${spec.label}: ${name}`); // contendedRuns logs each P
    result[name] = await SCENARIOS[name](spec, p, memory);
  }
  return result;
}

/** The contended counter at each P. */
async function contendedRuns(spec, p, options = {}) {
  const runs = [];
  for (const processes of p.contendedProcesses) {
    log(`${spec.label}: contended counter, ${processes} processes`);
    runs.push(await contended(spec, p, processes, tmp, options));
  }
  return runs;
}

const sumRss = (list) => Math.round(list.reduce((s, p) => s + (p.rssMiB ?? 0), 0));

/** A Worker config on one local path (scripts/local-server.ts), state and log under the run's temp dir. */
function startWorkerd(path, config, name, vars = {}) {
  return startLocalServer({
    path,
    config,
    persistTo: join(tmp, name),
    logFile: join(tmp, `${name}.log`),
    vars,
  });
}

/**
 * The two local paths of edgelock, each measured against the floor of its own path. `npm start` serves
 * the direct one (scripts/start.ts → scripts/direct-server.ts), so only there do the session client and
 * the waits past the per-request cap run too.
 */
const PATHS = [
  {
    path: "direct",
    floorPath: "workerd direct",
    /** Miniflare's own socket on the same server: its entry worker, for the breakdown. */
    entryFloorPath: "miniflare entry",
    memoryOf: "workerd (1 process)",
    http: { key: "edgelock-direct", label: "edgelock (workerd direct, npm start)" },
    session: { key: "edgelock-session", label: "edgelock session (workerd direct, npm start)" },
    capped: "edgelock-capped",
    sizes: {},
  },
  {
    path: "wrangler-dev",
    floorPath: "wrangler dev",
    memoryOf: "workerd (proxy + user, 2 processes)",
    http: { key: "edgelock-dev", label: "edgelock (wrangler dev)" },
    sizes: { manyLocks: params.manyLocksDev },
  },
];

/**
 * Issue 16's P=4 target, its bound taken beside the figure: `boundRuns` times, the path's write + setAlarm
 * floor back to back (on the floor server, still running), then the contended counter at P=4 at once. A bound
 * from the floor taken at the path's start compared two figures a few minutes apart on a VM whose speed
 * drifts by more than the target's margin (RESULTS.md, "The P=4 bound, taken beside its runs").
 */
async function boundRuns(spec, floorServer, server) {
  const runs = [];
  // The baton (bench/floor/worker.mjs): the same contended counter on a lock with no rules, whose every
  // section is exactly two write + setAlarm calls, on the floor server. What the platform and this machine
  // allow a lock at P=4, taken beside edgelock's run, each first in turn.
  const baton = { kind: "baton", url: floorServer.url, label: "baton" };
  for (let i = 0; i < params.boundRuns; i++) {
    log(`${spec.label}: P=4 beside its floor and the baton, ${i + 1} of ${params.boundRuns}`);
    const floor = await writeAlarmFloor(floorServer.url, params, () => floorServer.cpuMs());
    const lock = () => contended(spec, params, 4, tmp, { serverCpuMs: () => server.cpuMs() });
    const floorLock = () => contended(baton, params, 4, tmp, { serverCpuMs: () => floorServer.cpuMs() });
    let run;
    let batonRun;
    if (i % 2 === 0) {
      run = await lock();
      batonRun = await floorLock();
    } else {
      batonRun = await floorLock();
      run = await lock();
    }
    runs.push({
      writeAlarmP50: floor.p50,
      // workerd's CPU: what the section costs the server, against what the floor's call costs it.
      writeAlarmCpuMs: floor.serverCpuMsPerCall,
      serverCpuMsPerSection: run.serverCpuMsPerSection,
      sectionsPerSec: run.sectionsPerSec,
      lostUpdates: run.lostUpdates,
      overtakes: run.overtakes,
      overtakesAtLock: run.overtakesAtLock,
      timeouts: run.timeouts,
      baton: {
        sectionsPerSec: batonRun.sectionsPerSec,
        serverCpuMsPerSection: batonRun.serverCpuMsPerSection,
        lostUpdates: batonRun.lostUpdates,
        overtakes: batonRun.overtakes,
      },
    });
  }
  return runs;
}

/** The waits-past-the-cap runs: HTTP clients whose requests wait CAPPED.maxWaitMs, with and without repoll. */
async function cappedRuns(url) {
  const { maxWaitMs, holdMs } = CAPPED;
  const runs = [];
  for (const repoll of [true, false]) {
    const label = `edgelock, ${maxWaitMs} ms per request, ${repoll ? "repoll: true" : "no repoll (control)"}`;
    const spec = { kind: "edgelock", url, headers: EDGELOCK_HEADERS, label, maxWaitMs, repoll };
    const p = { ...params, contendedRounds: params.cappedRounds };
    runs.push({ label, maxWaitMs, holdMs, repoll, contended: await contendedRuns(spec, p, { holdMs }) });
  }
  return runs;
}

async function edgelockRuns(results) {
  for (const p of PATHS) {
    const keys = [p.http.key, p.session?.key, p.capped].filter((k) => k !== undefined && wanted(k));
    if (keys.length === 0) continue;
    log(`floor: ${p.floorPath}${p.entryFloorPath ? ` and ${p.entryFloorPath}` : ""}`);
    const floor = await started(await startWorkerd(p.path, FLOOR_CONFIG, `floor-${p.path}`));
    results.floor[p.floorPath] = await workerdFloor(floor.url, params, { paused: true });
    if (p.entryFloorPath) results.floor[p.entryFloorPath] = await workerdFloor(floor.entryUrl, params);
    results.floor[p.floorPath].manyObjects = await workerdManyFloor(
      floor.url,
      params.manyFloorObjects,
      params.manyInFlight,
    );
    const server = await started(
      await startWorkerd(p.path, EDGELOCK_CONFIG, `edgelock-${p.path}`, EDGELOCK_VARS),
    );
    const memory = () => sumRss(server.rss());
    const extra = { path: p.floorPath, floorPath: p.floorPath, memoryOf: p.memoryOf };
    // Many locks runs last on each server: each of its acquire + release pairs leaves that lock's alarm at
    // the released lease's expiry (the lock object only ever moves its alarm earlier), and thousands of
    // alarms firing 30 s later slowed every other lock on the server (RESULTS.md, notes for the server).
    const allButMany = Object.keys(SCENARIOS).filter((s) => s !== "many");
    const httpSpec = { kind: "edgelock", url: server.url, headers: EDGELOCK_HEADERS, label: p.http.label };
    const http = wanted(p.http.key)
      ? await suite(p.http.key, httpSpec, memory, extra, p.sizes, allButMany)
      : null;
    if (http !== null) {
      http.boundRuns = await boundRuns(httpSpec, floor, server);
      results.systems.push(http);
    }
    await stop(floor);
    if (p.session && wanted(p.session.key)) {
      const spec = {
        kind: "edgelock-session",
        url: server.url,
        apiKey: EDGELOCK_API_KEY,
        label: p.session.label,
      };
      // Not many-locks: one socket per lock name would measure 10 000 WebSocket opens, not the lock.
      results.systems.push(await suite(p.session.key, spec, memory, extra, p.sizes, allButMany));
    }
    if (p.capped && wanted(p.capped)) results.capped = await cappedRuns(server.url);
    if (http !== null)
      Object.assign(http, await suite(p.http.key, httpSpec, memory, extra, p.sizes, ["many"]));
    await stop(server);
  }
}

async function peerRuns(results) {
  const peers = ["redis", "redlock-default", "redlock-tuned", "etcd"].filter(wanted);
  if (peers.length === 0) return;
  const missing = ensureInstalled({ "redis-server": "redis-server", etcd: "etcd-server" });
  const redisWanted = peers.some((k) => k.startsWith("red"));
  if (redisWanted && missing.includes("redis-server"))
    results.skipped.push("redis: redis-server not installed");
  else if (redisWanted) {
    const redis = await startRedis(tmp)
      .then(started)
      .catch((err) => results.skipped.push(`redis: ${err.message}`));
    if (typeof redis === "object") {
      results.floor["redis PING"] = { route: await redisFloor(redis.port, params) };
      const memory = () => Math.round(rssMiB(redis.pid));
      const extra = { memoryOf: "redis-server" };
      if (wanted("redis"))
        results.systems.push(
          await suite(
            "redis",
            { kind: "redis", port: redis.port, label: "redis SET NX (10 ms poll)" },
            memory,
            extra,
          ),
        );
      if (wanted("redlock-default"))
        results.systems.push(
          await suite(
            "redlock-default",
            { kind: "redlock", port: redis.port, ...REDLOCK_DEFAULT, label: "redlock (default 200 ms)" },
            memory,
            extra,
          ),
        );
      if (wanted("redlock-tuned"))
        results.systems.push(
          await suite(
            "redlock-tuned",
            {
              kind: "redlock",
              port: redis.port,
              retryDelay: REDLOCK_TUNED_DELAY_MS,
              retryJitter: REDLOCK_TUNED_DELAY_MS / 2,
              label: `redlock (tuned ${REDLOCK_TUNED_DELAY_MS} ms)`,
            },
            memory,
            extra,
          ),
        );
      await stop(redis);
    }
  }
  if (!wanted("etcd")) return;
  if (missing.includes("etcd")) return void results.skipped.push("etcd: etcd not installed");
  const etcd = await startEtcd(tmp)
    .then(started)
    .catch((err) => results.skipped.push(`etcd: ${err.message}`));
  if (typeof etcd !== "object") return;
  results.floor["etcd range"] = { route: await etcdFloor(etcd.url, params) };
  results.systems.push(
    await suite(
      "etcd",
      { kind: "etcd", url: etcd.url, label: "etcd FIFO mutex (watch)" },
      () => Math.round(rssMiB(etcd.pid)),
      { memoryOf: "etcd" },
    ),
  );
  await stop(etcd);
}

async function main() {
  const results = {
    startedAt: new Date().toISOString(),
    quick,
    params,
    machine: machineInfo(),
    floor: {},
    systems: [],
    skipped: [],
  };
  log(`edgelock bench${quick ? " (--quick)" : ""}; temp dir ${tmp}`);
  results.floor["node http (client + loopback)"] = { route: await nodeFloor(params) };
  try {
    await edgelockRuns(results);
    if (wanted("edgelock-rpc")) {
      log("edgelock from a bound Worker: Workers RPC vs HTTP");
      results.rpc = await rpcVersusHttp(params, tmp);
    }
    if (wanted("history")) {
      log("edgelock: lock history on vs off");
      const start = async (name, vars) =>
        started(await startWorkerd("direct", EDGELOCK_CONFIG, name, { ...EDGELOCK_VARS, ...vars }));
      const spec = { kind: "edgelock", headers: EDGELOCK_HEADERS, label: "edgelock history" };
      results.history = await historyCost(start, spec, params);
    }
    await peerRuns(results);
  } finally {
    await stopAll();
  }
  results.seconds = Math.round((performance.now() - t0) / 1000);
  results.machine.loadAverageAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  mkdirSync(join(BENCH_DIR, "results"), { recursive: true });
  report(results);
  rmSync(tmp, { recursive: true, force: true });
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
