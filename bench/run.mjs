/**
 * npm run bench: edgelock against Redis and etcd locks on this machine, in one run. Starts every server
 * itself (127.0.0.1, free ports, state in a temp dir), runs the same scenarios against each system, stops
 * everything, then prints the tables and writes bench/results/<date>.json, bench/RESULTS.md and the chart.
 * Flags: --quick (tiny sizes, for development), --only=key,key (edgelock-direct, edgelock-dev,
 * edgelock-rpc, history, redis, redlock-default, redlock-tuned, etcd). Benchmarks print; they never assert
 * on speed.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { rssMiB, startLocalServer } from "../scripts/local-server.ts";
import {
  BENCH_DIR,
  EDGELOCK_HEADERS,
  EDGELOCK_VARS,
  parameters,
  REDLOCK_TUNED_DELAY_MS,
  ROOT_DIR,
} from "./config.mjs";
import { machineInfo, report } from "./report.mjs";
import { rpcVersusHttp } from "./scenarios/binding.mjs";
import { contended } from "./scenarios/contended.mjs";
import { etcdFloor, nodeFloor, redisFloor, workerdFloor, workerdManyFloor } from "./scenarios/floor.mjs";
import { expiry, handoff } from "./scenarios/handoff.mjs";
import { historyCost, printHistoryCost } from "./scenarios/history-cost.mjs";
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

/** Every scenario against one system; `memory()` reads the server's RSS in MiB. */
async function suite(key, spec, memory, extra = {}, sizes = {}) {
  const p = { ...params, ...sizes };
  const result = { key, label: spec.label, ...extra };
  log(`${spec.label}: uncontended`);
  result.uncontended = await uncontended(spec, p);
  result.contended = [];
  for (const processes of p.contendedProcesses) {
    log(`${spec.label}: contended counter, ${processes} processes`);
    result.contended.push(await contended(spec, p, processes, tmp));
  }
  log(`${spec.label}: hand-off`);
  result.handoff = await handoff(spec, p);
  log(`${spec.label}: lease expiry`);
  result.expiry = await expiry(spec, p);
  log(`${spec.label}: many locks`);
  result.many = await manyLocks(spec, p, memory);
  return result;
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

async function edgelockRuns(results) {
  if (wanted("edgelock-direct")) {
    log("floor: workerd direct socket and Miniflare entry");
    const mf = await started(await startWorkerd("direct", FLOOR_CONFIG, "floor-mf"));
    results.floor["workerd direct"] = await workerdFloor(mf.url, params);
    results.floor["miniflare entry"] = await workerdFloor(mf.entryUrl, params);
    results.floor["workerd direct"].manyObjects = await workerdManyFloor(
      mf.url,
      params.manyFloorObjects,
      params.manyInFlight,
    );
    await stop(mf);
    const server = await started(await startWorkerd("direct", EDGELOCK_CONFIG, "edgelock-mf", EDGELOCK_VARS));
    const spec = {
      kind: "edgelock",
      url: server.url,
      headers: EDGELOCK_HEADERS,
      label: "edgelock (workerd direct)",
    };
    results.systems.push(
      await suite("edgelock-direct", spec, () => sumRss(server.rss()), {
        path: "workerd direct",
        floorPath: "workerd direct",
        memoryOf: "workerd (1 process)",
      }),
    );
    await stop(server);
  }

  if (wanted("edgelock-dev")) {
    log("floor: wrangler dev");
    const floor = await started(await startWorkerd("wrangler-dev", FLOOR_CONFIG, "floor-wd"));
    results.floor["wrangler dev"] = await workerdFloor(floor.url, params);
    results.floor["wrangler dev"].manyObjects = await workerdManyFloor(
      floor.url,
      params.manyFloorObjects,
      params.manyInFlight,
    );
    await stop(floor);
    const server = await started(
      await startWorkerd("wrangler-dev", EDGELOCK_CONFIG, "edgelock-wd", EDGELOCK_VARS),
    );
    const spec = {
      kind: "edgelock",
      url: server.url,
      headers: EDGELOCK_HEADERS,
      label: "edgelock (wrangler dev)",
    };
    results.systems.push(
      await suite(
        "edgelock-dev",
        spec,
        () => sumRss(server.rss()),
        { path: "wrangler dev", floorPath: "wrangler dev", memoryOf: "workerd (proxy + user, 2 processes)" },
        { manyLocks: params.manyLocksDev },
      ),
    );
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
  if (results.history !== undefined) printHistoryCost(results.history);
  rmSync(tmp, { recursive: true, force: true });
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
