/**
 * Runs the Python client's unittest suite (client-python/tests) against a local server started here, so the
 * Python tests share the e2e suite's one server launcher. Python's own tests hold every assertion; this file
 * only checks that they ran against the server and passed, and shows their output when they did not.
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { NO_AUTH } from "./helpers/lock-http.ts";
import { type DevServer, startWranglerDev } from "./helpers/wrangler-dev.ts";

const ROOT = resolve(import.meta.dirname, "../..");
let dev: DevServer;

beforeAll(async () => {
  dev = await startWranglerDev({ vars: NO_AUTH });
});
afterAll(async () => {
  await dev?.stop();
});

function runPython(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn("python3", args, { cwd: ROOT, env: { ...process.env, ...env } });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.once("error", fail);
    child.once("close", (code) => done({ code, output }));
  });
}

it("passes the Python client's unittest suite against a local server", { timeout: 240_000 }, async () => {
  const { code, output } = await runPython(
    ["-m", "unittest", "discover", "-s", "client-python/tests", "-v"],
    {
      EDGELOCK_URL: dev.url,
      EDGELOCK_TOKEN: "",
    },
  );
  expect(code, output).toBe(0);
  // The integration tests skip without EDGELOCK_URL; here they must have run.
  expect(output, output).not.toContain("EDGELOCK_URL is not set");
  expect(output).toMatch(/^Ran \d+ tests? in /m);
});
