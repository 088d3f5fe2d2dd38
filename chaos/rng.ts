/**
 * A tiny seeded PRNG (mulberry32) and the few draws the harness needs. Every random choice of the chaos run
 * comes from one of these, derived from the run's seed, so that a seed reproduces the same fault plan
 * (the interleaving of real processes still varies from run to run).
 */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** A lease id from the seeded stream, valid for the API (16–128 of A–Z a–z 0–9 _ -). */
  id(prefix: string): string;
}

export function makeRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: (items) => {
      if (items.length === 0) throw new Error("pick from an empty list");
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
    id: (prefix) =>
      `${prefix}-${Math.floor(next() * 2 ** 32).toString(36)}${Math.floor(next() * 2 ** 32).toString(36)}`.padEnd(
        16,
        "0",
      ),
  };
}

/** Derives an independent stream for a named part of the run (a client incarnation, the proxy, ...). */
export function childSeed(seed: number, ...parts: number[]): number {
  let h = seed >>> 0;
  for (const p of parts) h = Math.imul(h ^ (p + 0x9e3779b9), 0x85ebca6b) >>> 0;
  return h;
}
