import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { useServer } from "./helpers/wrangler-dev.ts";

const run = promisify(execFile);
const WORKER = resolve(import.meta.dirname, "helpers/counter-worker.mjs");
const server = useServer();

it("keeps a shared counter exact: 3 OS processes × 300 locked increments end at 900", async () => {
  const file = join(mkdtempSync(join(tmpdir(), "edgelock-counter-")), "counter");
  writeFileSync(file, "0");
  const procs = [1, 2, 3].map((id) =>
    run(process.execPath, [WORKER, server.url, "counter", file, "300", String(id)], { timeout: 170_000 }),
  );
  const outputs = await Promise.all(procs);
  expect(readFileSync(file, "utf8")).toBe("900");
  const tokens = outputs.flatMap((o) => (JSON.parse(o.stdout) as { tokens: number[] }).tokens);
  // Every critical section had its own fencing token: 900 distinct grants, 1..900.
  expect(tokens.sort((a, b) => a - b)).toEqual(Array.from({ length: 900 }, (_, i) => i + 1));
});
