/** Small statistics for the bench: nearest-rank percentiles, summaries, Jain's fairness index. */

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** n, mean, p50, p90, p99 and max of `values` (milliseconds, rounded to 0.01). */
export function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (x) => (x === null ? null : Math.round(x * 100) / 100);
  const mean = sorted.length === 0 ? null : sorted.reduce((s, x) => s + x, 0) / sorted.length;
  return {
    n: sorted.length,
    mean: round(mean),
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? null),
  };
}

/** Jain's index (Σx)² / (n·Σx²): 1 when all equal, 1/n when one takes everything. */
export function jain(values) {
  const sum = values.reduce((s, x) => s + x, 0);
  const squares = values.reduce((s, x) => s + x * x, 0);
  return squares === 0 ? null : (sum * sum) / (values.length * squares);
}

/**
 * Mean Jain's index of per-process completions over `windows` equal time slices of the span in which
 * every process was still running (so that early finishers do not count as starved).
 */
export function windowedJain(perProcessEnds, windows = 10) {
  const start = Math.min(...perProcessEnds.map((ends) => ends[0] ?? Number.POSITIVE_INFINITY));
  const end = Math.min(...perProcessEnds.map((ends) => ends.at(-1) ?? 0));
  if (!(end > start)) return null;
  const width = (end - start) / windows;
  const indexes = [];
  for (let w = 0; w < windows; w++) {
    const lo = start + w * width;
    const hi = lo + width;
    const counts = perProcessEnds.map((ends) => ends.filter((t) => t >= lo && t < hi).length);
    const index = jain(counts);
    if (index !== null) indexes.push(index);
  }
  return indexes.length === 0
    ? null
    : Math.round((indexes.reduce((s, x) => s + x, 0) / indexes.length) * 1000) / 1000;
}

export const round2 = (x) => (x === null || x === undefined ? null : Math.round(x * 100) / 100);
