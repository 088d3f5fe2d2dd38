import { abortAllDurableObjects } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { acq } from "../durable-objects/lock-state.fixtures.ts";
import { lockFailure } from "../worker/answers.ts";
import { ProblemError } from "../worker/problem.ts";
import { tick } from "./helpers/api.ts";
import { lockName } from "./helpers/names.ts";
import { untilWaiters } from "./helpers/runtime.ts";

/** Calls the lock object with arguments the Worker's schemas would never let through. */
type RawLock = { acquire(command: unknown): Promise<unknown> };
const rawLock = (name: string) => env.LOCK.getByName(name) as unknown as RawLock;

/** An exclusive acquire with the state machine tests' defaults, a 10 s TTL and `waitMs`. */
const command = (leaseId: string, waitMs: number) => acq(leaseId, { ttlMs: 10_000, waitMs });

it("treats an error thrown by the lock object's own code as a bug (500), not a restart", async () => {
  const name = lockName("bug");
  const err = await rawLock(name)
    .acquire(null)
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  const failure = lockFailure(name, err);
  expect(failure).not.toBeInstanceOf(ProblemError);
  // The failed step changed nothing: the lock is still free and has issued no token.
  const ok = (await rawLock(name).acquire(command("after-the-bug-0001", 0))) as { lease: { token: number } };
  expect(ok.lease.token).toBe(1);
});

it("treats a reset lock object as unavailable (503, retryable)", async () => {
  const name = lockName("reset");
  await rawLock(name).acquire(command("holder-000000000001", 0));
  const parked = rawLock(name)
    .acquire(command("waiter-000000000001", 5_000))
    .catch((e: unknown) => e);
  await untilWaiters(name, 1);
  await tick(10);
  await abortAllDurableObjects();
  const failure = lockFailure(name, await parked);
  expect(failure).toBeInstanceOf(ProblemError);
  expect((failure as ProblemError).code).toBe("unavailable");
  expect((failure as ProblemError).status).toBe(503);
});
