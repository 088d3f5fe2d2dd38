/**
 * Every knob of npm run bench in one place: scenario sizes (full and --quick), retry delays of the polling
 * peers, and how the bench talks to edgelock when auth is on. Read by run.mjs and by forked workers.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT_DIR = join(BENCH_DIR, "..");

/**
 * Auth, switchable in one place. BENCH_EDGELOCK_VARS is a JSON object of Worker vars given to every
 * edgelock start; by default it turns auth off (a var the Worker ignores while it has no auth) and the
 * per-request log line off, as `npm start` does (scripts/start.ts says why).
 * BENCH_API_KEY, when set, is sent as a Bearer token on every edgelock request.
 */
export const EDGELOCK_VARS = JSON.parse(
  process.env.BENCH_EDGELOCK_VARS ?? '{"EDGELOCK_INSECURE_NO_AUTH":"true","EDGELOCK_REQUEST_LOG":"off"}',
);
export const EDGELOCK_API_KEY = process.env.BENCH_API_KEY || undefined;
export const EDGELOCK_HEADERS =
  EDGELOCK_API_KEY === undefined ? {} : { authorization: `Bearer ${EDGELOCK_API_KEY}` };

/** The polling Redis client's sleep between SET NX attempts; redlock's tuned retry delay. */
export const REDIS_POLL_MS = 10;
export const REDLOCK_TUNED_DELAY_MS = 50;

/**
 * The contended counter with waits past one request's cap (issue 9): each acquire request waits at most
 * `maxWaitMs` and each critical section lasts `holdMs`, so that at P=4 a wait (about 3 sections) spans
 * several requests and every grant can be checked for overtakes across re-polls.
 */
export const CAPPED = { maxWaitMs: 50, holdMs: 50 };

const FULL = {
  floorRequests: 300,
  /** The write + setAlarm floor again, with the hand-off scenario's 30–80 ms pause before each call. */
  floorPausedRequests: 100,
  uncontendedPairs: 1000,
  contendedProcesses: [2, 4],
  /** Enough sections that one scheduler hiccup on this shared VM does not decide the rate (40 did: ±30%). */
  contendedRounds: 250,
  /**
   * Issue 16's P=4 bound: this many contended runs at P=4 on each HTTP path, each right after the path's
   * write + setAlarm floor is taken again; the target is the median of their ratios (RESULTS.md says why).
   */
  boundRuns: 5,
  /** The waits-past-the-cap runs (CAPPED): 50 ms sections, so fewer rounds give as many re-polls. */
  cappedRounds: 40,
  handoffs: 40,
  expiries: 8,
  expiryTtlMs: 500,
  manyLocks: 10_000,
  /** Through wrangler dev the many-locks scenario runs on fewer names, to keep the run under 5 minutes. */
  manyLocksDev: 1_000,
  manyFloorObjects: 1_000,
  manyInFlight: 64,
};

const QUICK = {
  ...FULL,
  floorRequests: 30,
  floorPausedRequests: 10,
  uncontendedPairs: 50,
  contendedRounds: 5,
  cappedRounds: 5,
  boundRuns: 1,
  handoffs: 5,
  expiries: 2,
  manyLocks: 300,
  manyLocksDev: 100,
  manyFloorObjects: 100,
};

export function parameters(quick) {
  return quick ? QUICK : FULL;
}
