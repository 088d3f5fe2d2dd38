/**
 * The client package as a user gets it: `npm pack` the client (which builds it), install the tarball into
 * a fresh project with no network, and use it from there against `wrangler dev` with auth on: `import`,
 * `require()`, `npx edgelock`. Everything runs on the repo's Node 22 (node_modules/.bin first on PATH).
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withApiKey } from "./helpers/api-key.ts";
import { REPO_ROOT } from "./helpers/build-client.ts";
import { rawRelease, rawStatus, uniqueName } from "./helpers/lock-http.ts";
import { type DevServer, startWranglerDev } from "./helpers/wrangler-dev.ts";

const exec = promisify(execFile);
const { key, vars } = withApiKey("package-test");
let dev: DevServer;
let project: string;
let env: NodeJS.ProcessEnv;

const ESM_EXAMPLE = `import { EdgelockClient } from "edgelock-client";
const client = new EdgelockClient({ url: process.env.EDGELOCK_URL, apiKey: process.env.EDGELOCK_TOKEN });
const token = await client.withLock(process.argv[2], (lease) => lease.token, { ttl: "10s" });
console.log(JSON.stringify({ node: process.version, token }));
`;

const CJS_EXAMPLE = `const { EdgelockClient, LockHeldError } = require("edgelock-client");
const client = new EdgelockClient({ url: process.env.EDGELOCK_URL, apiKey: process.env.EDGELOCK_TOKEN });
client
  .acquire(process.argv[2], { ttl: "10s" })
  .then(async (lease) => {
    const busy = await client.acquire(process.argv[2]).catch((e) => e instanceof LockHeldError);
    await lease.release();
    console.log(JSON.stringify({ token: lease.token, busy }));
  });
`;

// The callback only awaits the lease's signal: nothing else keeps Node's event loop alive.
const SIGNAL_ONLY_EXAMPLE = `import { EdgelockClient } from "edgelock-client";
const client = new EdgelockClient({ url: process.env.EDGELOCK_URL, apiKey: process.env.EDGELOCK_TOKEN });
try {
  await client.withLock(process.argv[2], (lease) => {
    console.log(lease.leaseId);
    return new Promise((resolve) => lease.signal.addEventListener("abort", resolve));
  }, { ttl: "900ms" });
} catch (error) {
  console.log(\`\${error.code} \${error.reason}\`);
}
`;

beforeAll(async () => {
  dev = await startWranglerDev({ vars });
  project = await mkdtemp(join(tmpdir(), "edgelock-consumer-"));
  env = {
    ...process.env,
    PATH: `${join(REPO_ROOT, "node_modules/.bin")}:${process.env.PATH ?? ""}`,
    EDGELOCK_URL: dev.url,
    EDGELOCK_TOKEN: key,
  };
  // `npm pack` runs the package's `prepare`, which builds dist/: the tarball must carry the code.
  const packed = await exec("npm", ["pack", "--pack-destination", project], {
    cwd: join(REPO_ROOT, "client"),
    env,
  });
  const tarball = packed.stdout.trim().split("\n").at(-1) ?? "";
  await writeFile(join(project, "package.json"), '{ "name": "consumer", "private": true }\n');
  // The client has no dependencies, so the install needs no registry.
  await exec("npm", ["install", "--offline", "--no-audit", "--no-fund", `./${tarball}`], {
    cwd: project,
    env,
  });
  await writeFile(join(project, "esm.mjs"), ESM_EXAMPLE);
  await writeFile(join(project, "cjs.cjs"), CJS_EXAMPLE);
  await writeFile(join(project, "signal-only.mjs"), SIGNAL_ONLY_EXAMPLE);
}, 120_000);
afterAll(async () => {
  await dev?.stop();
  if (project !== undefined) await rm(project, { recursive: true, force: true });
});

const node = (file: string, ...args: string[]) => exec("node", [file, ...args], { cwd: project, env });

describe("the packed client, installed into a fresh project", () => {
  it("ships the built code, the types and the CLI", async () => {
    const installed = join(project, "node_modules/edgelock-client");
    const pkg = JSON.parse(await readFile(join(installed, "package.json"), "utf8")) as { version: string };
    await expect(readFile(join(installed, "dist/index.js"), "utf8")).resolves.toContain("EdgelockClient");
    await expect(readFile(join(installed, "dist/index.d.ts"), "utf8")).resolves.toContain("EdgelockClient");
    const version = await exec("npx", ["--no-install", "edgelock", "--version"], { cwd: project, env });
    expect(version.stdout).toBe(`${pkg.version}\n`);
  });

  it("works with import", async () => {
    const name = uniqueName("pkg-esm");
    const { stdout } = await node("esm.mjs", name);
    const out = JSON.parse(stdout) as { node: string; token: number };
    expect(out.node).toMatch(/^v22\./);
    expect(out.token).toBe(1);
    expect(await status(name)).toMatchObject({ held: false, lastToken: 1 });
  });

  it("works with require()", async () => {
    const name = uniqueName("pkg-cjs");
    const { stdout } = await node("cjs.cjs", name);
    expect(JSON.parse(stdout)).toEqual({ token: 1, busy: true });
  });

  it("runs the CLI against the service with the key from the environment", async () => {
    const name = uniqueName("pkg-cli");
    const run = await exec(
      "npx",
      ["--no-install", "edgelock", "run", name, "--", "sh", "-c", "echo $EDGELOCK_FENCE"],
      {
        cwd: project,
        env,
      },
    );
    expect(run.stdout).toBe("1\n");
    const shown = await exec("npx", ["--no-install", "edgelock", "status", name], { cwd: project, env });
    expect(shown.stdout).toContain(`${name}: free (last token 1`);
  });

  it("keeps Node alive while withLock's callback only awaits the lease's signal", async () => {
    const name = uniqueName("pkg-signal");
    const child = spawn("node", ["signal-only.mjs", name], { cwd: project, env });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await expect.poll(() => stdout, { timeout: 20_000 }).toMatch(/\n/);
    const leaseId = stdout.trim();
    // Renewed at least once (its expiry moved): the process outlived one TTL with the lease held.
    const first = (await status(name)).holders[0]?.expiresAt ?? 0;
    await expect
      .poll(async () => (await status(name)).holders[0]?.expiresAt ?? 0, { timeout: 10_000 })
      .toBeGreaterThan(first);
    expect(child.exitCode).toBeNull();
    // Taken away behind its back: the signal fires, withLock rejects, and only then does Node exit.
    expect((await rawRelease(dev.url, name, leaseId, key)).status).toBe(200);
    expect(await exited).toBe(0);
    expect(stdout.trim().split("\n").at(-1)).toBe("not_held released");
  });
});

function status(name: string) {
  return rawStatus(dev.url, name, key);
}
