/**
 * The targets, checked from one run's results: issue 16's (on the served path, `npm start`'s workerd direct:
 * every figure ahead of etcd's FIFO mutex, and close to the path's own write + setAlarm floor), issue 9's
 * (no overtakes when waits span several requests), issue 12's (session hand-off) and the issue-6 targets
 * that still say something. A target whose inputs are missing (a peer or a run skipped) is n/a. These are
 * printed, never asserted.
 */

import { percentile, round2 } from "./stats.mjs";

const find = (results, key) => results.systems.find((s) => s.key === key);
const atP = (system, p) => system?.contended?.find((c) => c.processes === p);
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : round2(a / b));
/** The p50 of `list` by nearest rank, as every other p50 of the bench (the middle one of an odd count). */
const median = (list) =>
  percentile(
    [...list].sort((a, b) => a - b),
    50,
  );
const sum = (list, get) => (list.length === 0 ? null : list.reduce((s, x) => s + get(x), 0));

function target(issue, name, value, limit, pass, unit = "") {
  const status = value == null || limit == null ? "n/a" : pass ? "PASS" : "MISS";
  return { issue, name, value, limit, unit, status };
}
const info = (issue, name, value, unit = "") => ({ issue, name, value, limit: null, unit, status: "info" });

/** The floors a hand-off is read against: write + setAlarm back to back, and after the hand-off's pause. */
function floors(results, system) {
  const f = results.floor[system.floorPath] ?? {};
  return { writeAlarm: f.doWriteAlarm?.p50 ?? null, writeAlarmPaused: f.doWriteAlarmPaused?.p50 ?? null };
}

/** Issue 16's comparisons with etcd's FIFO mutex: each "ahead" is a ratio below 1 (latency) or above 1 (rate). */
function aheadOfEtcd(me, etcd) {
  const lower = (name, get) => {
    const r = ratio(get(me), etcd && get(etcd));
    return target(16, `${name} ahead of etcd's (edgelock ÷ etcd < 1)`, r, 1, r < 1, "×");
  };
  const higher = (name, get) => {
    const r = ratio(get(me), etcd && get(etcd));
    return target(16, `${name} ahead of etcd's (edgelock ÷ etcd > 1)`, r, 1, r > 1, "×");
  };
  return [
    lower("uncontended pair p50", (s) => s.uncontended?.pair.p50),
    lower("hand-off p50", (s) => s.handoff?.handoff.p50),
    lower("hand-off p99", (s) => s.handoff?.handoff.p99),
    higher("contended CS/s at P=2", (s) => atP(s, 2)?.sectionsPerSec),
    higher("contended CS/s at P=4", (s) => atP(s, 4)?.sectionsPerSec),
    lower("lease-expiry lateness p50", (s) => s.expiry?.lateness.p50),
  ];
}

/** The hand-off against both floors; the target uses the one after the same pause (RESULTS.md says why). */
function handoffFloor(issue, handoff, f, limit) {
  const paused = ratio(handoff, f.writeAlarmPaused);
  return [
    target(
      issue,
      `hand-off p50 ≤ ${limit} × write + setAlarm floor after the hand-off's pause`,
      paused,
      limit,
      paused <= limit,
      "×",
    ),
    info(
      issue,
      "(context) hand-off p50 ÷ write + setAlarm floor back to back",
      ratio(handoff, f.writeAlarm),
      "×",
    ),
  ];
}

/** The targets for one edgelock system (`edgelock-direct`, `edgelock-session` or `edgelock-dev`). */
export function checkTargets(results, key) {
  const me = find(results, key);
  if (me === undefined) return [];
  const etcd = find(results, "etcd");
  const f = floors(results, me);
  const handoff = me.handoff?.handoff.p50;
  const capped = key === "edgelock-direct" ? (results.capped ?? []) : [];
  const promised = capped.filter((c) => c.repoll).flatMap((c) => c.contended);
  const control = capped.filter((c) => !c.repoll).flatMap((c) => c.contended);
  const beside = me.boundRuns ?? [];
  const runs = [...(me.contended ?? []), ...beside, ...promised, ...control];
  const lost = sum(runs, (c) => c.lostUpdates);
  // Overtakes at the lock, by its clock and tokens, where every grant of a run says when it reached the
  // lock; on the wire (sent > 5 ms earlier, granted later) for context, and where a run does not say.
  const fifoRuns = [...(me.contended ?? []), ...beside];
  const overtakes = sum(fifoRuns, (c) => c.overtakesAtLock ?? c.overtakes);
  const onTheWire = sum(fifoRuns, (c) => c.overtakes);
  const wireRow = (issue) =>
    info(
      issue,
      "(context) the same runs' overtakes on the wire: grants ahead of a request sent > 5 ms earlier, which includes requests delivered to the lock late",
      onTheWire,
    );
  const cap = capped[0]?.maxWaitMs;

  if (key === "edgelock-session") {
    return [
      ...handoffFloor(12, handoff, f, 1.2),
      target(12, "contended: 0 lost updates", lost, 0, lost === 0),
      target(
        12,
        "contended: 0 overtakes at the lock (out of the order requests reached it)",
        overtakes,
        0,
        overtakes === 0,
      ),
      wireRow(12),
      ...aheadOfEtcd(me, etcd),
    ];
  }

  const p4 = atP(me, 4);
  // Each contended section needs at least two write + setAlarm round trips: its acquire's and its release's.
  const boundOf = (writeAlarm) => (writeAlarm ? 1000 / (2 * writeAlarm) : null);
  const bound = boundOf(f.writeAlarm);
  // The target: the median over the runs taken beside their own floor (run.mjs, `boundRuns`).
  const besideRatios = beside.map((r) => ratio(r.sectionsPerSec, boundOf(r.writeAlarmP50)));
  const p4Ratio = besideRatios.length > 0 ? median(besideRatios) : ratio(p4?.sectionsPerSec, bound);
  const batons = beside.filter((r) => r.baton !== undefined);
  const batonRatios = batons.map((r) => ratio(r.baton.sectionsPerSec, boundOf(r.writeAlarmP50)));
  const overBaton = batons.map((r) => ratio(r.sectionsPerSec, r.baton.sectionsPerSec));
  const cpuOverBaton = batons
    .map((r) => ratio(r.serverCpuMsPerSection, r.baton.serverCpuMsPerSection))
    .filter((r) => r !== null);
  const cpuRatios = beside
    .map((r) => ratio(r.serverCpuMsPerSection, r.writeAlarmCpuMs && 2 * r.writeAlarmCpuMs))
    .filter((r) => r !== null);
  const cappedOvertakes = sum(promised, (c) => c.overtakes);
  const tuned = find(results, "redlock-tuned");
  const noopDo = results.floor[me.floorPath]?.doNoop?.p50 ?? null;
  return [
    ...aheadOfEtcd(me, etcd),
    target(16, "contended: 0 lost updates (every contended run of this path)", lost, 0, lost === 0),
    target(
      16,
      "contended: 0 overtakes at the lock (out of the order requests reached it; waits within one request)",
      overtakes,
      0,
      overtakes === 0,
    ),
    wireRow(16),
    ...(capped.length === 0
      ? []
      : [
          target(
            9,
            `contended: 0 overtakes, waits past a ${cap} ms per-request cap (repoll: true)`,
            cappedOvertakes,
            0,
            cappedOvertakes === 0,
          ),
          info(
            9,
            "(control) overtakes in the same run without repoll, where the lock may serve others between requests",
            sum(control, (c) => c.overtakes),
          ),
        ]),
    ...handoffFloor(16, handoff, f, 1.5),
    target(
      16,
      besideRatios.length > 0
        ? `contended CS/s at P=4 ≥ 0.9 × bound of two write + setAlarm round trips per section (median of ${besideRatios.length} runs, each right after its floor)`
        : "contended CS/s at P=4 ≥ 0.9 × bound of two write + setAlarm round trips per section",
      p4Ratio,
      0.9,
      p4Ratio >= 0.9,
      "×",
    ),
    ...(besideRatios.length > 0
      ? [
          info(
            16,
            "(context) each of those runs: CS/s ÷ its bound (its floor's write + setAlarm p50)",
            beside.map((r, i) => `${besideRatios[i]}× (${round2(r.writeAlarmP50)} ms)`).join(", "),
          ),
          info(
            16,
            "(context) table 2's P=4 run ÷ the bound from the floor taken at the path's start",
            ratio(p4?.sectionsPerSec, bound),
            "×",
          ),
          info(
            16,
            "(context) the same bound in workerd CPU: CPU per section ÷ 2 × the floor's CPU per write + setAlarm (median; ≤ 1.11 would be 0.9×)",
            cpuRatios.length > 0 ? median(cpuRatios) : null,
            "×",
          ),
        ]
      : []),
    ...(batons.length > 0
      ? [
          info(
            16,
            "(context) the baton, a lock with no rules (two write + setAlarm per section, bench/floor), at P=4 beside each run: CS/s ÷ the same bound (median; each run)",
            `${median(batonRatios)}× (${batonRatios.map((r) => `${r}×`).join(", ")}; lost updates ${sum(batons, (r) => r.baton.lostUpdates)})`,
          ),
          info(
            16,
            "(context) edgelock's CS/s ÷ the baton's, each pair back to back (median; each run)",
            `${median(overBaton)}× (${overBaton.map((r) => `${r}×`).join(", ")})`,
          ),
          info(
            16,
            "(context) edgelock's workerd CPU per section ÷ the baton's (median)",
            cpuOverBaton.length > 0 ? median(cpuOverBaton) : null,
            "×",
          ),
        ]
      : []),
    target(
      6,
      "hand-off p50 ≥ 5× lower than redlock (tuned 50 ms)",
      ratio(tuned?.handoff.handoff.p50, handoff),
      5,
      ratio(tuned?.handoff.handoff.p50, handoff) >= 5,
      "×",
    ),
    target(
      6,
      "lease-expiry lateness p50 < 25 ms",
      me.expiry?.lateness.p50,
      25,
      me.expiry?.lateness.p50 < 25,
      "ms",
    ),
    target(6, "requests per CS ≤ 2.5 (P=4)", p4?.requestsPerSection, 2.5, p4?.requestsPerSection <= 2.5),
    target(
      6,
      "uncontended pair p50 ≤ 4 × no-op DO round trip",
      ratio(me.uncontended?.pair.p50, noopDo),
      4,
      ratio(me.uncontended?.pair.p50, noopDo) <= 4,
      "×",
    ),
  ];
}

/**
 * edgelock / peer for each headline figure (lower is better for latencies, higher for rates). A session
 * system is also set against the HTTP client on the same path.
 */
export function ratios(results, key) {
  const me = find(results, key);
  if (me === undefined) return [];
  const figures = [
    ["uncontended pair p50 (ms)", (s) => s.uncontended?.pair.p50],
    ["uncontended pairs/s", (s) => s.uncontended?.pairsPerSec],
    ["CS/s, P=2", (s) => atP(s, 2)?.sectionsPerSec],
    ["CS/s, P=4", (s) => atP(s, 4)?.sectionsPerSec],
    ["wait p50, P=4 (ms)", (s) => atP(s, 4)?.wait.p50],
    ["wait p99, P=4 (ms)", (s) => atP(s, 4)?.wait.p99],
    ["requests per CS, P=4", (s) => atP(s, 4)?.requestsPerSection],
    ["hand-off p50 (ms)", (s) => s.handoff?.handoff.p50],
    ["hand-off p99 (ms)", (s) => s.handoff?.handoff.p99],
    ["expiry lateness p50 (ms)", (s) => s.expiry?.lateness.p50],
    ["many locks pairs/s", (s) => s.many?.pairsPerSec],
    ["server RSS after many locks (MiB)", (s) => s.many?.rssAfterMiB],
  ];
  const http = key === "edgelock-session" ? find(results, "edgelock-direct") : undefined;
  const others = [
    ...(http === undefined ? [] : [http]),
    ...results.systems.filter((s) => !s.key.startsWith("edgelock")),
  ];
  return figures
    .filter(([, get]) => get(me) != null)
    .map(([figure, get]) => ({
      figure,
      edgelock: get(me) ?? null,
      ...Object.fromEntries(others.map((p) => [p.label, ratio(get(me), get(p))])),
    }));
}
