/**
 * The live page in a real browser: Debian's chromium, driven by playwright-core, against `wrangler dev` with
 * auth on. The key is typed into the page; then, with no reload, the page shows a holder appear and its
 * countdown run, a waiter appear in the queue, and the release arrive (the waiter becomes the holder, the
 * history says `released`). Screenshots are kept in test-results/ (git-ignored) as the test's artifacts.
 * Every step waits for what the page shows, never for a time.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { uniqueName } from "./helpers/lock-http.ts";
import { type DevServer, serverPath, startWranglerDev } from "./helpers/wrangler-dev.ts";

const CHROMIUM = "/usr/bin/chromium";
const KEY = "elk_e2e_live_page_0123456789abcdefghijklmnop";
const ARTIFACTS = resolve(import.meta.dirname, "../../test-results");

let server: DevServer;
let context: BrowserContext;
let profile: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it when absent)`);
  }
  const sha256 = createHash("sha256").update(KEY).digest("hex");
  server = await startWranglerDev({
    vars: {
      EDGELOCK_INSECURE_NO_AUTH: "false",
      EDGELOCK_KEYS: JSON.stringify([{ name: "live-page", sha256, role: "admin", prefixes: ["ui:"] }]),
    },
  });
  profile = mkdtempSync(join(tmpdir(), "edgelock-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
    // A phone's width: the page must work there.
    viewport: { width: 390, height: 844 },
  });
});

afterAll(async () => {
  await context?.close();
  await server?.stop();
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
});

async function api(path: string, body?: unknown): Promise<{ status: number; json: Record<string, never> }> {
  const res = await fetch(`${server.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, never> };
}

async function typeKey(page: Page): Promise<void> {
  await page.fill("#key", KEY);
  await page.click("#key-form button[type=submit]");
}

it("shows a holder and its countdown, a waiter, and the release, live and without a reload", async () => {
  const name = `ui:${uniqueName("live")}`;
  const page = context.pages()[0] ?? (await context.newPage());
  const failures: string[] = [];
  page.on("pageerror", (err) => failures.push(String(err)));
  page.on("console", (m) => m.type() === "error" && failures.push(m.text()));

  await page.goto(`${server.url}/ui/locks/${name}`);
  await typeKey(page);
  await page.waitForSelector("#status.live");
  expect(page.url()).not.toContain(KEY);
  expect(await page.evaluate(() => sessionStorage.getItem("edgelock.key"))).toBe(KEY);
  // Marks this document: a reload would lose it.
  await page.evaluate(() => Object.assign(window, { sameDocument: true }));

  const holder = await api(`/v1/locks/${name}/acquire`, { ttlMs: 60_000, owner: "holder-a" });
  expect(holder.status).toBe(200);
  const row = await page.waitForSelector('#holders tr[data-token="1"]');
  expect(await row.textContent()).toContain("holder-a");
  const shown = await page.textContent("#holders .countdown");
  await page.waitForFunction((before) => {
    const now = document.querySelector("#holders .countdown")?.textContent;
    return now !== before && now !== "";
  }, shown);

  const waiting = api(`/v1/locks/${name}/acquire`, { ttlMs: 60_000, owner: "waiter-b", waitMs: 20_000 });
  const queued = await page.waitForSelector('#queue tr[data-waiter="1"]');
  expect(await queued.textContent()).toContain("waiter-b");

  await api(`/v1/locks/${name}/release`, { leaseId: holder.json.leaseId });
  expect((await waiting).json).toMatchObject({ owner: "waiter-b", token: 2 });
  await page.waitForSelector('#holders tr[data-token="2"]');
  await page.waitForSelector('#events li[data-kind="released"]');
  await page.waitForSelector('#timeline rect[data-token="1"]');
  expect(await page.$("#holders tr[data-token='1']")).toBeNull();
  expect(await page.$("#queue tr[data-waiter]")).toBeNull();
  expect(await page.evaluate(() => (window as { sameDocument?: boolean }).sameDocument)).toBe(true);

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `live-page-${serverPath()}.png`), fullPage: true });

  // The directory page lists it; the key is still in this tab's sessionStorage.
  await page.goto(`${server.url}/ui/`);
  await page.waitForSelector(`#locks tr[data-lock="${name}"]`);
  await page.screenshot({ path: join(ARTIFACTS, `directory-page-${serverPath()}.png`), fullPage: true });
  expect(failures).toEqual([]);
});

it("says plainly when the key is wrong", async () => {
  const page = await context.newPage();
  await page.goto(`${server.url}/ui/locks/ui:${uniqueName("wrong-key")}`);
  await page.fill("#key", "elk_not_a_known_key_000000000000000000000000");
  await page.click("#key-form button[type=submit]");
  await page.waitForSelector("#status.error");
  expect(await page.textContent("#status")).toContain("401");
  await page.close();
});
