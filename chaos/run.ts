/**
 * The chaos run: K forked clients contend on a few locks through a fault-injecting proxy to a local server
 * (scripts/local-server.ts, persisted), while a seeded plan SIGKILLs clients, cuts session connections and
 * restarts the server; then every lock must end free and the logs must pass every check in check.ts.
 * `runChaos()` is used by test/e2e/chaos.test.ts; run this file directly (`npm run chaos -- --minutes 10
 * --seed 7`) for longer hunts. Exit code 1 on any violation.
 */
import { type ChildProcess, fork } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { REPOLL_GRACE_MS } from "../client/src/protocol.ts";
import {
  type LocalPath,
  type LocalServer,
  parseLocalPath,
  startLocalServer,
} from "../scripts/local-server.ts";
import {
  type CheckReport,
  type ClientEvent,
  checkRun,
  type EndCheck,
  type PlanRecord,
  type RestartCheck,
} from "./check.ts";
import type { ClientConfig, ClientRole } from "./client-context.ts";
import { type StoreAccess, startFencedStore } from "./fenced-store.ts";
import { openJsonl, readJsonl } from "./jsonl.ts";
import { sleep } from "./lock-client.ts";
import { formatLocks, type LockSpec, parseLocks } from "./locks.ts";
import { type Exchange, type ProxyRecord, startProxy } from "./proxy.ts";
import { childSeed, makeRng } from "./rng.ts";
import type { PushRecord, SessionRecord } from "./session-relay.ts";

export interface ChaosOptions {
  seed: number;
  durationMs: number;
  /** Holders (acquire, work under the lease, renew, release) through the `client` below. */
  clients: number;
  /** More holders over bare fetch that promise their re-polls (`repoll: true`). */
  rawClients: number;
  /** Holders through the library's sessions (`client.session(name)`, one WebSocket per lock). */
  sessionClients: number;
  /** The TTL session holders ask for: longer than `ttlMs`, so a lease freed by its session's end shows. */
  sessionTtlMs: number;
  /** Short-wait clients over bare HTTP: `waitMs` 100–500, no re-poll, release at once (give-up-process.ts). */
  giveUpClients: number;
  locks: LockSpec[];
  ttlMs: number;
  maxWaitMs: number;
  /** Fraction of POST answers the proxy drops after the server acted. */
  dropRate: number;
  /** Per work step, the chance that a holder stalls past its TTL and then writes late. */
  stallChance: number;
  /** Mean time between client SIGKILLs, and between server restarts (0 disables). */
  killEveryMs: number;
  restartEveryMs: number;
  /** Mean time between session cuts by the proxy (0 disables), and the share of them that go silent. */
  cutEveryMs: number;
  silentCutShare: number;
  /** The `clients`' lock calls: through the client library, or bare fetch. @default "library" */
  client: "library" | "raw";
  /** The local path the server runs on. @default "direct" (what `npm start` serves) */
  server: LocalPath;
  /** Where logs, the persisted state and report.json go. @default a new directory under the OS temp dir */
  outDir?: string;
  log: (line: string) => void;
}

export interface ChaosResult extends CheckReport {
  seed: number;
  outDir: string;
  faults: Record<string, number>;
}

export const DEFAULTS: Omit<ChaosOptions, "outDir" | "log"> = {
  seed: 1,
  durationMs: 60_000,
  clients: 5,
  rawClients: 1,
  sessionClients: 2,
  sessionTtlMs: 1_500,
  giveUpClients: 3,
  locks: parseLocks("chaos-mutex:mutex,chaos-rw:rwlock,chaos-sem:semaphore:3"),
  ttlMs: 800,
  maxWaitMs: 1_500,
  dropRate: 0.05,
  stallChance: 0.08,
  killEveryMs: 4_000,
  restartEveryMs: 15_000,
  cutEveryMs: 2_500,
  silentCutShare: 0.1,
  client: "library",
  server: "direct",
};

const SCRIPTS: Record<ClientRole, string> = {
  library: resolve(import.meta.dirname, "holder-process.ts"),
  raw: resolve(import.meta.dirname, "holder-process.ts"),
  session: resolve(import.meta.dirname, "holder-process.ts"),
  "give-up": resolve(import.meta.dirname, "give-up-process.ts"),
};

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const o = {
    ...options,
    outDir: options.outDir ?? mkdtempSync(join(tmpdir(), `edgelock-chaos-${options.seed}-`)),
  };
  mkdirSync(o.outDir, { recursive: true });
  writeFileSync(join(o.outDir, "options.json"), JSON.stringify({ ...o, log: undefined }, null, 2));
  const persistTo = join(o.outDir, "persist");
  const plan = makeRng(childSeed(o.seed, 1));
  const proxyLog = openJsonl(join(o.outDir, "proxy.jsonl"));
  const storeLog = openJsonl(join(o.outDir, "store.jsonl"));
  const planLog = openJsonl(join(o.outDir, "plan.jsonl"));
  const faults: Record<string, number> = { "client kills": 0, "server restarts": 0 };
  const restartChecks: RestartCheck[] = [];
  const maxToken = new Map<string, number>();

  const store = await startFencedStore(storeLog);
  const proxy = await startProxy({
    rng: makeRng(childSeed(o.seed, 2)),
    dropRate: o.dropRate,
    log: {
      write: (r) => {
        proxyLog.write(r);
        if (r.kind !== "exchange") return;
        const ex = r as unknown as Exchange;
        const m = /^\/v1\/locks\/([^/]+)\/acquire$/.exec(ex.path);
        const token = (ex.response as { token?: number } | null)?.token;
        if (m !== null && ex.status === 200 && typeof token === "number") {
          const name = m[1] as string;
          maxToken.set(name, Math.max(maxToken.get(name) ?? 0, token));
        }
      },
      close: () => proxyLog.close(),
    },
  });
  // The harness hunts lock bugs, not auth: it runs without keys, explicitly (the server refuses otherwise).
  const startServer = (): Promise<LocalServer> =>
    startLocalServer({
      path: o.server,
      persistTo,
      logFile: join(o.outDir, "server.log"),
      vars: { EDGELOCK_INSECURE_NO_AUTH: "true" },
    });
  let server = await startServer();
  proxy.setUpstream(server.url);
  o.log(
    `chaos seed=${o.seed} out=${o.outDir} server=${server.url} proxy=${proxy.url} locks=${formatLocks(o.locks)}`,
  );

  const children = new Map<number, ChildProcess>();
  const incarnations = new Map<number, number>();
  const clientErr = createWriteStream(join(o.outDir, "clients.stderr"), { flags: "a" });
  // Every client's stderr is piped into it, each pipe with its own listeners.
  clientErr.setMaxListeners(0);
  let stopping = false;
  const roles: ClientRole[] = [
    ...Array<ClientRole>(o.clients).fill(o.client),
    ...Array<ClientRole>(o.rawClients).fill("raw"),
    ...Array<ClientRole>(o.sessionClients).fill("session"),
    ...Array<ClientRole>(o.giveUpClients).fill("give-up"),
  ];
  const spawnClient = (clientId: number): void => {
    const role = roles[clientId] as ClientRole;
    const incarnation = (incarnations.get(clientId) ?? 0) + 1;
    incarnations.set(clientId, incarnation);
    const cfg: ClientConfig = {
      clientId,
      incarnation,
      role,
      seed: childSeed(o.seed, 100 + clientId, incarnation),
      baseUrl: proxy.url,
      storeUrl: store.url,
      locks: o.locks,
      ttlMs: role === "session" ? o.sessionTtlMs : o.ttlMs,
      maxWaitMs: o.maxWaitMs,
      // Work steps as long for every holder; stalls past each one's own TTL.
      workStepMs: Math.floor(o.ttlMs / 3),
      stallChance: o.stallChance,
      stallMaxMs: role === "session" ? o.sessionTtlMs + 2 * o.ttlMs : 3 * o.ttlMs,
      logPath: join(o.outDir, `client-${clientId}-${incarnation}.jsonl`),
    };
    const child = fork(SCRIPTS[role], [], {
      execPath: process.execPath,
      execArgv: [],
      env: { ...process.env, CHAOS_CLIENT: JSON.stringify(cfg) },
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    child.stderr?.pipe(clientErr, { end: false });
    children.set(clientId, child);
    child.once("exit", () => {
      if (children.get(clientId) === child) children.delete(clientId);
    });
  };
  for (let i = 0; i < roles.length; i++) spawnClient(i);

  const killClient = async (): Promise<void> => {
    const ids = [...children.keys()];
    if (ids.length === 0) return;
    const id = plan.pick(ids);
    const child = children.get(id);
    if (child === undefined) return;
    const exited = new Promise((r) => child.once("exit", r));
    const record: PlanRecord = {
      kind: "kill",
      at: Date.now(),
      client: `client-${id}.${incarnations.get(id) ?? 0}`,
      role: roles[id] as ClientRole,
    };
    planLog.write({ ...record });
    child.kill("SIGKILL");
    await exited;
    faults["client kills"] = (faults["client kills"] ?? 0) + 1;
    const downMs = plan.int(100, 1_000);
    setTimeout(() => {
      if (!stopping) spawnClient(id);
    }, downMs);
  };

  const restartServer = async (): Promise<void> => {
    proxy.setUpstream(null);
    await server.stop();
    faults["server restarts"] = (faults["server restarts"] ?? 0) + 1;
    const before = new Map(maxToken);
    await sleep(plan.int(0, 1_000));
    server = await startServer();
    // Read lastToken before any client traffic reaches the new server.
    for (const { name } of o.locks) {
      const view = await inspect(server.url, name);
      restartChecks.push({
        at: Date.now(),
        name,
        lastTokenAfter: view.lastToken,
        maxTokenBefore: before.get(name) ?? 0,
      });
    }
    proxy.setUpstream(server.url);
  };

  try {
    const started = Date.now();
    let nextKill =
      o.killEveryMs > 0 ? started + plan.int(o.killEveryMs / 2, (o.killEveryMs * 3) / 2) : Infinity;
    let nextRestart =
      o.restartEveryMs > 0 ? started + plan.int(o.restartEveryMs / 2, (o.restartEveryMs * 3) / 2) : Infinity;
    // Cuts draw from a stream of their own, so adding them left the kill and restart plan as it was.
    const cuts = makeRng(childSeed(o.seed, 3));
    const nextCutAfter = (): number =>
      o.cutEveryMs > 0 && o.sessionClients > 0
        ? Date.now() + cuts.int(o.cutEveryMs / 2, (o.cutEveryMs * 3) / 2)
        : Infinity;
    let nextCut = nextCutAfter();
    let lastReport = started;
    while (Date.now() - started < o.durationMs) {
      const now = Date.now();
      if (now >= nextKill) {
        await killClient();
        nextKill = Date.now() + plan.int(o.killEveryMs / 2, (o.killEveryMs * 3) / 2);
      } else if (now >= nextRestart) {
        await restartServer();
        nextRestart = Date.now() + plan.int(o.restartEveryMs / 2, (o.restartEveryMs * 3) / 2);
      } else if (now >= nextCut) {
        proxy.cutSession(cuts, cuts.chance(o.silentCutShare) ? "silent" : "reset");
        nextCut = nextCutAfter();
      } else {
        await sleep(Math.min(100, nextKill - now, nextRestart - now, nextCut - now));
      }
      if (Date.now() - lastReport > 30_000) {
        lastReport = Date.now();
        o.log(
          `  ${Math.round((lastReport - started) / 1000)} s: ${JSON.stringify({ ...faults, ...proxy.stats })}`,
        );
      }
    }

    // Stop: clients finish their current lease; stragglers are killed (not counted as faults).
    stopping = true;
    for (const child of children.values()) child.send("stop", () => {});
    const stopDeadline = Date.now() + 10_000;
    while (children.size > 0 && Date.now() < stopDeadline) await sleep(100);
    for (const child of children.values()) child.kill("SIGKILL");
    while (children.size > 0) await sleep(50);
    // A departed waiter may still be granted until its wait (and re-poll grace) runs out; its lease then ends at TTL.
    await sleep(o.maxWaitMs + REPOLL_GRACE_MS + Math.max(o.ttlMs, o.sessionTtlMs) + 1_000);
    const endChecks: EndCheck[] = [];
    for (const { name } of o.locks) {
      const v = await inspect(server.url, name);
      endChecks.push({ name, held: v.held, waiters: v.waiters, lastToken: v.lastToken });
    }
    await server.stop();
    await proxy.close();
    await store.close();
    await proxyLog.close();
    await storeLog.close();
    await planLog.close();
    await new Promise((r) => clientErr.end(r));
    writeFileSync(join(o.outDir, "checks.json"), JSON.stringify({ restartChecks, endChecks }, null, 2));
  } catch (err) {
    // A failed run must not leave its server, proxy, store or clients running.
    stopping = true;
    for (const child of children.values()) child.kill("SIGKILL");
    await Promise.allSettled([server.stop(), proxy.close(), store.close(), planLog.close()]);
    throw err;
  }

  const report = checkDir(o.outDir);
  faults["dropped responses"] = proxy.stats.dropped;
  faults["requests failed by restarts (down or cut)"] = proxy.stats.upstreamErrors;
  faults["session cuts (reset)"] = proxy.stats.cuts;
  faults["session cuts (silent)"] = proxy.stats.silentCuts;
  faults["stalls past TTL"] = report.counts["stalls injected"] ?? 0;
  const result: ChaosResult = { ...report, seed: o.seed, outDir: o.outDir, faults };
  writeFileSync(join(o.outDir, "report.json"), JSON.stringify(result, null, 2));
  return result;
}

/** Re-runs the checks over a finished run's directory. */
export function checkDir(dir: string): CheckReport {
  const clientEvents: ClientEvent[] = [];
  for (const f of readdirSync(dir)) {
    if (/^client-\d+-\d+\.jsonl$/.test(f)) clientEvents.push(...readJsonl<ClientEvent>(join(dir, f)));
  }
  const { restartChecks, endChecks } = JSON.parse(readFileSync(join(dir, "checks.json"), "utf8")) as {
    restartChecks: RestartCheck[];
    endChecks: EndCheck[];
  };
  const proxyRecords = readJsonl<ProxyRecord>(join(dir, "proxy.jsonl"));
  return checkRun({
    exchanges: proxyRecords.filter((r): r is Exchange => r.kind === "exchange"),
    sessionLog: proxyRecords.filter((r): r is SessionRecord | PushRecord => r.kind !== "exchange"),
    storeAccesses: readJsonl<StoreAccess>(join(dir, "store.jsonl")),
    clientEvents,
    restartChecks,
    endChecks,
    plan: readJsonl<PlanRecord>(join(dir, "plan.jsonl")),
  });
}

async function inspect(
  url: string,
  name: string,
): Promise<{ held: boolean; waiters: number; lastToken: number }> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${url}/v1/locks/${name}`, { signal: AbortSignal.timeout(5_000) });
      if (res.ok) return (await res.json()) as { held: boolean; waiters: number; lastToken: number };
      if (attempt > 20) throw new Error(`GET ${name}: ${res.status}`);
    } catch (err) {
      if (attempt > 20) throw err;
    }
    await sleep(100);
  }
}

export function summarize(r: ChaosResult): string {
  const lines = [`seed ${r.seed}, logs in ${r.outDir}`, "faults injected:"];
  for (const [k, v] of Object.entries(r.faults)) lines.push(`  ${k}: ${v}`);
  lines.push("observed:");
  for (const [k, v] of Object.entries(r.counts).sort()) lines.push(`  ${k}: ${v}`);
  lines.push("free capacity while someone waited (liveness):");
  for (const [kind, k] of Object.entries(r.liveness.byKind)) {
    lines.push(
      `  ${kind}: ${k.waits} waits examined, ${k.intervals} intervals, longest ${k.longestMs} ms, total ${k.totalMs} ms`,
    );
  }
  const worst = r.liveness.longest[0];
  if (worst !== undefined) {
    lines.push(
      `  longest: ${worst.to - worst.from} ms on ${worst.name}, tolerance there ${worst.toleranceMs} ms`,
    );
  }
  lines.push(
    "freed on disconnect (a session lease held at a kill, cut or close → the next grant to a waiter):",
  );
  for (const [cause, d] of Object.entries(r.freedOnDisconnect)) {
    const times =
      d.measured === 0
        ? "none with a waiter"
        : `p50 ${d.p50Ms} ms, p90 ${d.p90Ms} ms, max ${d.maxMs} ms; ${d.beforeTtl} before the lease's own expiry`;
    lines.push(`  ${cause}: ${d.held} leases held, ${d.measured} with a waiter: ${times}`);
  }
  lines.push(`violations: ${r.violations.length}`);
  for (const v of r.violations.slice(0, 20)) lines.push(`  [${v.check}] ${v.detail}`);
  if (r.violations.length > 20) lines.push(`  ... ${r.violations.length - 20} more in report.json`);
  return lines.join("\n");
}

/** The flags that set a number of ChaosOptions, each with the option it sets. */
const NUMBER_FLAGS = {
  clients: "clients",
  raw: "rawClients",
  sessions: "sessionClients",
  "session-ttl": "sessionTtlMs",
  "cut-every": "cutEveryMs",
  "silent-share": "silentCutShare",
  giveup: "giveUpClients",
  ttl: "ttlMs",
} as const satisfies Record<string, keyof ChaosOptions>;
type NumberFlag = keyof typeof NUMBER_FLAGS;
const OTHER_FLAGS = ["minutes", "seconds", "seed", "locks", "out", "check", "client", "server"] as const;
type Flag = NumberFlag | (typeof OTHER_FLAGS)[number];

async function main(): Promise<void> {
  const flags: Flag[] = [...(Object.keys(NUMBER_FLAGS) as NumberFlag[]), ...OTHER_FLAGS];
  // Every flag takes a value.
  const options = Object.fromEntries(flags.map((f) => [f, { type: "string" }])) as Record<
    Flag,
    { type: "string" }
  >;
  const { values } = parseArgs({ options });
  if (values.check !== undefined) {
    const report = checkDir(values.check);
    console.log(JSON.stringify(report, null, 2));
    process.exit(report.violations.length === 0 ? 0 : 1);
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 1_000_000);
  const durationMs =
    values.seconds !== undefined ? Number(values.seconds) * 1_000 : Number(values.minutes ?? "1") * 60_000;
  const chaos: ChaosOptions = {
    ...DEFAULTS,
    seed,
    durationMs,
    locks: values.locks !== undefined ? parseLocks(values.locks) : DEFAULTS.locks,
    client: values.client === "raw" ? "raw" : DEFAULTS.client,
    server: values.server !== undefined ? parseLocalPath(values.server, "--server") : DEFAULTS.server,
    ...(values.out !== undefined ? { outDir: values.out } : {}),
    log: (line) => console.log(line),
  };
  for (const [flag, option] of Object.entries(NUMBER_FLAGS)) {
    const value = values[flag as NumberFlag];
    if (value !== undefined) chaos[option] = Number(value);
  }
  const result = await runChaos(chaos);
  console.log(summarize(result));
  process.exit(result.violations.length === 0 ? 0 : 1);
}

if (process.argv[1] === import.meta.filename) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(2);
  });
}
