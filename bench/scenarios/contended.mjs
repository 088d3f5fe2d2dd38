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
 * Grants that overtook a request another process had made more than `slackMs` earlier: 0 for a FIFO
 * lock (the slack absorbs the client-to-server skew of near-simultaneous requests). "Made" is when the
 * request that took the waiter's place left the client, where the system says (`lease.requestedAt`: an
 * edgelock HTTP body sent, a session frame sent, etcd's put), else when the acquire call began. A wait
 * that re-polls past the per-request cap counts from its first request, because it promised each re-poll
 * (`repoll: true`) and so keeps its turn (docs/api.md "Waiting").
 * A client that does not promise has no turn between its requests (the lock is work-conserving), so its
 * overtakes are the rules working, not a fault: the bench runs such a client only as a control.
 */
function overtakes(perProcessGrants, slackMs = 5) {
  const all = perProcessGrants.flatMap((grants, p) =>
    grants.map(([asked, granted]) => ({ p, asked, granted })),
  );
  let count = 0;
  for (const a of all) {
    if (all.some((b) => b.p !== a.p && b.asked + slackMs < a.asked && b.granted > a.granted)) count++;
  }
  return count;
}

/**
 * Grants out of the order their requests reached the lock: a lease whose fencing token is below that of
 * another process's lease whose request reached the lock at least 1 ms earlier, both by the lock itself
 * (`lease.reachedAt`, its clock: expiresAt − validForMs; the token, its grant order). The count on the wire
 * (`overtakes`) also counts a request that the network or the server's ingress delivered late: a request
 * sent 6.7 ms before another reached the lock 1 ms after it in a run on 2026-12-03 (RESULTS.md, "Overtakes
 * on the wire and at the lock"). Null when a grant does not say (not edgelock, or a wait that re-polled).
 */
function overtakesAtLock(perProcessGrants) {
  const all = perProcessGrants.flatMap((grants, p) =>
    grants.map(([, , reached, token]) => ({ p, reached, token })),
  );
  if (all.some((g) => g.reached === null || g.token === null)) return null;
  let count = 0;
  for (const a of all) {
    if (all.some((b) => b.p !== a.p && b.reached < a.reached && b.token > a.token)) count++;
  }
  return count;
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
      overtakes: overtakes(results.map((r) => r.grants)),
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
