/**
 * What every forked chaos client shares: its configuration (from the CHAOS_CLIENT environment variable), its
 * seeded random stream, its JSONL log, fenced access to the shared resource, and the loop that runs one
 * round after another until the parent's "stop". The rounds themselves live in holder-process.ts
 * (library, raw or session client, long holds) and give-up-process.ts (bare HTTP, short waits).
 */
import type { AccessAnswer, AccessRequest } from "./fenced-store.ts";
import { appendSync } from "./jsonl.ts";
import { type Access, askFor, type LockAsk, type LockSpec } from "./locks.ts";
import { makeRng, type Rng } from "./rng.ts";

/**
 * Holders that go through the client library over HTTP, bare fetch or the library's sessions, and short-wait
 * clients that give up.
 */
export type ClientRole = "library" | "raw" | "session" | "give-up";

export interface ClientConfig {
  clientId: number;
  incarnation: number;
  role: ClientRole;
  seed: number;
  baseUrl: string;
  storeUrl: string;
  locks: LockSpec[];
  /** The TTL this client asks for its leases. */
  ttlMs: number;
  maxWaitMs: number;
  /** A holder's work step takes up to this long (then it renews if a third of its TTL is gone). */
  workStepMs: number;
  stallChance: number;
  /** A stall lasts from the TTL + 200 ms up to this long. */
  stallMaxMs: number;
  logPath: string;
}

/** One round of a client's loop: a random lock of the run and a random ask of it. */
export interface Round {
  name: string;
  ask: LockAsk;
  access: Access;
  /** The round's number in this incarnation, from 0. */
  n: number;
}

export interface ClientContext {
  readonly cfg: ClientConfig;
  readonly rng: Rng;
  /** `client-<id>.<incarnation>`: the owner label and the name in every log record. */
  readonly me: string;
  log(ev: string, data: Record<string, unknown>): void;
  /** One fenced read or write of the resource named after the lock, logged as an `access` event. */
  access(
    a: Omit<AccessRequest, "client" | "resource"> & { name: string; heldUntil: number },
  ): Promise<boolean>;
  /**
   * The client's life: `round` after round until the parent asks it to stop (after the current round) or
   * goes away, then exit 0. Logs start and stop, and a crash (exit 1).
   */
  run(round: (r: Round) => Promise<void>): void;
}

export function clientContext(): ClientContext {
  const config = JSON.parse(process.env.CHAOS_CLIENT ?? "null") as ClientConfig | null;
  if (config === null) throw new Error("CHAOS_CLIENT is not set: chaos clients are forked by chaos/run.ts");
  const cfg = config;
  const me = `client-${cfg.clientId}.${cfg.incarnation}`;
  let stop = false;
  process.on("message", (m) => {
    if (m === "stop") stop = true;
  });
  process.on("disconnect", () => {
    stop = true;
  });
  const log = (ev: string, data: Record<string, unknown>): void =>
    appendSync(cfg.logPath, { ev, at: Date.now(), client: me, ...data });
  const rng = makeRng(cfg.seed);
  return {
    cfg,
    rng,
    me,
    log,
    async access({ name, heldUntil, ...a }) {
      const body: AccessRequest = { ...a, resource: name, client: me };
      const sentAt = Date.now();
      const res = await fetch(`${cfg.storeUrl}/access`, { method: "POST", body: JSON.stringify(body) });
      const answer = (await res.json()) as AccessAnswer;
      const { accepted, seen, written } = answer;
      log("access", { name, ...a, sentAt, heldUntil, storeAt: answer.at, accepted, seen, written });
      return answer.accepted;
    },
    run(round) {
      const loop = async (): Promise<void> => {
        log("start", { pid: process.pid, role: cfg.role });
        for (let n = 0; !stop; n++) {
          const lock = rng.pick(cfg.locks);
          await round({ name: lock.name, ...askFor(lock, rng), n });
        }
        log("stop", {});
        process.exit(0);
      };
      loop().catch((err: unknown) => {
        log("crash", { error: String((err as Error).stack ?? err) });
        process.exit(1);
      });
    },
  };
}
