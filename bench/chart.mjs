/**
 * The one chart of RESULTS.md, as plain SVG with no dependencies: cumulative distributions of hand-off
 * latency and of contended wait (largest P) per system, on a log time axis.
 */

const COLORS = ["#d6336c", "#f08c00", "#1c7ed6", "#37b24d", "#7048e8", "#495057", "#0ca678"];
const PANEL = { width: 460, height: 280, left: 50, right: 24, top: 34, bottom: 42 };
const MIN_MS = 0.1;

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;");

function panel(title, series, offsetX) {
  const values = series.flatMap((s) => s.samples).filter((v) => v > 0);
  const maxMs = 10 ** Math.ceil(Math.log10(Math.max(10, ...values)));
  const w = PANEL.width - PANEL.left - PANEL.right;
  const h = PANEL.height - PANEL.top - PANEL.bottom;
  const x = (ms) =>
    offsetX +
    PANEL.left +
    (w * (Math.log10(Math.max(MIN_MS, ms)) - Math.log10(MIN_MS))) / (Math.log10(maxMs) - Math.log10(MIN_MS));
  const y = (q) => PANEL.top + h * (1 - q);
  const parts = [`<text x="${offsetX + PANEL.left}" y="20" font-weight="bold">${esc(title)}</text>`];
  for (let ms = MIN_MS; ms <= maxMs * 1.001; ms *= 10) {
    parts.push(`<line x1="${x(ms)}" x2="${x(ms)}" y1="${y(0)}" y2="${y(1)}" stroke="#e9ecef"/>`);
    parts.push(
      `<text x="${x(ms)}" y="${y(0) + 16}" text-anchor="middle">${ms < 1 ? ms.toFixed(1) : Math.round(ms)}</text>`,
    );
  }
  for (const q of [0, 0.5, 0.9, 1]) {
    parts.push(`<line x1="${x(MIN_MS)}" x2="${x(maxMs)}" y1="${y(q)}" y2="${y(q)}" stroke="#e9ecef"/>`);
    parts.push(`<text x="${offsetX + PANEL.left - 6}" y="${y(q) + 4}" text-anchor="end">${q}</text>`);
  }
  parts.push(
    `<text x="${x(Math.sqrt(MIN_MS * maxMs))}" y="${PANEL.height - 6}" text-anchor="middle">ms (log)</text>`,
  );
  for (const s of series) {
    const sorted = [...s.samples].sort((a, b) => a - b);
    if (sorted.length === 0) continue;
    const points = sorted.flatMap((v, i) => [
      `${x(v)},${y(i / sorted.length)}`,
      `${x(v)},${y((i + 1) / sorted.length)}`,
    ]);
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.8" points="${points.join(" ")}"/>`);
  }
  return parts.join("\n");
}

/** SVG text for the systems of one run. */
export function chart(results) {
  const systems = results.systems.map((s, i) => ({ ...s, color: COLORS[i % COLORS.length] }));
  const maxP = Math.max(...systems.flatMap((s) => s.contended.map((c) => c.processes)));
  const handoffs = systems.map((s) => ({ color: s.color, samples: s.handoff.samples }));
  const waits = systems.map((s) => ({
    color: s.color,
    samples: s.contended.find((c) => c.processes === maxP)?.waitSamples ?? [],
  }));
  const legendY = PANEL.height + 8;
  const legend = systems.map(
    (s, i) =>
      `<rect x="${20 + (i % 3) * 300}" y="${legendY + Math.floor(i / 3) * 20}" width="14" height="4" fill="${s.color}"/>` +
      `<text x="${40 + (i % 3) * 300}" y="${legendY + 6 + Math.floor(i / 3) * 20}">${esc(s.label)}</text>`,
  );
  const height = legendY + Math.ceil(systems.length / 3) * 20 + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${PANEL.width * 2}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel("Hand-off: release call → waiter's grant (CDF)", handoffs, 0),
    panel(`Contended counter, P=${maxP}: wait for the lock (CDF)`, waits, PANEL.width),
    ...legend,
    "</svg>",
  ].join("\n");
}
