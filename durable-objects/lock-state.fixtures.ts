/** Shared helpers for the state machine's tests: command builders and a runner over timed steps. */
import {
  type AcquireCommand,
  type Command,
  EMPTY_STATE,
  type LockState,
  type Step,
  transition,
} from "./lock-state.ts";

export const T0 = 1_000_000;

/** An exclusive acquire of 1 s with no wait, overridden by `extra`. */
export function acq(leaseId: string, extra: Partial<AcquireCommand> = {}): AcquireCommand {
  return {
    type: "acquire",
    leaseId,
    owner: null,
    ttlMs: 1_000,
    waitMs: 0,
    mode: "exclusive",
    limit: null,
    permits: 1,
    reentrant: false,
    lockDelayMs: 0,
    ...extra,
  };
}

/** Runs commands in order, each at its own time, and returns every step. */
export function run(steps: [number, Command][], start: LockState = EMPTY_STATE): Step[] {
  let s = start;
  return steps.map(([now, cmd]) => {
    const step = transition(s, cmd, now);
    s = step.state;
    return step;
  });
}
