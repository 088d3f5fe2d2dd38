/**
 * The live pages, rendered by the Worker: `/ui/` (the directory of active locks, searchable by prefix) and
 * `/ui/locks/{name}` (one lock: holders with a countdown, the queue, recent events, a timeline of holds).
 * The server renders the page shell; the data comes from the API, read in the browser with the key typed
 * into the page (kept in sessionStorage, sent as a header or a WebSocket subprotocol, never in a URL). No
 * build step and no external assets: the style and script are inline (ui/style.ts, ui/script.ts), allowed
 * by a per-response nonce in a Content-Security-Policy that allows nothing else.
 */
import { html, raw } from "hono/html";
import { SESSION_PING_MS, SESSION_PROTOCOL } from "../../client/src/protocol.ts";
import { BEARER_SUBPROTOCOL } from "../auth.ts";
import { PAGE_SCRIPT } from "./script.ts";
import { PAGE_STYLE } from "./style.ts";

export type Page = { kind: "directory" } | { kind: "lock"; name: string };

/** The settings the page's script reads, from the one definition of each (protocol.ts, auth.ts). */
const CONFIG = JSON.stringify({
  protocol: SESSION_PROTOCOL,
  bearer: BEARER_SUBPROTOCOL,
  pingMs: SESSION_PING_MS,
});

export async function renderPage(page: Page, nonce: string): Promise<string> {
  const title = page.kind === "lock" ? `${page.name} · edgelock` : "Active locks · edgelock";
  const body =
    page.kind === "lock"
      ? html`<main id="lock-page" data-lock="${page.name}">
          <h1><a href="/ui/">Locks</a> / <span id="lock-name">${page.name}</span></h1>
          <p id="status" class="status">Type a key to watch this lock.</p>
          <section id="summary" aria-label="summary"></section>
          <section>
            <h2>Holders</h2>
            <table id="holders"><thead><tr><th>owner</th><th>token</th><th>mode</th><th>ends in</th></tr></thead><tbody></tbody></table>
          </section>
          <section>
            <h2>Queue</h2>
            <table id="queue"><thead><tr><th>#</th><th>owner</th><th>mode</th><th>waiting for</th></tr></thead><tbody></tbody></table>
          </section>
          <section>
            <h2>Timeline of holds</h2>
            <div id="timeline"></div>
          </section>
          <section>
            <h2>Recent events</h2>
            <ol id="events"></ol>
          </section>
        </main>`
      : html`<main id="directory-page">
          <h1>Active locks</h1>
          <form id="search" class="row">
            <input id="prefix" name="prefix" placeholder="name prefix, e.g. billing:" autocomplete="off" />
            <button type="submit">Search</button>
          </form>
          <p id="status" class="status">Type a key to list the locks it may see.</p>
          <table id="locks"><thead><tr><th>lock</th><th>kind</th><th>holders</th><th>waiters</th><th>since</th></tr></thead><tbody></tbody></table>
          <form id="open" class="row">
            <input id="open-name" placeholder="open a lock by name" autocomplete="off" />
            <button type="submit">Open</button>
          </form>
        </main>`;
  const document = await html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <link rel="icon" href="data:," />
    <style nonce="${nonce}">${raw(PAGE_STYLE)}</style>
  </head>
  <body>
    <header class="row">
      <strong>edgelock</strong>
      <form id="key-form" class="row">
        <input id="key" type="password" placeholder="API key" autocomplete="off" aria-label="API key" />
        <button type="submit">Use key</button>
        <button type="button" id="forget">Forget key</button>
      </form>
    </header>
    ${body}
    <script nonce="${nonce}" id="config" type="application/json">${raw(CONFIG)}</script>
    <script nonce="${nonce}">${raw(PAGE_SCRIPT)}</script>
  </body>
</html>`;
  return document.toString();
}

/** The headers of a page: nothing may load or connect but what the page itself is and its own origin. */
export function pageHeaders(nonce: string): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join("; "),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
  };
}

export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}
