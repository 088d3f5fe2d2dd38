/**
 * Issue 6's targets, checked from one run's results: each edgelock path against its own platform floor
 * and against the peers measured in the same run. A target whose inputs are missing (a peer skipped) is
 * reported as n/a. These are printed, never asserted.
 */

const find = (results, key) => results.systems.find((s) => s.key === key);
const atP = (system, p) => system?.contended.find((c) => c.processes === p);
const ratio = (a, b) => (a == null || b == null || b === 0 ? null : Math.round((a / b) * 100) / 100);

function target(name, value, limit, pass, unit = "") {
  const status = value == null || limit == null ? "n/a" : pass ? "PASS" : "MISS";
  return { name, value, limit, unit, status };
}

/** The targets for one edgelock system (`edgelock-direct` or `edgelock-dev`). */
export function checkTargets(results, key) {
  const me = find(results, key);
  if (me === undefined) return [];
  const floor = results.floor[me.floorPath]?.doNoop?.p50 ?? null;
  const tuned = find(results, "redlock-tuned");
  const etcd = find(results, "etcd");
  const handoff = me.handoff.handoff.p50;
  const p4 = atP(me, 4);
  const lost = me.contended.reduce((s, c) => s + c.lostUpdates, 0);
  const fifo = Math.max(...me.contended.map((c) => c.maxOverMeanWait ?? 0));
  return [
    target(
      "hand-off p50 ≤ 1.2 × no-op DO round trip",
      ratio(handoff, floor),
      1.2,
      ratio(handoff, floor) <= 1.2,
      "×",
    ),
    target(
      "hand-off p50 ≥ 5× lower than redlock (tuned 50 ms)",
      ratio(tuned?.handoff.handoff.p50, handoff),
      5,
      ratio(tuned?.handoff.handoff.p50, handoff) >= 5,
      "×",
    ),
    {
      name: "(context) hand-off p50 ÷ DO write + setAlarm round trip, the floor of a durable grant",
      value: ratio(handoff, results.floor[me.floorPath]?.doWriteAlarm?.p50),
      limit: null,
      unit: "×",
      status: "info",
    },
    target(
      "hand-off p50 ≤ etcd mutex's",
      ratio(handoff, etcd?.handoff.handoff.p50),
      1,
      ratio(handoff, etcd?.handoff.handoff.p50) <= 1,
      "×",
    ),
    target(
      "lease-expiry lateness p50 < 25 ms",
      me.expiry.lateness.p50,
      25,
      me.expiry.lateness.p50 < 25,
      "ms",
    ),
    target("contended: 0 lost updates", lost, 0, lost === 0),
    target("contended: max wait ≤ 3 × mean wait", fifo, 3, fifo <= 3, "×"),
    target(
      "contended CS/s ≥ etcd's (P=4)",
      ratio(p4?.sectionsPerSec, atP(etcd, 4)?.sectionsPerSec),
      1,
      ratio(p4?.sectionsPerSec, atP(etcd, 4)?.sectionsPerSec) >= 1,
      "×",
    ),
    target("requests per CS ≤ 2.5 (P=4)", p4?.requestsPerSection, 2.5, p4?.requestsPerSection <= 2.5),
    target(
      "uncontended pair p50 ≤ 4 × no-op DO round trip",
      ratio(me.uncontended.pair.p50, floor),
      4,
      ratio(me.uncontended.pair.p50, floor) <= 4,
      "×",
    ),
  ];
}

/** edgelock / peer for each headline figure (lower is better for latencies, higher for rates). */
export function ratios(results, key) {
  const me = find(results, key);
  if (me === undefined) return [];
  const figures = [
    ["uncontended pair p50 (ms)", (s) => s.uncontended.pair.p50],
    ["uncontended pairs/s", (s) => s.uncontended.pairsPerSec],
    ["CS/s, P=4", (s) => atP(s, 4)?.sectionsPerSec],
    ["wait p50, P=4 (ms)", (s) => atP(s, 4)?.wait.p50],
    ["wait p99, P=4 (ms)", (s) => atP(s, 4)?.wait.p99],
    ["requests per CS, P=4", (s) => atP(s, 4)?.requestsPerSection],
    ["hand-off p50 (ms)", (s) => s.handoff.handoff.p50],
    ["hand-off p99 (ms)", (s) => s.handoff.handoff.p99],
    ["expiry lateness p50 (ms)", (s) => s.expiry.lateness.p50],
    ["many locks pairs/s", (s) => s.many.pairsPerSec],
    ["server RSS after many locks (MiB)", (s) => s.many.rssAfterMiB],
  ];
  const peers = results.systems.filter((s) => !s.key.startsWith("edgelock"));
  return figures.map(([figure, get]) => ({
    figure,
    edgelock: get(me) ?? null,
    ...Object.fromEntries(peers.map((p) => [p.label, ratio(get(me), get(p))])),
  }));
}
