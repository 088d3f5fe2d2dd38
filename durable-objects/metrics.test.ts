/** The Analytics Engine data points of a step (durable-objects/metrics.ts), from real steps of the machine. */
import { describe, expect, it } from "vitest";
import { acq, rel, run, T0 } from "./lock-state.fixtures.ts";
import { dataPointsOf } from "./metrics.ts";

describe("metrics", () => {
  it("are one data point per event, and one per refused acquire, by lock name", () => {
    const steps = run([
      [T0, acq("a", { owner: "alice" })],
      [T0 + 5, acq("b", { waitMs: 1_000, owner: "bob" })],
      [T0 + 10, acq("c", { owner: "carol" })],
      [T0 + 300, rel("a")],
    ]);
    const commands = [
      acq("a", { owner: "alice" }),
      acq("b", { waitMs: 1_000 }),
      acq("c", { owner: "carol" }),
    ];
    const points = steps.map((s, i) =>
      dataPointsOf("billing:x", commands[i] ?? rel("a"), s.outcome, s.effects.events),
    );
    expect(points[0]).toEqual([
      {
        indexes: ["billing:x"],
        blobs: ["billing:x", "granted", "immediate", "exclusive", "alice"],
        doubles: [0, 0, 1, 1],
      },
    ]);
    expect(points[1]).toEqual([]);
    expect(points[2]).toEqual([
      {
        indexes: ["billing:x"],
        blobs: ["billing:x", "refused", "lock_held", "exclusive", "carol"],
        doubles: [0, 0, 1, 0],
      },
    ]);
    expect(points[3]?.map((p) => [p.blobs?.[1], p.blobs?.[2], p.doubles])).toEqual([
      ["released", "lease_ended", [0, 300, 1, 1]],
      ["granted", "after_wait", [295, 0, 1, 2]],
    ]);
  });

  it("index at most 96 characters of a long name", () => {
    const name = "n".repeat(200);
    const [step] = run([[T0, acq("a")]]);
    const [point] = dataPointsOf(
      name,
      acq("a"),
      step?.outcome ?? { kind: "none" },
      step?.effects.events ?? [],
    );
    expect(point?.indexes?.[0]).toHaveLength(96);
    expect(point?.blobs?.[0]).toBe(name);
  });
});
