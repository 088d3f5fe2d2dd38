/**
 * Scenario 2 (and 7), contended counter: P forked OS processes share one lock and one counter file.
 * Reports lost updates (must be 0), critical sections per second, wait percentiles, fairness (Jain's index
 * over time windows, max wait / mean wait, and grants that overtook an earlier waiter) and requests per
 * critical section, polls included.
 */
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH_DIR } from "../config.mjs";
import { overtakesAtLock, overtakesOnTheWire } from "../fifo.ts";
import { round2, summarize, windowedJain } from "../stats.mjs";

const WORKER = join(BENCH_DIR, "scenarios/contended-worker.mjs");

function startWorker(job) {
  const child = fork(WORKER, [], {
    execPath: process.execPath,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const messages = [];
  let wake = null;
  child.on("message", (m) => {
    messages.push(m);
    wake?.();
  });
  child.on("exit", () => wake?.());
  const next = async () => {
    while (messages.length === 0) {
      if (child.exitCode !== null) throw new Error("contended worker exited early");
      await new Promise((resolve) => {
        wake = resolve;
      });
    }
    const m = messages.shift();
    if (m.type === "error") throw new Error(`contended worker failed: ${m.message}`);
    return m;
  };
  child.send(job);
  return { child, next };
}

/**
 * `holdMs`: how long each critical section lasts beyond its file read and write (default 0). `serverCpuMs`:
 * a reading of the server's CPU time so far (LocalServer.cpuMs), to report its CPU per measured section.
 */
export async function contended(
  spec,
  { contendedRounds: rounds },
  processes,
  tmp,
  { holdMs = 0, serverCpuMs } = {},
) {
  const name = `counter-${randomBytes(4).toString("hex")}`;
  const counterFile = join(tmp, `${name}.txt`);
  writeFileSync(counterFile, "0");
  const workers = Array.from({ length: processes }, () =>
    startWorker({ spec, name, rounds, counterFile, holdMs }),
  );
  try {
    for (const w of workers) await w.next(); // ready
    const started = Date.now();
    const cpuBefore = serverCpuMs?.();
    for (const w of workers) w.child.send("go");
    const results = [];
    for (const w of workers) results.push(await w.next());
    const cpuAfter = serverCpuMs?.();
    const finished = Math.max(...results.map((r) => r.ends.at(-1) ?? started));
    const sections = results.reduce((s, r) => s + r.ends.length, 0);
    const waits = results.flatMap((r) => r.waits);
    const wait = summarize(waits);
    const requests = results.reduce((s, r) => s + r.requests, 0);
    const repolls = results.reduce((s, r) => s + (r.repolls ?? 0), 0);
    return {
      processes,
      sections,
      lostUpdates: sections - Number(readFileSync(counterFile, "utf8")),
      timeouts: results.reduce((s, r) => s + r.timeouts, 0),
      sectionsPerSec: round2(sections / ((finished - started) / 1000)),
      wait,
      waitSamples: waits.map(round2),
      maxOverMeanWait: wait.mean > 0 ? round2(wait.max / wait.mean) : null,
      jain: windowedJain(results.map((r) => r.ends)),
      overtakes: overtakesOnTheWire(results.map((r) => r.grants)),
      overtakesAtLock: overtakesAtLock(results.map((r) => r.grants)),
      perProcess: results.map((r) => r.ends.length),
      requestsPerSection: round2(requests / sections),
      repollsPerSection: round2(repolls / sections),
      ...(cpuBefore === undefined ? {} : { serverCpuMsPerSection: (cpuAfter - cpuBefore) / sections }),
    };
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill();
  }
}
