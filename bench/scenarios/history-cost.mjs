/**
 * What the lock history costs: uncontended acquire + release pairs against two servers of the same code
 * in the same run, one recording history and one with EDGELOCK_HISTORY=off, in alternating rounds so that
 * drift on a shared machine falls on both alike. History rides in each step's own storage transaction,
 * so the target is no measurable difference. It prints; it never asserts on speed.
 */
import { randomBytes } from "node:crypto";
import { round2, summarize } from "../stats.mjs";
import { makeSystem } from "../systems/index.mjs";

const ROUNDS = 6;
const WARMUP = 20;

/** `start(name, vars)` starts a server and resolves `{ url, stop() }`; `spec` is the edgelock system spec. */
export async function historyCost(start, spec, { uncontendedPairs }) {
  const perRound = Math.max(10, Math.round(uncontendedPairs / ROUNDS));
  const sides = {
    on: await start("history-on", {}),
    off: await start("history-off", { EDGELOCK_HISTORY: "off" }),
  };
  const latencies = { on: [], off: [] };
  try {
    const systems = {};
    const names = {};
    for (const side of ["on", "off"]) {
      systems[side] = await makeSystem({ ...spec, url: sides[side].url, label: `history ${side}` });
      names[side] = `history-cost-${randomBytes(4).toString("hex")}`;
    }
    const pair = async (side) => {
      const lease = await systems[side].acquire(names[side], { ttlMs: 10_000 });
      if (lease === null) throw new Error(`history ${side}: uncontended acquire refused`);
      await systems[side].release(lease);
    };
    for (const side of ["on", "off"]) for (let i = 0; i < WARMUP; i++) await pair(side);
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, too.
      for (const side of round % 2 === 0 ? ["on", "off"] : ["off", "on"]) {
        for (let i = 0; i < perRound; i++) {
          const t = performance.now();
          await pair(side);
          latencies[side].push(performance.now() - t);
        }
      }
    }
    for (const side of ["on", "off"]) await systems[side].close();
  } finally {
    for (const server of Object.values(sides)) await server.stop();
  }
  const on = summarize(latencies.on);
  const off = summarize(latencies.off);
  return {
    pairsPerSide: latencies.on.length,
    on,
    off,
    p50Ratio: round2(on.p50 / off.p50),
    meanRatio: round2(on.mean / off.mean),
  };
}

/** The generated RESULTS.md section (issue 14's target: no measurable difference). */
export function historySection(r) {
  const row = (label, x) => `| ${label} | ${x.p50} | ${x.p90} | ${x.p99} | ${x.max} | ${x.mean} |`;
  return [
    `### 8. What the lock history costs: acquire + release pairs, history on vs off (two servers, same run, alternating rounds, ${r.pairsPerSide} pairs each, ms)`,
    "",
    "| server | p50 | p90 | p99 | max | mean |",
    "|---|---|---|---|---|---|",
    row("history on", r.on),
    row("history off (EDGELOCK_HISTORY=off)", r.off),
    "",
    `On ÷ off: p50 ${r.p50Ratio}×, mean ${r.meanRatio}×.`,
  ].join("\n");
}
