/**
 * The success rate's sliding window, as two fixed buckets per peer: the current one and the one
 * before it, each one window long and aligned to multiples of the window. The previous bucket is
 * weighted by the share of it that still overlaps `[now - window, now]`, so the estimate slides
 * smoothly instead of dropping a whole bucket at once (the "sliding window counter" of rate
 * limiters). It assumes the previous bucket's requests were spread evenly over it.
 *
 * Every elapsed bucket is evicted, however long the peer was idle: one bucket later the current
 * counts become the previous ones, two or more buckets later both are empty. (cockatiel's
 * SamplingBreaker rotates a single bucket per call and so keeps stale counts after an idle gap.)
 */

/** The index of the bucket holding time `t` */
export function bucketIndex (t: number, window: number): number {
  return Math.floor(t / window)
}

/** The weight in [0, 1] of the previous bucket at `now`: the part of it still inside the window */
export function previousWeight (now: number, window: number): number {
  const elapsed = (now - Math.floor(now / window) * window) / window
  return elapsed >= 1 ? 0 : 1 - elapsed
}
