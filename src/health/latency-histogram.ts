/**
 * A per-peer latency histogram small enough to keep for every peer: 32 seven-bit counters on a
 * logarithmic scale, packed four to a small integer field (a `Uint8Array` per peer would cost
 * about 250 bytes where these cost 64).
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
const MAX_COUNT = 127

/** The bucket a response time in ms falls into */
export function histogramBucket (ms: number): number {
  if (!(ms >= 1)) {
    return 0
  }
  if (ms >= 2 ** 31) {
    return LAST
  }
  // floor(2 log2 ms) + 1 without a logarithm: the power of two below ms, then which half-step
  const k = 31 - Math.clz32(ms)
  const bucket = 2 * k + (ms >= HALF_STEPS[k] ? 2 : 1)
  return bucket > LAST ? LAST : bucket
}

/** `2^(k + 1/2)`, the lower bound of bucket `2k + 2`, computed as `bucketLower` computes it */
const HALF_STEPS: readonly number[] = Array.from({ length: 32 }, (_, k) => 2 ** ((2 * k + 1) / 2))

/** Lower bound of a bucket in ms */
export function bucketLower (bucket: number): number {
  return bucket === 0 ? 0 : 2 ** ((bucket - 1) / 2)
}

/** Upper bound of a bucket in ms */
export function bucketUpper (bucket: number): number {
  return 2 ** (bucket / 2)
}

/** Counters per field, of `BITS` bits each: 28 bits stay a small integer (V8's Smi has 31) */
const PER_WORD = 4
const BITS = 7
const WORDS = HISTOGRAM_BUCKETS / PER_WORD

/** The 32 counters of one peer */
export class LatencyHistogram {
  private w0 = 0
  private w1 = 0
  private w2 = 0
  private w3 = 0
  private w4 = 0
  private w5 = 0
  private w6 = 0
  private w7 = 0

  /** The counter of one bucket */
  count (bucket: number): number {
    return (this.word((bucket / PER_WORD) | 0) >>> ((bucket % PER_WORD) * BITS)) & MAX_COUNT
  }

  /** Counts one sample */
  add (ms: number): void {
    const bucket = histogramBucket(ms)
    const index = (bucket / PER_WORD) | 0
    const shift = (bucket % PER_WORD) * BITS
    let word = this.word(index)
    if (((word >>> shift) & MAX_COUNT) === MAX_COUNT) {
      this.decay(1)
      word = this.word(index)
    }
    this.setWord(index, word + (1 << shift))
  }

  /** Halves every counter `times` times (once per elapsed window) */
  decay (times: number): void {
    if (times <= 0) {
      return
    }
    if (times >= BITS) {
      this.clear()
      return
    }
    const counter = MAX_COUNT >>> times
    const mask = counter | (counter << BITS) | (counter << 2 * BITS) | (counter << 3 * BITS)
    for (let i = 0; i < WORDS; i++) {
      this.setWord(i, (this.word(i) >>> times) & mask)
    }
  }

  clear (): void {
    for (let i = 0; i < WORDS; i++) {
      this.setWord(i, 0)
    }
  }

  /**
   * The `q`-quantile (0..1) of the counted samples in ms, or `fallback` when the histogram is
   * empty. Allocation-free: one pass to total the counters and one to find the quantile.
   */
  quantile (q: number, fallback: number): number {
    let total = 0
    for (let bucket = 0; bucket < HISTOGRAM_BUCKETS; bucket++) {
      total += this.count(bucket)
    }
    if (total === 0) {
      return fallback
    }
    const target = q * total
    let cumulative = 0
    for (let bucket = 0; bucket < HISTOGRAM_BUCKETS; bucket++) {
      const count = this.count(bucket)
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

  private word (index: number): number {
    switch (index) {
      case 0: return this.w0
      case 1: return this.w1
      case 2: return this.w2
      case 3: return this.w3
      case 4: return this.w4
      case 5: return this.w5
      case 6: return this.w6
      default: return this.w7
    }
  }

  private setWord (index: number, value: number): void {
    switch (index) {
      case 0: this.w0 = value; return
      case 1: this.w1 = value; return
      case 2: this.w2 = value; return
      case 3: this.w3 = value; return
      case 4: this.w4 = value; return
      case 5: this.w5 = value; return
      case 6: this.w6 = value; return
      default: this.w7 = value
    }
  }
}
