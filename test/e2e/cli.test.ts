/**
 * The `edgelock` CLI as a real process against `wrangler dev`: mutual exclusion of `run`, exit codes per
 * error class, the script commands, and the command's whole process group stopped when its lease is lost.
 */
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_CODES } from "../../client/src/cli.ts";
import { EdgelockClient } from "../../client/src/index.ts";
import { buildClient, REPO_ROOT } from "./helpers/build-client.ts";
import { runCli, startCli } from "./helpers/cli.ts";
import { NO_AUTH, rawRelease, rawStatus, uniqueName } from "./helpers/lock-http.ts";
import { type DevServer, freePort, startWranglerDev } from "./helpers/wrangler-dev.ts";

let dev: DevServer;
let scratch: string;
let env: Record<string, string>;
beforeAll(async () => {
  await buildClient();
  dev = await startWranglerDev({ vars: NO_AUTH });
  scratch = await mkdtemp(join(tmpdir(), "edgelock-cli-"));
  env = { EDGELOCK_URL: dev.url };
});
afterAll(async () => {
  await dev?.stop();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

describe("edgelock CLI", () => {
  it("never lets two `run` commands on one lock overlap", async () => {
    const name = uniqueName("cli-mutex");
    const log = join(scratch, `${name}.log`);
    await writeFile(log, "");
    // Each command appends enter/leave with a nanosecond timestamp around a sleep.
    const script = (id: string) =>
      `echo "enter ${id} $(date +%s%N)" >> ${log}; sleep 0.7; echo "leave ${id} $(date +%s%N)" >> ${log}`;
    const runs = ["a", "b", "c"].map((id) =>
      runCli(["run", name, "--ttl", "2s", "--wait", "30s", "--", "sh", "-c", script(id)], env),
    );
    const results = await Promise.all(runs);
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    const events = (await readFile(log, "utf8"))
      .trim()
      .split("\n")
      .map((line) => {
        const [kind, id, ns] = line.split(" ");
        return { kind, id, at: BigInt(ns ?? "0") };
      });
    expect(events).toHaveLength(6);
    for (let i = 0; i < events.length; i += 2) {
      const enter = events[i];
      const leave = events[i + 1];
      expect(enter).toMatchObject({ kind: "enter" });
      expect(leave).toMatchObject({ kind: "leave", id: enter?.id });
      const next = events[i + 2];
      if (next !== undefined && leave !== undefined) expect(next.at >= leave.at).toBe(true);
    }
    expect(new Set(events.map((e) => e.id))).toEqual(new Set(["a", "b", "c"]));
  });

  it("passes the command's exit code through and releases the lock", async () => {
    const name = uniqueName("cli-code");
    const result = await runCli(["run", name, "--", "sh", "-c", "exit 7"], env);
    expect(result.code).toBe(7);
    expect((await rawStatus(dev.url, name)).held).toBe(false);
  });

  it("exits with the held code, and one line on stderr, when the lock is taken and --wait is 0", async () => {
    const name = uniqueName("cli-held");
    const client = new EdgelockClient({ url: dev.url, owner: "blocker" });
    const lease = await client.acquire(name, { ttl: "30s" });
    const result = await runCli(["run", name, "--wait", "0", "--", "sh", "-c", "echo ran"], env);
    expect(result.code).toBe(EXIT_CODES.held);
    expect(result.stdout).not.toContain("ran");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("held by blocker");
    expect(result.stderr.trim()).toMatch(/\[lock_held\]$/);
    await lease.release();
  });

  it("exits with the invalid code for bad input, before contacting anyone", async () => {
    const unreachable = { EDGELOCK_URL: `http://127.0.0.1:${await freePort()}` };
    const badTtl = await runCli(["run", "x", "--ttl", "soon", "--", "true"], unreachable);
    expect(badTtl.code).toBe(EXIT_CODES.invalid);
    const badName = await runCli(["status", "no spaces allowed"], unreachable);
    expect(badName.code).toBe(EXIT_CODES.invalid);
    const noCommand = await runCli(["run", "x"], unreachable);
    expect(noCommand.code).toBe(EXIT_CODES.invalid);
    const unknownFlag = await runCli(["status", "x", "--frobnicate"], unreachable);
    expect(unknownFlag.code).toBe(EXIT_CODES.invalid);
    // A refusal by the server maps to the same code.
    const serverRefused = await runCli(["acquire", uniqueName("cli-invalid"), "--ttl", "5ms"], env);
    expect(serverRefused.code).toBe(EXIT_CODES.invalid);
    expect(serverRefused.stderr).toContain("invalid_ttl");
  });

  it("exits with the unreachable code when nothing listens at the URL", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const result = await runCli(["status", "x"], { EDGELOCK_URL: url });
    expect(result.code).toBe(EXIT_CODES.unreachable);
    expect(result.stderr).toContain("could not reach");
  });

  it("acquire, status, renew and release work for scripts, in JSON and as lines", async () => {
    const name = uniqueName("cli-script");
    const acquired = await runCli(["acquire", name, "--ttl", "30s", "--owner", "script", "--json"], env);
    expect(acquired.code).toBe(0);
    const lease = JSON.parse(acquired.stdout) as { leaseId: string; token: number };
    expect(lease.token).toBeGreaterThan(0);

    const status = await runCli(["status", name], env);
    expect(status.stdout).toContain(`held by script (token ${lease.token}`);

    const renewed = await runCli(["renew", name, "--lease-id", lease.leaseId, "--ttl", "1m", "--json"], env);
    expect(JSON.parse(renewed.stdout)).toMatchObject({ token: lease.token, ttlMs: 60_000 });

    const released = await runCli(["release", name, "--lease-id", lease.leaseId], env);
    expect(released).toMatchObject({ code: 0, stdout: `released ${name}\n` });
    expect((await rawStatus(dev.url, name)).held).toBe(false);

    const lateRenew = await runCli(["renew", name, "--lease-id", lease.leaseId], env);
    expect(lateRenew.code).toBe(EXIT_CODES.lost);
    expect(lateRenew.stderr).toContain("not_held");
  });

  it("SIGTERMs a command that outlives its lease and exits with the lost code", async () => {
    const name = uniqueName("cli-lost");
    const leaseId = `cli-lost-${Date.now()}-0123456789`;
    const marker = join(scratch, `${name}.marker`);
    await writeFile(marker, "");
    const command = `trap 'echo term >> ${marker}; exit 143' TERM; echo started >> ${marker}; while true; do sleep 0.1; done`;
    const { done } = startCli(
      ["run", name, "--ttl", "1s", "--lease-id", leaseId, "--", "sh", "-c", command],
      env,
    );
    await expect.poll(() => readFile(marker, "utf8"), { timeout: 20_000 }).toContain("started");
    // Take the lease away on the server, as an operator or a split-brain peer would; the next renewal
    // (a third of the TTL before the deadline) learns of it.
    expect((await rawRelease(dev.url, name, leaseId)).status).toBe(200);
    const result = await done;
    expect(result.code).toBe(EXIT_CODES.lost);
    expect(result.stderr).toContain(`lost the lock ${name}`);
    expect(result.stderr).toContain("[not_held]");
    expect(await readFile(marker, "utf8")).toBe("started\nterm\n");
  });

  it("prints its version", async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, "client/package.json"), "utf8")) as {
      version: string;
    };
    expect(await runCli(["--version"], env)).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
  });

  it("leaves nothing of the command's tree running after a force-release, even what ignores SIGTERM", async () => {
    const name = uniqueName("cli-tree");
    const dir = join(scratch, name);
    await mkdir(dir);
    // The command ignores SIGTERM (so do its children: an ignored signal stays ignored across exec) and
    // starts a grandchild; it records its own pid (the group's id), the grandchild's, and its environment.
    const grandchild = `echo $$ > ${dir}/grandchild; while true; do sleep 1; done`;
    const command = [
      "trap '' TERM",
      `echo "$EDGELOCK_LOCK|$EDGELOCK_FENCE|$EDGELOCK_LEASE_ID|\${EDGELOCK_TOKEN-unset}" > ${dir}/env`,
      `sh -c '${grandchild}' &`,
      `echo $$ > ${dir}/leader`,
      "wait",
    ].join("\n");
    const { done } = startCli(["run", name, "--ttl", "900ms", "--", "sh", "-c", command], {
      ...env,
      EDGELOCK_TOKEN: "elk_secret_that_must_not_leak",
    });
    await expect
      .poll(() => readFile(join(dir, "grandchild"), "utf8").catch(() => ""), { timeout: 20_000 })
      .not.toBe("");
    const pgid = Number(await readFile(join(dir, "leader"), "utf8"));
    const grandchildPid = Number(await readFile(join(dir, "grandchild"), "utf8"));
    expect(groupMembers(pgid)).toContain(grandchildPid);
    const [lock, fence, leaseId, token] = (await readFile(join(dir, "env"), "utf8")).trim().split("|");
    const view = await rawStatus(dev.url, name);
    expect({ lock, fence: Number(fence), token }).toEqual({
      lock: name,
      fence: view.lastToken,
      token: "unset",
    });
    expect(leaseId).toMatch(/^[A-Za-z0-9_-]{16,128}$/);

    const forced = await fetch(`${dev.url}/v1/locks/${name}/force-release`, { method: "POST" });
    expect(forced.status).toBe(200);
    // Lost at the next renewal (a third of the TTL), SIGTERM ignored, SIGKILL 10 s later: well within 12 s.
    await expect.poll(() => groupMembers(pgid), { timeout: 12_000, interval: 250 }).toEqual([]);
    const result = await done;
    expect(result.code).toBe(EXIT_CODES.lost);
    expect(result.stderr).toContain(`lost the lock ${name}`);
    expect(groupMembers(pgid)).toEqual([]);
  });

  it("stops what the command left running in the background before it releases the lock", async () => {
    const name = uniqueName("cli-leftover");
    const pidFile = join(scratch, `${name}.pid`);
    const result = await runCli(
      ["run", name, "--", "sh", "-c", `sleep 60 & echo $! > ${pidFile}; echo $$ >> ${pidFile}`],
      env,
    );
    expect(result.code).toBe(0);
    const [sleeper, pgid] = (await readFile(pidFile, "utf8")).trim().split("\n").map(Number);
    expect(groupMembers(pgid ?? 0)).toEqual([]);
    expect(isRunning(sleeper ?? 0)).toBe(false);
    expect((await rawStatus(dev.url, name)).held).toBe(false);
  });

  it("holds several locks for one command, naming them and their tokens in the order given", async () => {
    const [b, a] = [uniqueName("cli-multi-b"), uniqueName("cli-multi-a")];
    const out = join(scratch, `${a}.env`);
    const result = await runCli(
      ["run", b, a, "--ttl", "5s", "--", "sh", "-c", `echo "$EDGELOCK_LOCK|$EDGELOCK_FENCE" > ${out}`],
      env,
    );
    expect(result.code).toBe(0);
    const [locks, fences] = (await readFile(out, "utf8")).trim().split("|");
    expect(locks).toBe(`${b} ${a}`);
    expect(fences).toBe("1 1");
    expect((await rawStatus(dev.url, a)).held).toBe(false);
    expect((await rawStatus(dev.url, b)).held).toBe(false);
  });
});

/** Live (not zombie) processes of process group `pgid`, from /proc. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields !== null && Number(fields[2]) === pgid && fields[0] !== "Z") members.push(Number(entry));
  }
  return members;
}

function isRunning(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== null && fields[0] !== "Z";
}

/** /proc/PID/stat after the command name: state, ppid, pgrp, ...; null when the process is gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}
