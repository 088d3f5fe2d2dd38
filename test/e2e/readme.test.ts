/**
 * The README's curl walkthrough, run exactly as written so that it cannot drift: every ```sh block of the
 * "Try it" section, with only the API key substituted, through bash against `wrangler dev` with auth
 * on. curl reaches the test's server through `connect-to` in a private .curlrc, so the text keeps its
 * `localhost:8787` and a developer's own `npm start` on that port is left alone.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { withApiKey } from "./helpers/api-key.ts";
import { REPO_ROOT } from "./helpers/build-client.ts";
import { rawStatus } from "./helpers/lock-http.ts";
import { type DevServer, startWranglerDev } from "./helpers/wrangler-dev.ts";

const exec = promisify(execFile);
const KEY_PLACEHOLDER = "KEY=elk_…";
const { key, vars } = withApiKey("readme");
let dev: DevServer;
let curlHome: string;

beforeAll(async () => {
  dev = await startWranglerDev({ vars });
  curlHome = await mkdtemp(join(tmpdir(), "edgelock-readme-"));
  const port = new URL(dev.url).port;
  await writeFile(join(curlHome, ".curlrc"), `connect-to = "localhost:8787:127.0.0.1:${port}"\n`);
});
afterAll(async () => {
  await dev?.stop();
  if (curlHome !== undefined) await rm(curlHome, { recursive: true, force: true });
});

/** The ```sh blocks of one `## ` section of a Markdown text, in order. */
function shellBlocks(markdown: string, section: string): string[] {
  const start = markdown.indexOf(`\n## ${section}\n`);
  if (start === -1) throw new Error(`README has no "## ${section}" section`);
  const end = markdown.indexOf("\n## ", start + 1);
  const body = markdown.slice(start, end === -1 ? undefined : end);
  return [...body.matchAll(/\n```sh\n([\s\S]*?)\n```/g)].map((m) => m[1] ?? "");
}

it("the README's walkthrough works when pasted, with only the key filled in", async () => {
  const readme = await readFile(join(REPO_ROOT, "README.md"), "utf8");
  const blocks = shellBlocks(readme, "Try it");
  expect(blocks.length).toBeGreaterThan(0);
  const script = blocks.join("\n");
  expect(script.split(KEY_PLACEHOLDER)).toHaveLength(2);
  const pasted = script.replace(KEY_PLACEHOLDER, `KEY=${key}`);
  // -e: every command must succeed; -u: no variable is used before the text sets it.
  const { stdout } = await exec("bash", ["-eu", "-c", pasted], {
    cwd: curlHome,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", CURL_HOME: curlHome, HOME: curlHome, TMPDIR: curlHome },
    timeout: 60_000,
  });
  const lines = stdout.trim().split("\n");
  expect(lines).toHaveLength(5);
  const [acquired, renewed, released, waited, shown] = lines.map((line) => JSON.parse(line));
  expect(acquired).toMatchObject({ name: "nightly-report", owner: "me", token: 1, ttlMs: 30_000 });
  expect(acquired.leaseId).toMatch(/^[A-Za-z0-9_-]{16,128}$/);
  expect(renewed).toMatchObject({ leaseId: acquired.leaseId, token: 1 });
  expect(released).toEqual({ released: true, holdCount: 0 });
  // The waiter got the lock the moment it was released.
  expect(waited).toMatchObject({ name: "nightly-report", token: 2 });
  expect(shown).toMatchObject({ name: "nightly-report", held: true, lastToken: 2 });
  expect(await rawStatus(dev.url, "nightly-report", key)).toMatchObject({ lastToken: 2 });
});
