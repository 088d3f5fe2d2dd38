/**
 * Before/after of one change, measured in one run:
 * `npm run bench:ab -- <rev-a> <rev-b> [--blocks N] [--contended P]`.
 * Checks each git revision out into a temporary worktree, starts both on the direct local path (what
 * `npm start` serves, auth off, request log off), warms each, then times the same sequential uncontended
 * acquire + release pairs against A and B in interleaved blocks (ABBA order), so both see the same noise on
 * this shared machine. With `--contended P`, each block instead runs P clients at once on one lock, each
 * acquiring with a wait and releasing, so that every grant is a hand-off and every other acquire queues: the
 * request mix of the contended scenario (the contended counter's clients are processes; these share one).
 * Prints, per revision, the time and workerd's CPU (user + system, from /proc) per
 * request, and B ÷ A. CPU per request is the steadier figure: the contended scenarios are CPU-bound here.
 * Both revisions run with this checkout's node_modules (and its launcher), so compare revisions with the same
 * dependencies. Linux only (reads /proc). Prints figures; asserts nothing.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { postJson } from "../bench/http.mjs";
import { type LocalServer, ROOT_DIR, startLocalServer } from "./local-server.ts";

const PAIRS_PER_BLOCK = 250;
const WARMUP_PAIRS = 300;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { blocks: { type: "string", default: "20" }, contended: { type: "string", default: "0" } },
});
const [revA, revB] = positionals;
if (revA === undefined || revB === undefined) {
  console.error("usage: npm run bench:ab -- <rev-a> <rev-b> [--blocks N] [--contended P]");
  process.exit(64);
}
const blocks = Number(values.blocks);
const contenders = Number(values.contended);
/** Each contending client's pairs per block, so that a block has (about) PAIRS_PER_BLOCK in all. */
const share = contenders === 0 ? PAIRS_PER_BLOCK : Math.ceil(PAIRS_PER_BLOCK / contenders);
const pairsPerBlock = contenders === 0 ? PAIRS_PER_BLOCK : contenders * share;

/** The bench's own HTTP client (bench/http.mjs: Node's `http`, kept alive), so the client costs what it does there. */
async function post(url: string, body: unknown): Promise<{ leaseId: string }> {
  const { status, json } = await postJson(url, body);
  if (status !== 200) throw new Error(`${url}: ${status} ${JSON.stringify(json)}`);
  return json as { leaseId: string };
}

async function pair(server: LocalServer, name = "ab", waitMs = 0): Promise<void> {
  const { leaseId } = await post(`${server.url}/v1/locks/${name}/acquire`, { ttlMs: 10_000, waitMs });
  await post(`${server.url}/v1/locks/${name}/release`, { leaseId });
}

/** `pairsPerBlock` pairs in all: one after another, or shared by `contenders` clients on one lock. */
async function runBlock(server: LocalServer): Promise<void> {
  if (contenders === 0) {
    for (let i = 0; i < PAIRS_PER_BLOCK; i++) await pair(server);
    return;
  }
  const client = async () => {
    for (let i = 0; i < share; i++) await pair(server, "ab-contended", 20_000);
  };
  await Promise.all(Array.from({ length: contenders }, client));
}

const worktrees: string[] = [];
const servers: LocalServer[] = [];
try {
  for (const rev of [revA, revB]) {
    const dir = mkdtempSync(join(tmpdir(), "edgelock-ab-"));
    execFileSync("git", ["worktree", "add", "--detach", dir, rev], { cwd: ROOT_DIR, stdio: "ignore" });
    worktrees.push(dir);
    symlinkSync(join(ROOT_DIR, "node_modules"), join(dir, "node_modules"));
    servers.push(
      await startLocalServer({
        path: "direct",
        config: join(dir, "wrangler.toml"),
        vars: { EDGELOCK_INSECURE_NO_AUTH: "true", EDGELOCK_REQUEST_LOG: "off" },
      }),
    );
  }
  const [a, b] = servers as [LocalServer, LocalServer];
  for (const s of servers) for (let i = 0; i < WARMUP_PAIRS; i++) await pair(s);
  const total = new Map(servers.map((s) => [s, { cpuMs: 0, wallMs: 0, requests: 0 }]));
  for (let block = 0; block < blocks; block++) {
    for (const s of block % 2 === 0 ? [a, b] : [b, a]) {
      const cpu = s.cpuMs();
      const started = performance.now();
      await runBlock(s);
      const t = total.get(s);
      if (t === undefined) throw new Error("unknown server");
      t.wallMs += performance.now() - started;
      t.cpuMs += s.cpuMs() - cpu;
      t.requests += 2 * pairsPerBlock;
    }
  }
  const [ta, tb] = servers.map((s) => total.get(s)) as [
    { cpuMs: number; wallMs: number; requests: number },
    { cpuMs: number; wallMs: number; requests: number },
  ];
  const fmt = (n: number) => n.toFixed(3);
  console.log(
    `${blocks} blocks of ${pairsPerBlock} acquire + release pairs each${contenders === 0 ? "" : `, ${contenders} clients on one lock`}, interleaved, direct path`,
  );
  for (const [label, rev, t] of [
    ["A", revA, ta],
    ["B", revB, tb],
  ] as const) {
    console.log(
      `${label} ${rev}: ${fmt(t.wallMs / t.requests)} ms per request, ${fmt(t.cpuMs / t.requests)} ms workerd CPU per request`,
    );
  }
  console.log(`B ÷ A: time ${fmt(tb.wallMs / ta.wallMs)}, workerd CPU ${fmt(tb.cpuMs / ta.cpuMs)}`);
} finally {
  for (const s of servers) await s.stop();
  for (const dir of worktrees) {
    execFileSync("git", ["worktree", "remove", "--force", dir], { cwd: ROOT_DIR, stdio: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  }
}
