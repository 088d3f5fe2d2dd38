/** Shared helpers for the state machine's tests: command builders, a storage stand-in, and a step runner. */
import {
  type AcquireCommand,
  type Command,
  EMPTY_STATE,
  type History,
  type LockState,
  type ReleaseCommand,
  type Step,
  type Tombstone,
  transition,
} from "./lock-state.ts";

export const T0 = 1_000_000;
/** The API key name commands are made under unless a test says otherwise. */
export const KEY = "test-key";

/** An exclusive acquire of 1 s with no wait, overridden by `extra`. */
export function acq(leaseId: string, extra: Partial<AcquireCommand> = {}): AcquireCommand {
  return {
    type: "acquire",
    leaseId,
    owner: null,
    principal: KEY,
    ttlMs: 1_000,
    waitMs: 0,
    mode: "exclusive",
    limit: null,
    permits: 1,
    holderKey: null,
    session: null,
    repoll: false,
    lockDelayMs: 0,
    ...extra,
  };
}

/** A release of `leaseId` (over HTTP). */
export function rel(leaseId: string): ReleaseCommand {
  return { type: "release", leaseId };
}

/** What the lock object's storage remembers of ended lease ids, as a Map. */
export class MemoryHistory implements History {
  readonly rows = new Map<string, Tombstone>();
  ended(leaseId: string): Tombstone | null {
    return this.rows.get(leaseId) ?? null;
  }
  record(step: Step): void {
    for (const t of step.effects.ended) this.rows.set(t.leaseId, t);
  }
}

/** Runs commands in order, each at its own time, keeping ended ids as storage would; returns every step. */
export function run(
  steps: [number, Command][],
  start: LockState = EMPTY_STATE,
  history = new MemoryHistory(),
): Step[] {
  let s = start;
  return steps.map(([now, cmd]) => {
    const step = transition(s, cmd, now, history);
    history.record(step);
    s = step.state;
    return step;
  });
}
