import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { useServer } from "./helpers/wrangler-dev.ts";

const run = promisify(execFile);
const WORKER = resolve(import.meta.dirname, "helpers/semaphore-worker.mjs");
const server = useServer();

/** The most spans open at any instant; a leave at the same instant as an enter counts first. */
function peakOverlap(spans: [number, number][]): number {
  const events = spans.flatMap(([enter, leave]) => [
    [enter, 1],
    [leave, -1],
  ]);
  events.sort((a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number));
  let inside = 0;
  let peak = 0;
  for (const [, delta] of events) {
    inside += delta as number;
    peak = Math.max(peak, inside);
  }
  return peak;
}

it("never has more than 2 of 4 OS processes inside a semaphore of limit 2", async () => {
  const outputs = await Promise.all(
    [1, 2, 3, 4].map((id) =>
      run(process.execPath, [WORKER, server.url, "sem", "2", "40", String(id)], { timeout: 170_000 }),
    ),
  );
  const spans = outputs.flatMap((o) => JSON.parse(o.stdout) as [number, number][]);
  expect(spans).toHaveLength(160);
  const peak = peakOverlap(spans);
  expect(peak).toBeLessThanOrEqual(2);
  // The semaphore was really shared: two processes were inside together at some point.
  expect(peak).toBe(2);
});
