/**
 * The Durable Object around one lock: it loads the state once, applies commands through the pure state
 * machine, writes the new state before anything is answered, keeps the alarm at the next deadline, and
 * answers parked long-poll requests when the machine grants them. It holds no lock rules of its own.
 */
import { DurableObject } from "cloudflare:workers";
import type { AcquireCommand, Command, LockSnapshot, LockState, Outcome } from "./lock-state.ts";
import { EMPTY_STATE, nextDeadline, snapshot, transition, waitTimedOut } from "./lock-state.ts";
import { load, save } from "./storage.ts";

/**
 * A grant as the lock object answers it. `validForMs` is how long the lease lasts counted from when the
 * request reached the lock object, by the lock object's own clock: the request was sent before it
 * arrived, so a client's `sentAt + validForMs` is a deadline the lease cannot end before, whatever the
 * server's clock says and however long the request waited or was retried.
 */
export type Granted = Extract<Outcome, { kind: "granted" }> & { readonly validForMs: number };
/** Every answer of the lock object: its state machine's outcomes, with grants as `Granted`. */
export type Answer = Exclude<Outcome, { kind: "granted" }> | Granted;
export type AcquireOutcome =
  | Granted
  | Extract<Outcome, { kind: "rejected" }>
  | { readonly kind: "rejected"; readonly code: "wait_cancelled" };

interface Parked {
  resolve: (outcome: AcquireOutcome) => void;
  timer: ReturnType<typeof setTimeout>;
  /** When the parked request reached the lock object. */
  arrivedAt: number;
}

export class LockObject extends DurableObject<Env> {
  #state: LockState = EMPTY_STATE;
  #alarmAt: number | null = null;
  /** Requests held open for a grant, by leaseId. The queue itself lives in the state, in storage. */
  readonly #parked = new Map<string, Parked>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      // One commit for the schema of a new lock, not one per table.
      this.#state = ctx.storage.transactionSync(() => load(ctx.storage.sql));
      this.#alarmAt = await ctx.storage.getAlarm();
      this.#syncAlarm();
    });
  }

  async acquire(command: Omit<AcquireCommand, "type">): Promise<AcquireOutcome> {
    const arrivedAt = Date.now();
    const outcome = this.#apply({ type: "acquire", ...command }, arrivedAt);
    if (outcome.kind === "granted") {
      // An older request for the same leaseId, still parked (a retry overtook it), gets the same lease.
      this.#settle(command.leaseId, outcome);
      return outcome;
    }
    if (outcome.kind === "rejected") return outcome;
    if (outcome.kind !== "queued") throw new Error(`acquire answered ${outcome.kind}`);
    const { leaseId, waitUntil } = outcome;
    // A re-poll while an older request for the same leaseId is still parked replaces that request.
    this.#settle(leaseId, waitTimedOut(this.#state, leaseId, Date.now()));
    const { promise, resolve } = Promise.withResolvers<AcquireOutcome>();
    const timer = setTimeout(
      () => {
        this.#parked.delete(leaseId);
        resolve(waitTimedOut(this.#state, leaseId, Date.now()));
      },
      Math.max(0, waitUntil - Date.now()) + 1,
    );
    this.#parked.set(leaseId, { resolve, timer, arrivedAt });
    return promise;
  }

  renew(leaseId: string, ttlMs: number | null, mode: "shared" | "exclusive" | null): Answer {
    return this.#apply({ type: "renew", leaseId, ttlMs, mode });
  }

  release(leaseId: string): Answer {
    return this.#apply({ type: "release", leaseId });
  }

  /** Ends every lease now; `by` (an admin key's name) is kept with each, for the holders to learn. */
  forceRelease(by: string): Answer {
    return this.#apply({ type: "forceRelease", by });
  }

  /** The lock's state at this instant, with the page of holders whose tokens come after `after`. */
  inspect(after = 0): LockSnapshot {
    const now = Date.now();
    this.#apply({ type: "tick" }, now);
    return snapshot(this.#state, now, after);
  }

  override async alarm(): Promise<void> {
    // The alarm that woke us is spent; `tick` re-reads the state, so early, late or repeated alarms are harmless.
    this.#alarmAt = null;
    this.#apply({ type: "tick" });
  }

  /**
   * Applies one command at `now`, the one clock reading of this event: also when the request that carries
   * it arrived, from which its grant's `validForMs` counts.
   */
  #apply(command: Command, now = Date.now()): Answer {
    const before = this.#state;
    const step = transition(before, command, now);
    if (step.state !== before) {
      this.ctx.storage.transactionSync(() => save(this.ctx.storage.sql, before, step.state));
    }
    this.#state = step.state;
    this.#syncAlarm();
    for (const lease of step.effects.granted) {
      this.#settle(lease.leaseId, { kind: "granted", lease, limit: step.state.limit });
    }
    for (const leaseId of step.effects.cancelled) {
      this.#settle(leaseId, { kind: "rejected", code: "wait_cancelled" });
    }
    const { outcome } = step;
    return outcome.kind === "granted" ? validFrom(outcome, now) : outcome;
  }

  /** Answers the request parked for `leaseId`, if any; a grant is valid from that request's arrival. */
  #settle(
    leaseId: string,
    outcome: Extract<Outcome, { kind: "granted" }> | Exclude<AcquireOutcome, Granted>,
  ): void {
    const parked = this.#parked.get(leaseId);
    if (parked === undefined) return;
    this.#parked.delete(leaseId);
    clearTimeout(parked.timer);
    parked.resolve(outcome.kind === "granted" ? validFrom(outcome, parked.arrivedAt) : outcome);
  }

  /**
   * Keeps the one alarm no later than the state's next deadline. It only ever moves earlier: an alarm that
   * fires before anything is due just re-arms (`alarm()` is idempotent), which is cheaper than a second
   * storage commit on every acquire and release. Not awaited: the output gate holds replies until it is stored.
   */
  #syncAlarm(): void {
    const next = nextDeadline(this.#state);
    if (next === null || (this.#alarmAt !== null && this.#alarmAt <= next)) return;
    this.#alarmAt = next;
    void this.ctx.storage.setAlarm(next);
  }
}

function validFrom(outcome: Extract<Outcome, { kind: "granted" }>, arrivedAt: number): Granted {
  return { ...outcome, validForMs: Math.max(0, outcome.lease.expiresAt - arrivedAt) };
}
