/**
 * The bench's FIFO checks (bench/fifo.ts) on synthetic grants: the count at the lock must flag a lock that
 * serves a later arrival first, and must stay quiet on a request the network delivered late, which the
 * count on the wire flags (the case a probe caught on 2026-12-03). No server runs here.
 */
import { describe, expect, it } from "vitest";
import { type GrantRecord, overtakesAtLock, overtakesOnTheWire } from "../../bench/fifo.ts";

const T = 1_796_293_346_722;

describe("the bench's overtake counts", () => {
  it("count nothing when grants follow the order requests were sent and reached the lock", () => {
    const grants: GrantRecord[][] = [
      [[T, T + 10, T + 1, 1]],
      [[T + 2, T + 20, T + 3, 2]],
      [[T + 4, T + 30, T + 5, 3]],
    ];
    expect(overtakesOnTheWire(grants)).toBe(0);
    expect(overtakesAtLock(grants)).toBe(0);
  });

  it("tell a request delivered late from a grant out of turn (the probe's case)", () => {
    // Process 1 sent first but its request reached the lock 1 ms after process 3's, which was served first.
    const grants: GrantRecord[][] = [
      [],
      [[T + 0.73, T + 19.07, T + 10, 102]],
      [],
      [[T + 7.44, T + 13.86, T + 9, 101]],
    ];
    expect(overtakesOnTheWire(grants)).toBe(1);
    expect(overtakesAtLock(grants)).toBe(0);
  });

  it("flag a lock that serves a later arrival first, whenever the requests were sent", () => {
    // Process 0's request reached the lock 2 ms before process 1's, yet process 1 got the earlier token.
    const sentApart: GrantRecord[][] = [[[T, T + 20, T + 1, 2]], [[T + 10, T + 15, T + 12, 1]]];
    expect(overtakesAtLock(sentApart)).toBe(1);
    expect(overtakesOnTheWire(sentApart)).toBe(1);
    // Sent within the wire count's 5 ms slack, so only the count at the lock sees it.
    const sentTogether: GrantRecord[][] = [[[T, T + 20, T + 1, 2]], [[T + 1, T + 15, T + 3, 1]]];
    expect(overtakesAtLock(sentTogether)).toBe(1);
    expect(overtakesOnTheWire(sentTogether)).toBe(0);
  });

  it("do not order two arrivals within one millisecond, nor one process's own grants", () => {
    const sameMs: GrantRecord[][] = [[[T, T + 20, T + 5, 2]], [[T + 1, T + 15, T + 5, 1]]];
    expect(overtakesAtLock(sameMs)).toBe(0);
    const oneProcess: GrantRecord[][] = [
      [
        [T, T + 20, T + 1, 2],
        [T + 10, T + 15, T + 12, 1],
      ],
    ];
    expect(overtakesAtLock(oneProcess)).toBe(0);
    expect(overtakesOnTheWire(oneProcess)).toBe(0);
  });

  it("give no count at the lock when a grant does not say when it arrived (a re-polled wait)", () => {
    const grants: GrantRecord[][] = [[[T, T + 10, T + 1, 1]], [[T + 2, T + 20, null, 2]]];
    expect(overtakesAtLock(grants)).toBeNull();
    expect(overtakesOnTheWire(grants)).toBe(0);
  });
});
