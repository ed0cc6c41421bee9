/**
 * A per-peer latency histogram small enough to keep for every peer: 32 one-byte counters on a
 * logarithmic scale, stored in a `Uint8Array` from `base` (each health window owns one, at 0).
 *
 * Bucket 0 holds responses under 1 ms; bucket `b` (1..31) holds `[2^((b-1)/2), 2^(b/2))` ms, so
 * buckets are √2 apart and cover 1 ms .. 46 s (slower responses land in the last bucket). A quantile
 * is read by walking the cumulative counts and interpolating geometrically inside the bucket that
 * holds it.
 *
 * Accuracy: the estimate lies in the same bucket as the exact quantile of the samples the histogram
 * holds, so it is never off by more than a factor of √2 (+41 % / -29 %); on smooth distributions
 * with a few hundred samples it is typically within 10 % (see test/unit/health/latency-histogram.spec.ts).
 *
 * Recency: when a counter would overflow, every counter is halved, and the monitor halves them once
 * per elapsed health window, so old samples fade with a half-life of one window. Halving rounds
 * down, which drops lone samples first: a bias towards recent data, never towards stale outliers.
 */

export const HISTOGRAM_BUCKETS = 32

const LAST = HISTOGRAM_BUCKETS - 1
const MAX_COUNT = 255

/** The bucket a response time in ms falls into */
export function histogramBucket (ms: number): number {
  if (!(ms >= 1)) {
    return 0
  }
  const bucket = Math.floor(2 * Math.log2(ms)) + 1
  return bucket > LAST ? LAST : bucket
}

/** Lower bound of a bucket in ms */
export function bucketLower (bucket: number): number {
  return bucket === 0 ? 0 : 2 ** ((bucket - 1) / 2)
}

/** Upper bound of a bucket in ms */
export function bucketUpper (bucket: number): number {
  return 2 ** (bucket / 2)
}

/** Counts one sample */
export function histogramAdd (counts: Uint8Array, base: number, ms: number): void {
  const index = base + histogramBucket(ms)
  if (counts[index] === MAX_COUNT) {
    histogramDecay(counts, base, 1)
  }
  counts[index]++
}

/** Halves every counter `times` times (once per elapsed window) */
export function histogramDecay (counts: Uint8Array, base: number, times: number): void {
  if (times <= 0) {
    return
  }
  const end = base + HISTOGRAM_BUCKETS
  if (times >= 8) {
    counts.fill(0, base, end)
    return
  }
  for (let i = base; i < end; i++) {
    counts[i] >>= times
  }
}

/**
 * The `q`-quantile (0..1) of the counted samples in ms, or `fallback` when the histogram is empty.
 * Allocation-free: one pass over 32 counters to total them and one to find the quantile.
 */
export function histogramQuantile (counts: Uint8Array, base: number, q: number, fallback: number): number {
  const end = base + HISTOGRAM_BUCKETS
  let total = 0
  for (let i = base; i < end; i++) {
    total += counts[i]
  }
  if (total === 0) {
    return fallback
  }
  const target = q * total
  let cumulative = 0
  for (let bucket = 0; bucket < HISTOGRAM_BUCKETS; bucket++) {
    const count = counts[base + bucket]
    if (count === 0) {
      continue
    }
    if (cumulative + count >= target) {
      const fraction = (target - cumulative) / count
      if (bucket === 0) {
        return fraction * bucketUpper(0)
      }
      // samples are assumed spread evenly on the log scale inside a bucket
      return bucketLower(bucket) * Math.SQRT2 ** fraction
    }
    cumulative += count
  }
  return bucketUpper(LAST)
}
