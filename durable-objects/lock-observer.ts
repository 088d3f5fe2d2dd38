/**
 * What a lock object tells the world after a step, off its answers' path: metrics (one Analytics Engine
 * data point per event, when the optional binding is there) and its entry in the directory of active locks
 * (lock-directory.ts). Reports leave after the step's commit (the output gate holds outgoing calls until
 * storage has the write) and are never awaited by an answer. At most one report per
 * DIRECTORY_REPORT_DELAY_MS: the first change reports on the next turn (after the step's answer), later
 * ones within the window are one report at its end, carrying the state as it is then. A failed report is retried a few times; after that the
 * next change or alarm reports again, and an entry nobody refreshes lapses at its `until` by itself.
 */
import { DIRECTORY_REPORT_DELAY_MS } from "../client/src/protocol.ts";
import { entryOf, shardOf } from "./directory.ts";
import type { Command, LockState, Step } from "./lock-state.ts";
import { dataPointsOf } from "./metrics.ts";

/** Retries of a report that failed, each after twice the wait of the one before. */
const MAX_REPORT_RETRIES = 4;

export interface ObservedLock {
  readonly name: string;
  state(): LockState;
}

export class LockObserver {
  readonly #env: Env;
  readonly #lock: ObservedLock;
  readonly #metrics: AnalyticsEngineDataset | undefined;
  #lastReportAt = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #failures = 0;

  constructor(env: Env, lock: ObservedLock) {
    this.#env = env;
    this.#lock = lock;
    // Optional: the service runs without it (and locally, where Analytics Engine drops every point).
    this.#metrics = (env as { EDGELOCK_METRICS?: AnalyticsEngineDataset }).EDGELOCK_METRICS;
  }

  /** After a step's commit: its metrics, and a directory report if the lock changed. */
  afterStep(command: Command, step: Step, before: LockState, now: number): void {
    if (this.#lock.name === "") return;
    if (this.#metrics !== undefined) {
      for (const point of dataPointsOf(this.#lock.name, command, step.outcome, step.effects.events)) {
        this.#metrics.writeDataPoint(point);
      }
    }
    if (step.state !== before) this.report(now);
  }

  /** Reports the lock's entry soon: on the next turn, or at the end of the window if one was just sent. */
  report(now: number): void {
    if (this.#lock.name === "" || this.#timer !== null) return;
    // Never sooner than the next turn: the step's answer leaves first.
    this.#later(Math.max(0, this.#lastReportAt + DIRECTORY_REPORT_DELAY_MS - now));
  }

  #later(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#send(Date.now());
    }, ms);
  }

  #send(now: number): void {
    this.#lastReportAt = now;
    const { name } = this.#lock;
    const entry = entryOf(name, this.#lock.state(), now);
    this.#env.DIRECTORY.getByName(shardOf(name))
      .report({ name, reportedAt: now, entry })
      .then(
        () => {
          this.#failures = 0;
        },
        (err: unknown) => {
          this.#failures += 1;
          if (this.#failures > MAX_REPORT_RETRIES) {
            console.warn(
              JSON.stringify({ event: "directory-report-failed", lock: name, error: String(err) }),
            );
            this.#failures = 0;
            return;
          }
          if (this.#timer === null) this.#later(DIRECTORY_REPORT_DELAY_MS * 2 ** this.#failures);
        },
      );
  }
}
