/**
 * The live pages' script, inlined into each page under its nonce (pages.ts). It is a string, not a module
 * of the Worker: the browser runs it. Kept in a TypeScript string so the Worker is one bundle (no text
 * modules beside it, which every loader of the bundle would need to know about); its own backticks and
 * interpolations are escaped here. The browser test (test/e2e/live-page.test.ts) runs it.
 */
export const PAGE_SCRIPT = `
  // The live pages' script (worker/ui/pages.ts renders the shell). It reads the API with the key typed into
  // the page, kept in sessionStorage only: sent as an Authorization header, or as the WebSocket subprotocol
  // \`bearer.<key>\`, never in a URL. Data is put into the page as text, never as markup.
  (() => {
    "use strict";
    const config = JSON.parse(document.getElementById("config").textContent);
    const KEY_ITEM = "edgelock.key";
    const $ = (id) => document.getElementById(id);
    /** The server's clock minus ours, from the last answer that said what time it was. */
    let clockOffset = 0;
    const serverNow = () => Date.now() + clockOffset;
    const key = () => sessionStorage.getItem(KEY_ITEM);

    function status(text, kind) {
      const s = $("status");
      s.textContent = text;
      s.className = \`status \${kind || ""}\`;
    }

    function el(tag, props, ...children) {
      const node = document.createElement(tag);
      for (const [k, v] of Object.entries(props || {})) {
        if (k === "class") node.className = v;
        else if (k.startsWith("data-")) node.setAttribute(k, String(v));
        else node[k] = v;
      }
      for (const c of children) node.append(c instanceof Node ? c : String(c));
      return node;
    }

    function duration(ms) {
      ms = Math.max(0, Math.round(ms));
      if (ms < 10_000) return \`\${(ms / 1000).toFixed(1)} s\`;
      const s = Math.floor(ms / 1000);
      if (s < 3600) return \`\${Math.floor(s / 60)}m \${String(s % 60).padStart(2, "0")}s\`;
      return \`\${Math.floor(s / 3600)}h \${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m\`;
    }

    const clock = (at) => new Date(at - clockOffset).toLocaleTimeString();
    const modeOf = (x) => (x.permits > 1 ? \`\${x.mode} ×\${x.permits}\` : x.mode);

    class ApiError extends Error {}

    async function api(path) {
      const res = await fetch(path, { headers: { authorization: \`Bearer \${key()}\` }, cache: "no-store" });
      const body = await res.json().catch(() => null);
      if (!res.ok) throw new ApiError(\`\${res.status} \${body?.code ?? ""}: \${body?.detail ?? res.statusText}\`);
      if (typeof body?.now === "number") clockOffset = body.now - Date.now();
      return body;
    }

    function fillTable(table, rows, columns) {
      const tbody = table.tBodies[0];
      tbody.replaceChildren(
        ...(rows.length > 0 ? rows : [el("tr", {}, el("td", { class: "empty", colSpan: columns }, "none"))]),
      );
    }

    // ---- the directory page -------------------------------------------------------------------------------

    function directoryPage() {
      let timer = null;
      let prefix = "";
      async function load() {
        try {
          const dir = await api(\`/v1/locks?prefix=\${encodeURIComponent(prefix)}\`);
          const rows = dir.locks.map((l) =>
            el(
              "tr",
              { "data-lock": l.name },
              el("td", {}, el("a", { href: \`/ui/locks/\${encodeURIComponent(l.name)}\` }, l.name)),
              el("td", {}, l.kind),
              el("td", {}, l.holderCount),
              el("td", {}, l.waiters),
              el("td", {}, \`\${duration(serverNow() - l.since)} ago\`),
            ),
          );
          fillTable($("locks"), rows, 5);
          const more = dir.nextAfter === null ? "" : " (more: narrow the prefix)";
          status(\`\${dir.locks.length} active lock(s)\${more}; the list may lag its locks by about \${dir.lagMs} ms\`, "live");
        } catch (err) {
          status(String(err.message || err), "error");
        }
      }
      $("search").addEventListener("submit", (e) => {
        e.preventDefault();
        prefix = $("prefix").value.trim();
        if (key()) void load();
      });
      $("open").addEventListener("submit", (e) => {
        e.preventDefault();
        const name = $("open-name").value.trim();
        if (name) location.assign(\`/ui/locks/\${encodeURIComponent(name)}\`);
      });
      return {
        start() {
          clearInterval(timer);
          void load();
          // The directory has no push: it is read again every few seconds.
          timer = setInterval(load, 5_000);
        },
        stop() {
          clearInterval(timer);
        },
      };
    }

    // ---- the lock page ------------------------------------------------------------------------------------

    function lockPage(name) {
      let ws = null;
      let ping = null;
      let retry = null;
      let backoffMs = 500;
      let stopped = true;
      let view = null;
      let events = [];
      let eventsTimer = null;
      const path = \`/v1/locks/\${encodeURIComponent(name)}\`;

      function renderSummary() {
        const v = view;
        const items = [
          ["state", v.held ? "held" : "free"],
          ["kind", v.limit > 1 ? \`\${v.kind} (\${v.permitsInUse}/\${v.limit})\` : v.kind],
          ["holders", v.holderCount],
          ["waiting", v.waiters],
          ["last token", v.lastToken],
        ];
        if (v.lockDelayUntil !== null) items.push(["lock-delay until", clock(v.lockDelayUntil)]);
        $("summary").replaceChildren(...items.map(([k, val]) => el("span", { "data-field": k }, \`\${k} \`, el("b", {}, val))));
      }

      function renderHolders() {
        const rows = view.holders.map((h) =>
          el(
            "tr",
            { "data-token": h.token },
            el("td", {}, h.owner ?? "—"),
            el("td", {}, h.token),
            el("td", {}, modeOf(h) + (h.holdCount > 1 ? \`, \${h.holdCount} holds\` : "")),
            el("td", {}, el("span", { class: "countdown", "data-until": h.expiresAt }, "")),
          ),
        );
        fillTable($("holders"), rows, 4);
      }

      function renderQueue() {
        const rows = view.queue.map((w, i) =>
          el(
            "tr",
            { "data-waiter": i + 1 },
            el("td", {}, i + 1),
            el("td", {}, w.owner ?? "—"),
            el("td", {}, modeOf(w)),
            el("td", {}, el("span", { class: "waited", "data-since": w.waitingSince }, "")),
          ),
        );
        if (view.waiters > view.queue.length) {
          rows.push(el("tr", {}, el("td", { class: "empty", colSpan: 4 }, \`and \${view.waiters - view.queue.length} more\`)));
        }
        fillTable($("queue"), rows, 4);
      }

      /** Updates the running clocks in place: each lease's time left, each waiter's time waited. */
      function tick() {
        const now = serverNow();
        for (const c of document.querySelectorAll(".countdown")) {
          const left = Number(c.dataset.until) - now;
          c.textContent = left > 0 ? duration(left) : "ending…";
        }
        for (const w of document.querySelectorAll(".waited")) w.textContent = duration(now - Number(w.dataset.since));
      }

      function describe(e) {
        const parts = [];
        if (e.token !== null) parts.push(\`token \${e.token}\`);
        if (e.owner !== null) parts.push(e.owner);
        if (e.kind === "granted" && e.holdCount > 1) parts.push(\`hold \${e.holdCount}\`);
        if (e.kind === "released" && e.holdCount > 0) parts.push(\`\${e.holdCount} hold(s) left\`);
        if (e.waitMs !== null) parts.push(\`waited \${duration(e.waitMs)}\`);
        if (e.holdMs !== null) parts.push(\`held \${duration(e.holdMs)}\`);
        if (e.renewals !== null) parts.push(\`\${e.renewals}×\`);
        if (e.by !== null) parts.push(\`forced by key \${e.by}\`);
        return parts.join(", ");
      }

      function renderEvents() {
        const items = events.map((e) =>
          el(
            "li",
            { "data-kind": e.kind, "data-id": e.id },
            el("time", {}, clock(e.at)),
            el("span", { class: \`kind kind-\${e.kind}\` }, e.kind.replace("_", " ")),
            " ",
            describe(e),
          ),
        );
        $("events").replaceChildren(...(items.length > 0 ? items : [el("li", {}, "no events yet")]));
      }

      /** Holds as bars over time, from the events and the current holders; overlapping holds get lanes. */
      function renderTimeline() {
        const now = serverNow();
        const oldest = events.length > 0 ? events[events.length - 1].at : now;
        const from = Math.max(now - 10 * 60_000, Math.min(oldest, now - 60_000));
        const holds = new Map();
        for (const e of [...events].reverse()) {
          if (e.token === null) continue;
          if (e.kind === "granted" && e.holdCount === 1) {
            holds.set(e.token, { start: e.at, end: null, owner: e.owner, lost: false });
          } else if (e.holdCount === 0 && e.holdMs !== null) {
            holds.set(e.token, { start: e.at - e.holdMs, end: e.at, owner: e.owner, lost: e.kind !== "released" });
          }
        }
        for (const h of view?.holders ?? []) {
          if (!holds.has(h.token)) holds.set(h.token, { start: from, end: null, owner: h.owner, lost: false });
        }
        const held = new Set((view?.holders ?? []).map((h) => h.token));
        const bars = [...holds.entries()]
          .filter(([token, h]) => (h.end ?? now) >= from && (h.end !== null || held.has(token)))
          .sort((a, b) => a[1].start - b[1].start);
        const lanes = [];
        const W = 600;
        const LANE = 20;
        const x = (t) => ((Math.max(t, from) - from) / Math.max(1, now - from)) * W;
        const ns = "http://www.w3.org/2000/svg";
        const svg = document.createElementNS(ns, "svg");
        const shapes = [];
        for (const [token, h] of bars) {
          let lane = lanes.findIndex((end) => end <= h.start);
          if (lane === -1) lane = lanes.push(0) - 1;
          lanes[lane] = h.end ?? now;
          const r = document.createElementNS(ns, "rect");
          r.setAttribute("x", x(h.start).toFixed(1));
          r.setAttribute("y", String(4 + lane * LANE));
          r.setAttribute("width", Math.max(1.5, x(h.end ?? now) - x(h.start)).toFixed(1));
          r.setAttribute("height", String(LANE - 4));
          r.setAttribute("class", \`hold\${h.lost ? " lost" : ""}\${h.end === null ? " open" : ""}\`);
          r.setAttribute("data-token", String(token));
          const tip = document.createElementNS(ns, "title");
          tip.textContent = \`token \${token}\${h.owner ? \` (\${h.owner})\` : ""}: \${duration((h.end ?? now) - h.start)}\${h.end === null ? ", still held" : ""}\`;
          r.append(tip);
          shapes.push(r);
        }
        const height = 4 + Math.max(1, lanes.length) * LANE + 14;
        svg.setAttribute("viewBox", \`0 0 \${W} \${height}\`);
        svg.setAttribute("role", "img");
        svg.setAttribute("aria-label", \`holds of \${name} over the last \${duration(now - from)}\`);
        const axis = document.createElementNS(ns, "line");
        for (const [k, v] of Object.entries({ x1: 0, x2: W, y1: height - 13, y2: height - 13 })) axis.setAttribute(k, String(v));
        const left = document.createElementNS(ns, "text");
        left.setAttribute("x", "0");
        left.setAttribute("y", String(height - 2));
        left.textContent = \`−\${duration(now - from)}\`;
        const right = document.createElementNS(ns, "text");
        right.setAttribute("x", String(W));
        right.setAttribute("y", String(height - 2));
        right.setAttribute("text-anchor", "end");
        right.textContent = "now";
        svg.append(axis, ...shapes, left, right);
        $("timeline").replaceChildren(svg);
      }

      function render(next) {
        view = next;
        renderSummary();
        renderHolders();
        renderQueue();
        renderTimeline();
        tick();
      }

      async function loadEvents() {
        try {
          const page = await api(\`\${path}/events?limit=50\`);
          events = page.events;
          renderEvents();
          renderTimeline();
        } catch (err) {
          status(String(err.message || err), "error");
        }
      }

      /** Several changes in a burst are one read of the events. */
      function eventsSoon() {
        clearTimeout(eventsTimer);
        eventsTimer = setTimeout(loadEvents, 100);
      }

      function connect() {
        const scheme = location.protocol === "https:" ? "wss:" : "ws:";
        const socket = new WebSocket(\`\${scheme}//\${location.host}\${path}/session\`, [
          config.protocol,
          config.bearer + key(),
        ]);
        ws = socket;
        socket.addEventListener("open", () => {
          backoffMs = 500;
          socket.send(JSON.stringify({ type: "watch", id: "watch" }));
          // A session that says nothing for a while is closed by the lock: pings keep it open.
          ping = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send("ping"), config.pingMs);
        });
        socket.addEventListener("message", (m) => {
          if (m.data === "pong" || ws !== socket) return;
          const frame = JSON.parse(m.data);
          if (frame.type === "state") {
            const { type, id, ...next } = frame;
            render(next);
            eventsSoon();
            status("live: updates as the lock changes", "live");
          } else if (frame.type === "error") {
            status(\`\${frame.code}: \${frame.detail}\`, "error");
          }
        });
        socket.addEventListener("close", () => {
          // A socket this page replaced or stopped on purpose ends quietly.
          if (stopped || ws !== socket) return;
          clearInterval(ping);
          status("connection lost; reconnecting…", "error");
          retry = setTimeout(() => void start(), backoffMs);
          backoffMs = Math.min(backoffMs * 2, 10_000);
        });
      }

      async function start() {
        stop();
        stopped = false;
        try {
          // Read once over HTTP first: a wrong key or scope is then said plainly, not as a failed socket.
          render(await api(path));
          await loadEvents();
          if (!stopped) connect();
        } catch (err) {
          status(String(err.message || err), "error");
          if (!(err instanceof ApiError) && !stopped) retry = setTimeout(() => void start(), backoffMs);
        }
      }

      function stop() {
        stopped = true;
        clearTimeout(retry);
        clearInterval(ping);
        if (ws !== null) ws.close(1000, "page stopped");
        ws = null;
      }

      setInterval(tick, 250);
      setInterval(() => view && renderTimeline(), 5_000);
      return { start, stop };
    }

    // ---- the key, and which page this is -------------------------------------------------------------------

    const lockMain = $("lock-page");
    const page = lockMain ? lockPage(lockMain.dataset.lock) : directoryPage();
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = $("key").value.trim();
      if (!value) return;
      sessionStorage.setItem(KEY_ITEM, value);
      $("key").value = "";
      page.start();
    });
    $("forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_ITEM);
      page.stop();
      status("Key forgotten. Type a key to go on.", "");
    });
    if (key()) page.start();
  })();
`;
