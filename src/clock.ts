/**
 * The one source of time for every component. State is computed lazily from these timestamps,
 * so a fake clock (or sinon's fake timers, which replace `Date.now`) drives every transition.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch (wall time, so snapshots survive a restart) */
  now(): number
}

export const systemClock: Clock = {
  now: () => Date.now()
}

/**
 * A source of uniformly distributed numbers in [0, 1): used only for jitter. Inject a seeded one to
 * make backoff repeatable in tests.
 */
export type RandomSource = () => number

export const defaultRandom: RandomSource = Math.random

/** A tiny seeded generator (mulberry32) for repeatable tests and benchmarks */
export function seededRandom (seed: number): RandomSource {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
