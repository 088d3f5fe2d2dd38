/**
 * Metrics for Workers Analytics Engine: one data point per history event of a step, and one per acquire
 * refused because the lock was busy, so a deployed service can graph waits, holds and contention per lock
 * and alert on them. The layout of a data point is documented in docs/api.md#metrics. Pure: the lock
 * observer writes the points to the optional `EDGELOCK_METRICS` binding.
 */
import type { NewLockEvent } from "./lock-events.ts";
import type { Command, Outcome } from "./lock-state.ts";

/** Analytics Engine keeps at most 96 bytes of an index; lock names are ASCII, so 96 characters. */
const MAX_INDEX_LENGTH = 96;

/** What an event means for a graph: how a grant came, or how a lease or a wait ended. */
function outcomeOf(e: NewLockEvent): string {
  switch (e.kind) {
    case "granted":
      return (e.holdCount ?? 1) > 1 ? "reentered" : e.waitMs === 0 ? "immediate" : "after_wait";
    case "renewed":
      return "renewed";
    case "released":
      return e.holdCount === 0 ? "lease_ended" : "hold_released";
    case "expired":
    case "forced":
      return "lease_lost";
    case "session_closed":
      return e.token === null ? "wait_ended" : "lease_lost";
    case "timed_out":
    case "cancelled":
      return "wait_ended";
    default:
      return assertNever(e.kind);
  }
}

/**
 * The data points of one step: blobs `[lock, kind, outcome, mode, owner]`, doubles `[waitMs, holdMs,
 * permits, token]` (0 where the event has none), indexed by lock name.
 */
export function dataPointsOf(
  name: string,
  command: Command,
  outcome: Outcome,
  events: readonly NewLockEvent[],
) {
  const index = [name.slice(0, MAX_INDEX_LENGTH)];
  const points: AnalyticsEngineDataPoint[] = events.map((e) => ({
    indexes: index,
    blobs: [name, e.kind, outcomeOf(e), e.mode, e.owner ?? ""],
    doubles: [e.waitMs ?? 0, e.holdMs ?? 0, e.permits, e.token ?? 0],
  }));
  if (command.type === "acquire" && outcome.kind === "rejected") {
    points.push({
      indexes: index,
      blobs: [name, "refused", outcome.code, command.mode, command.owner ?? ""],
      doubles: [0, 0, command.permits, 0],
    });
  }
  return points;
}

function assertNever(x: never): never {
  throw new Error(`unhandled event kind ${JSON.stringify(x)}`);
}
