/**
 * Sessions from Node, against a local server with authentication on: the client library over Node's own
 * WebSocket (the key offered as a subprotocol), and `edgelock run` killed with SIGKILL while its command
 * runs. Then the lock must go to the next waiter within seconds, not at the lease's 60 s TTL, and not while
 * anything of the command's process tree still runs: the command's heartbeats must stop before the grant.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AuthError, EdgelockClient, type Lease } from "../../client/src/index.ts";
import { withApiKey } from "./helpers/api-key.ts";
import { buildClient, CLI, REPO_ROOT } from "./helpers/build-client.ts";
import { rawStatus, uniqueName } from "./helpers/lock-http.ts";
import { groupMembers } from "./helpers/processes.ts";
import { useServer } from "./helpers/wrangler-dev.ts";

const { key, vars } = withApiKey("session-e2e", "admin");
const server = useServer({ vars });
let scratch: string;
let client: EdgelockClient;

beforeAll(async () => {
  await buildClient();
  scratch = await mkdtemp(join(tmpdir(), "edgelock-session-"));
  client = new EdgelockClient({ url: server.url, apiKey: key, owner: "e2e-session" });
});
// A failed test must not leave its command running: kill what a run started, whatever happened.
const groups: number[] = [];
afterEach(() => {
  for (const pgid of groups.splice(0)) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // Gone already, as it should be.
    }
  }
});
afterAll(async () => {
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

describe("the client's sessions from Node", () => {
  it("holds a lock through a session and watches it, with the key as a subprotocol", async () => {
    const name = uniqueName("node-session");
    const watch = client.watch(name);
    expect((await watch.next()).value).toMatchObject({ held: false });
    await using session = client.session(name);
    const lease = await session.acquire({ ttl: "10s" });
    expect((await watch.next()).value).toMatchObject({ held: true, holders: [{ owner: "e2e-session" }] });
    await lease.release();
    expect((await watch.next()).value).toMatchObject({ held: false, lastToken: lease.token });
    await watch.return();
  });

  it("turns a refused key into an AuthError, not a network error", async () => {
    const wrong = new EdgelockClient({ url: server.url, apiKey: "elk_not_a_known_key_000000000000" });
    const error = await wrong
      .session(uniqueName("wrong-key"))
      .acquire()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ code: "unauthorized", status: 401 });
  });
});

describe("edgelock run killed with SIGKILL", () => {
  it("frees the lock for an HTTP waiter within 3 s, after its command's whole tree is gone", async () => {
    const run = await startRun(uniqueName("run-kill-http"));
    const waiting = fetch(`${server.url}/v1/locks/${run.name}/acquire`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ ttlMs: 5_000, waitMs: 20_000 }),
    });
    await untilWaiting(run.name);
    const killedAt = await killed(run.cli);
    const res = await waiting;
    const grantedAfterMs = Date.now() - killedAt;
    expect(res.status).toBe(200);
    const granted = (await res.json()) as { token: number; expiresAt: number; ttlMs: number };
    await expectNothingLeft(run, granted);
    expect(grantedAfterMs).toBeLessThan(3_000);
  });

  it("frees it for a session waiter too", async () => {
    const run = await startRun(uniqueName("run-kill-session"));
    await using session = client.session(run.name);
    const waiting = session.acquire({ ttl: "5s", wait: "20s" });
    await untilWaiting(run.name);
    const killedAt = await killed(run.cli);
    const lease = await waiting;
    const grantedAfterMs = Date.now() - killedAt;
    await expectNothingLeft(run, lease);
    expect(grantedAfterMs).toBeLessThan(3_000);
    await lease.release();
  });
});

interface Run {
  name: string;
  cli: ChildProcess;
  dir: string;
  /** The command's process group (its pid). */
  pgid: number;
  /** The fencing token the command was given. */
  fence: number;
}

/**
 * Starts `edgelock run` (through a session, its default) with a 60 s TTL and a command that starts a
 * background child and appends a heartbeat (epoch ms) every 20 ms; resolves once the command runs.
 */
async function startRun(name: string): Promise<Run> {
  const dir = join(scratch, name);
  await mkdir(dir);
  const command = [
    `echo "$$ $EDGELOCK_FENCE" > ${dir}/started`,
    "sleep 600 &",
    `while true; do date +%s%3N >> ${dir}/heartbeat; sleep 0.02; done`,
  ].join("\n");
  const cli = spawn(process.execPath, [CLI, "run", name, "--ttl", "60s", "--", "sh", "-c", command], {
    cwd: REPO_ROOT,
    stdio: "ignore",
    env: { ...process.env, EDGELOCK_URL: server.url, EDGELOCK_TOKEN: key },
  });
  const started = await untilFile(join(dir, "started"), cli);
  const [pgid, fence] = started.trim().split(" ").map(Number);
  if (pgid === undefined || !(pgid > 1)) throw new Error(`no process group id in ${JSON.stringify(started)}`);
  groups.push(pgid);
  expect(groupMembers(pgid).length).toBeGreaterThanOrEqual(2);
  return { name, cli, dir, pgid, fence: fence ?? 0 };
}

async function untilFile(path: string, cli: ChildProcess): Promise<string> {
  for (let i = 0; i < 400; i++) {
    const text = await readFile(path, "utf8").catch(() => "");
    if (text.endsWith("\n")) return text;
    if (cli.exitCode !== null)
      throw new Error(`edgelock run exited (${cli.exitCode}) before its command ran`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${path} never appeared`);
}

async function untilWaiting(name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await rawStatus(server.url, name, key)).waiters === 1) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nobody ever waited for ${name}`);
}

/** SIGKILLs the CLI; resolves with when, once it is dead. */
function killed(cli: ChildProcess): Promise<number> {
  return new Promise((done) => {
    const at = Date.now();
    cli.once("exit", () => done(at));
    cli.kill("SIGKILL");
  });
}

/**
 * Nothing of the command's tree runs now, and its last heartbeat came before the next holder's grant (the
 * lock object's clock is this machine's): the lock was never free while the command ran.
 */
async function expectNothingLeft(
  run: Run,
  granted: Pick<Lease, "token" | "expiresAt" | "ttlMs">,
): Promise<void> {
  expect(granted.token).toBe(run.fence + 1);
  expect(groupMembers(run.pgid)).toEqual([]);
  const beats = (await readFile(join(run.dir, "heartbeat"), "utf8")).trim().split("\n").map(Number);
  const grantedAt = granted.expiresAt - granted.ttlMs;
  expect(beats.at(-1)).toBeLessThan(grantedAt);
}
