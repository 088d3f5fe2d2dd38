/**
 * Durations as people write them: a number of milliseconds, or a string such as "500ms", "30s", "5m", "1h".
 * Only this module parses them; everything past the public API is an integer `…Ms`. It does not check the
 * server's limits (the server does, and answers `invalid_ttl`/`invalid_wait`).
 */
import { ValidationError } from "./errors.ts";

/** A duration in milliseconds, or a string with a unit: `"250ms"`, `"1.5s"`, `"30s"`, `"5m"`, `"2h"`. */
export type Duration = number | `${number}${DurationUnit}` | `${number}`;
export type DurationUnit = "ms" | "s" | "m" | "h";

const UNIT_MS: Record<DurationUnit, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const DURATION_PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/;

/**
 * Converts a duration to whole milliseconds (rounded up, so "1.0001s" never becomes shorter).
 * A bare number string is milliseconds, like a number.
 *
 * @example
 * parseDuration("30s"); // 30000
 * parseDuration(250); // 250
 * @throws {ValidationError} code `invalid_argument` for negatives, NaN, Infinity or unknown units.
 */
export function parseDuration(value: Duration | string, what = "duration"): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw invalid(value, what);
    return Math.ceil(value);
  }
  const match = DURATION_PATTERN.exec(value);
  const amount = match?.[1];
  if (match === null || amount === undefined) throw invalid(value, what);
  const unit = (match[2] ?? "ms") as DurationUnit;
  const ms = Math.ceil(Number(amount) * UNIT_MS[unit]);
  if (!Number.isSafeInteger(ms)) throw invalid(value, what);
  return ms;
}

/** Formats milliseconds for messages: 1500 → "1.5s", 90000 → "1m30s", 250 → "250ms". */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1_000).toFixed(1))}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1_000);
  return seconds === 0 ? `${minutes}m` : `${minutes}m${seconds}s`;
}

function invalid(value: unknown, what: string): ValidationError {
  return new ValidationError(
    "invalid_argument",
    `${what} must be a non-negative number of milliseconds or a string like "500ms", "30s", "5m" (got ${JSON.stringify(value)})`,
  );
}
