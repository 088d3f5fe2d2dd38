/**
 * The contended counter's FIFO checks (scenarios/contended.mjs), on the grants each process saw: two counts
 * of grants out of turn, one judged on the wire by the clients' clocks, one at the lock by the lock's own.
 * Pure, so that test/e2e/bench-fifo.test.ts can play them the cases they must tell apart.
 */

/**
 * One grant as a contended process records it: when its request left the client and when the grant arrived
 * (epoch ms, comparable across processes), then when the request reached the lock (the lock's clock) and
 * the lease's fencing token (the lock's grant order), or null where the system does not say.
 */
export type GrantRecord = readonly [
  requestedAt: number,
  grantedAt: number,
  reachedAt: number | null,
  token: number | null,
];

/**
 * Grants that overtook a request another process had made more than `slackMs` earlier: 0 for a FIFO
 * lock (the slack absorbs the client-to-server skew of near-simultaneous requests). "Made" is when the
 * request that took the waiter's place left the client, where the system says (`lease.requestedAt`: an
 * edgelock HTTP body sent, a session frame sent, etcd's put), else when the acquire call began. A wait
 * that re-polls past the per-request cap counts from its first request, because it promised each re-poll
 * (`repoll: true`) and so keeps its turn (docs/api.md "Waiting").
 * A client that does not promise has no turn between its requests (the lock is work-conserving), so its
 * overtakes are the rules working, not a fault: the bench runs such a client only as a control.
 */
export function overtakesOnTheWire(perProcess: readonly (readonly GrantRecord[])[], slackMs = 5): number {
  const all = perProcess.flatMap((grants, p) => grants.map(([asked, granted]) => ({ p, asked, granted })));
  let count = 0;
  for (const a of all) {
    if (all.some((b) => b.p !== a.p && b.asked + slackMs < a.asked && b.granted > a.granted)) count++;
  }
  return count;
}

/**
 * Grants out of the order their requests reached the lock: a lease whose fencing token is below that of
 * another process's lease whose request reached the lock at least 1 ms earlier, both by the lock itself
 * (`lease.reachedAt`, its clock: expiresAt − validForMs; the token, its grant order). The count on the wire
 * also counts a request that the network or the server's ingress delivered late: a request sent 6.7 ms
 * before another reached the lock 1 ms after it in a run on 2026-12-03 (RESULTS.md, "Overtakes on the wire
 * and at the lock"). Two arrivals within one millisecond are not ordered here (the queue's own sequence
 * orders them). Null when a grant does not say (not edgelock, or a wait that re-polled).
 */
export function overtakesAtLock(perProcess: readonly (readonly GrantRecord[])[]): number | null {
  const all = perProcess.flatMap((grants, p) =>
    grants.map(([, , reached, token]) => ({ p, reached, token })),
  );
  let count = 0;
  for (const a of all) {
    if (a.reached === null || a.token === null) return null;
    const { reached, token } = a;
    if (
      all.some(
        (b) =>
          b.p !== a.p && b.reached !== null && b.token !== null && b.reached < reached && b.token > token,
      )
    )
      count++;
  }
  return count;
}
