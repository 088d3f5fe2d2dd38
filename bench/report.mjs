/**
 * Turns one run's results into the console tables, bench/results/<date>.json, the SVG chart and the
 * generated part of bench/RESULTS.md (between the bench:begin/end markers; text outside them is kept).
 */

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { chart } from "./chart.mjs";
import { BENCH_DIR, ROOT_DIR } from "./config.mjs";
import { rpcSection } from "./scenarios/binding.mjs";
import { historySection } from "./scenarios/history-cost.mjs";
import { version } from "./servers/peers.mjs";
import { checkTargets, ratios } from "./targets.mjs";

const pkg = (path) => {
  try {
    return JSON.parse(readFileSync(join(ROOT_DIR, "node_modules", path, "package.json"), "utf8")).version;
  } catch {
    return null;
  }
};

export function machineInfo() {
  return {
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? "?"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    wrangler: pkg("wrangler"),
    miniflare: pkg("wrangler/node_modules/miniflare") ?? pkg("miniflare"),
    workerd: pkg("wrangler/node_modules/@cloudflare/workerd-linux-64"),
    redis: version("redis-server", ["--version"], /v=(\S+)/),
    etcd: version("etcd", ["--version"], /etcd Version: (\S+)/),
    ioredis: pkg("ioredis"),
    redlock: pkg("redlock"),
    etcd3: pkg("etcd3"),
    commit: (() => {
      try {
        return execFileSync("git", ["rev-parse", "--short", "HEAD"], {
          cwd: ROOT_DIR,
          encoding: "utf8",
        }).trim();
      } catch {
        return null;
      }
    })(),
  };
}

const fmt = (v) =>
  v === null || v === undefined ? "–" : typeof v === "number" ? String(Math.round(v * 100) / 100) : String(v);

function table(headers, rows) {
  const lines = [`| ${headers.join(" | ")} |`, `|${headers.map(() => "---").join("|")}|`];
  for (const row of rows) lines.push(`| ${row.map(fmt).join(" | ")} |`);
  return lines.join("\n");
}

const lat = (s) => [s.p50, s.p90, s.p99, s.max];

function floorSection(r) {
  const kinds = ["route", "doNoop", "doWrite", "doWriteAlarm", "routePaused", "doWriteAlarmPaused"];
  const rows = Object.entries(r.floor).map(([path, f]) => [
    path,
    ...kinds.flatMap((k) => (f[k] ? [f[k].p50, f[k].p99] : [null, null])),
    f.manyObjects?.writesPerSec,
  ]);
  const f = (path, k) => r.floor[path]?.[k]?.p50 ?? null;
  const minus = (a, b) => (a === null || b === null ? null : Math.round((a - b) * 100) / 100);
  const direct = r.systems.find((s) => s.key === "edgelock-direct");
  const breakdown = [
    ["Node client + loopback HTTP (no-op Node server)", f("node http (client + loopback)", "route")],
    [
      "workerd HTTP + a no-op Worker",
      minus(f("workerd direct", "route"), f("node http (client + loopback)", "route")),
    ],
    ["Miniflare entry worker hop", minus(f("miniflare entry", "route"), f("workerd direct", "route"))],
    ["wrangler dev proxy hop(s)", minus(f("wrangler dev", "route"), f("miniflare entry", "route"))],
    [
      "Worker → Durable Object RPC (no-op method)",
      minus(f("workerd direct", "doNoop"), f("workerd direct", "route")),
    ],
    [
      "one SQLite write in the DO (local durability)",
      minus(f("workerd direct", "doWrite"), f("workerd direct", "doNoop")),
    ],
    [
      "a setAlarm with that write",
      minus(f("workerd direct", "doWriteAlarm"), f("workerd direct", "doWrite")),
    ],
    [
      "edgelock's own work per request (pair p50 / 2 − write + alarm floor; ≤ 0: within noise)",
      minus(direct ? direct.uncontended.pair.p50 / 2 : null, f("workerd direct", "doWriteAlarm")),
    ],
    [
      "waking up: a no-op route after the hand-off's 30–80 ms pause − back to back",
      minus(f("workerd direct", "routePaused"), f("workerd direct", "route")),
    ],
    [
      "waking up: write + setAlarm after the pause − back to back",
      minus(f("workerd direct", "doWriteAlarmPaused"), f("workerd direct", "doWriteAlarm")),
    ],
  ];
  return [
    "### 6. The floor (sequential round trips, ms; workerd direct is what npm start serves)",
    table(
      [
        "path",
        "no-op route p50",
        "p99",
        "no-op DO p50",
        "p99",
        "DO + 1 write p50",
        "p99",
        "write + setAlarm p50",
        "p99",
        "no-op route after pause p50",
        "p99",
        "write + setAlarm after pause p50",
        "p99",
        `fresh DOs + 1 write /s (${r.params.manyFloorObjects}, ${r.params.manyInFlight} in flight)`,
      ],
      rows,
    ),
    "",
    `"After pause": ${r.params.floorPausedRequests} calls, each after the hand-off scenario's random 30–80 ms pause (untimed), as a release in the hand-off is sent; the others run back to back.`,
    "",
    "Where one request's time goes (differences of p50s, ms):",
    table(["step", "ms"], breakdown),
  ].join("\n");
}

/** One row of the contended tables. */
const contendedRow = (label, c) => [
  label,
  c.processes,
  c.sections,
  c.lostUpdates,
  c.sectionsPerSec,
  c.wait.p50,
  c.wait.p99,
  c.wait.max,
  c.wait.mean,
  c.maxOverMeanWait,
  c.jain,
  c.overtakes,
  c.overtakesAtLock ?? "–",
  c.requestsPerSection,
  c.timeouts,
];
const CONTENDED_HEADERS = [
  "system",
  "P",
  "CS",
  "lost",
  "CS/s",
  "wait p50",
  "p99",
  "max",
  "mean",
  "max/mean",
  "Jain",
  "overtakes",
  "at the lock",
  "requests/CS",
  "timeouts",
];

/** Issue 9's runs: waits that span several requests, with and without the promise to re-poll. */
function cappedSection(r) {
  if (!r.capped?.length) return [];
  const { maxWaitMs, holdMs } = r.capped[0];
  const rows = r.capped.flatMap((run) =>
    run.contended.map((c) => [...contendedRow(run.label, c), c.repollsPerSection]),
  );
  return [
    "",
    `### 2b. Waits past the per-request cap: the contended counter on workerd direct, each acquire request waiting at most ${maxWaitMs} ms, each section held ${holdMs} ms (wait in ms)`,
    table([...CONTENDED_HEADERS, "re-polls/CS"], rows),
    "",
    "An overtake is a grant to a request made more than 5 ms after another process's request that was still in its acquire call (re-polls included). With `repoll: true` every waiter keeps its turn between its requests, so any overtake is a FIFO fault; without it (the control) the lock is free to serve the waiters behind between a request's end and its re-poll, so overtakes there are the work-conserving rule at work, and show that the count sees them.",
  ];
}

function scenarioSections(r) {
  const S = r.systems;
  const having = (k) => S.filter((s) => s[k] !== undefined);
  const contendedRows = having("contended").flatMap((s) => s.contended.map((c) => contendedRow(s.label, c)));
  return [
    `### 1. Uncontended: one client, acquire + release, ${r.params.uncontendedPairs} pairs (ms)`,
    table(
      ["system", "p50", "p90", "p99", "max", "pairs/s", "requests/pair"],
      having("uncontended").map((s) => [
        s.label,
        ...lat(s.uncontended.pair),
        s.uncontended.pairsPerSec,
        s.uncontended.requestsPerPair,
      ]),
    ),
    "",
    `### 2 + 7. Contended counter: P processes × ${r.params.contendedRounds} rounds (wait in ms)`,
    table(CONTENDED_HEADERS, contendedRows),
    ...cappedSection(r),
    "",
    `### 3. Hand-off: release call → waiter's grant, ${r.params.handoffs} hand-offs (ms)`,
    table(
      ["system", "p50", "p90", "p99", "max", "waiter requests per hand-off"],
      having("handoff").map((s) => [s.label, ...lat(s.handoff.handoff), s.handoff.waiterRequests]),
    ),
    "",
    `### 4. Lease expiry: lateness of the waiter's grant after the holder's TTL, ${r.params.expiries} expiries (ms)`,
    table(
      ["system", "TTL", "p50", "p90", "p99", "max"],
      having("expiry").map((s) => [s.label, s.expiry.ttlMs, ...lat(s.expiry.lateness)]),
    ),
    "",
    `### 5. Many locks: distinct names, acquire + release each, ${r.params.manyInFlight} in flight`,
    table(
      ["system", "names", "pairs/s", "requests/s", "server RSS before (MiB)", "after (MiB)", "process"],
      having("many").map((s) => [
        s.label,
        s.many.locks,
        s.many.pairsPerSec,
        s.many.requestsPerSec,
        s.many.rssBeforeMiB,
        s.many.rssAfterMiB,
        s.memoryOf,
      ]),
    ),
  ].join("\n");
}

function targetSections(r) {
  const out = [];
  for (const s of r.systems.filter((x) => x.key.startsWith("edgelock"))) {
    out.push(`### Targets: ${s.label} (floor: ${s.floorPath})`);
    out.push(
      table(
        ["issue", "target", "value", "limit", "status"],
        checkTargets(r, s.key).map((t) => [
          t.issue,
          t.name,
          `${fmt(t.value)}${t.unit}`,
          `${fmt(t.limit)}${t.unit}`,
          t.status,
        ]),
      ),
    );
    out.push("", `### Ratios: ${s.label} / peer`);
    const rows = ratios(r, s.key);
    const peers = Object.keys(rows[0] ?? {}).filter((k) => k !== "figure" && k !== "edgelock");
    out.push(
      table(
        ["figure", "edgelock", ...peers.map((p) => `÷ ${p}`)],
        rows.map((x) => [x.figure, x.edgelock, ...peers.map((p) => x[p])]),
      ),
      "",
    );
  }
  return out.join("\n");
}

function machineSection(r) {
  const m = r.machine;
  return [
    `Run ${r.startedAt}${r.quick ? " (--quick: tiny sizes, not for reading)" : ""}, ${r.seconds} s, commit ${m.commit}.`,
    "",
    `Machine: ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}, load average (1/5/15 min) ${m.loadAverageAtStart.join(" / ")} at the start and ${m.loadAverageAtEnd?.join(" / ")} at the end (the machine is shared).`,
    `Versions: Node ${m.node}, wrangler ${m.wrangler}, miniflare ${m.miniflare}, workerd ${m.workerd}, Redis ${m.redis}, etcd ${m.etcd}, ioredis ${m.ioredis}, redlock ${m.redlock}, etcd3 ${m.etcd3}.`,
    `Parameters: ${JSON.stringify(r.params)}.`,
    r.skipped.length > 0 ? `Skipped: ${r.skipped.join("; ")}.` : "",
  ].join("\n");
}

export function report(results) {
  const day = results.startedAt.slice(0, 10);
  const stem = results.quick ? `${day}-quick` : day;
  const chartFile = `results/${stem}.svg`;
  const generated = [
    machineSection(results),
    "",
    targetSections(results),
    scenarioSections(results),
    ...(results.rpc === undefined ? [] : ["", rpcSection(results.rpc)]),
    ...(results.history === undefined ? [] : ["", historySection(results.history)]),
    "",
    floorSection(results),
    "",
    `![hand-off and wait distributions](${chartFile})`,
  ].join("\n");
  console.log(`\n${generated}\n`);
  writeFileSync(join(BENCH_DIR, `results/${stem}.json`), `${JSON.stringify(results, null, 1)}\n`);
  writeFileSync(join(BENCH_DIR, chartFile), chart(results));
  const mdFile = join(BENCH_DIR, results.quick ? "results/RESULTS-quick.md" : "RESULTS.md");
  const begin = "<!-- bench:begin (generated by npm run bench; edit outside these markers) -->";
  const end = "<!-- bench:end -->";
  const old = existsSync(mdFile)
    ? readFileSync(mdFile, "utf8")
    : `# edgelock benchmark results\n\n${begin}\n${end}\n`;
  const [head, rest] = old.includes(begin) ? old.split(begin) : [old, `${end}\n`];
  const tail = rest.includes(end) ? rest.split(end)[1] : rest;
  writeFileSync(mdFile, `${head}${begin}\n${generated}\n${end}${tail}`);
  console.log(
    `wrote bench/results/${stem}.json, bench/${chartFile} and ${mdFile.replace(`${ROOT_DIR}/`, "")}`,
  );
}
