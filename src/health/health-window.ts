import { LatencyHistogram } from './latency-histogram.ts'
import { bucketIndex, previousWeight } from './window.ts'
import type { ResolvedHealthMonitorConfig } from './config.ts'

// status codes; 0 so that a fresh window reads UNKNOWN
export const UNKNOWN = 0
export const HEALTHY = 1
export const DEGRADED = 2
export const UNHEALTHY = 3

/** p95 > maxResponseTime exactly when more than this share of requests is slower than it */
const SLOW_SHARE = 0.05
/** Thresholds are inclusive; this absorbs float rounding of the weighted window (0.8 stays 0.8) */
const EPSILON = 1e-9
/** Weight of a new response in the mean once the first 1/MEAN_ALPHA are in */
const MEAN_ALPHA = 0.1
/** Bits of one window bucket's counter; counters halve before they pass the max, keeping their ratios */
const COUNTER_BITS = 15
const COUNTER_SPAN = 2 ** COUNTER_BITS
const MAX_BUCKET_COUNT = COUNTER_SPAN - 1
/** The error run stops counting here */
const MAX_RUN = 0xFFFF
const MAX_TOTAL = 0xFFFFFFFF
/** Response times are clamped to this (about 24 days) so that Infinity cannot poison the mean */
const MAX_RESPONSE_TIME = 2 ** 31

/**
 * One peer's health: two window buckets (see window.ts), lifetime totals, the error run, latency.
 * Kept in `PeerRecord.health`, created at the peer's first recorded request. It is its own latency
 * histogram (a separate object would cost another 32 bytes a peer).
 */
export class HealthWindow extends LatencyHistogram {
  /** Last recorded request (clock ms) */
  lastSeen = 0
  /** `bucketIndex(lastSeen)`, kept so that a write costs one division */
  bucket = 0
  // each pair holds the previous bucket's count in its high bits and the current one's in its low
  // 15 (two fields for six counters: a small integer has 31 bits)
  private okPair = 0
  private failedPair = 0
  private slowPair = 0
  /** Requests recorded since the record was created */
  total = 0
  errors = 0
  consecutive = 0
  lastResponse = 0
  meanResponse = 0
  /** The status last reported (an event goes out when it changes) */
  reported = UNKNOWN

  get previousOk (): number { return this.okPair >>> COUNTER_BITS }
  set previousOk (n: number) { this.okPair = n * COUNTER_SPAN + (this.okPair & MAX_BUCKET_COUNT) }
  get currentOk (): number { return this.okPair & MAX_BUCKET_COUNT }
  set currentOk (n: number) { this.okPair = (this.okPair - (this.okPair & MAX_BUCKET_COUNT)) + n }

  get previousFailed (): number { return this.failedPair >>> COUNTER_BITS }
  set previousFailed (n: number) { this.failedPair = n * COUNTER_SPAN + (this.failedPair & MAX_BUCKET_COUNT) }
  get currentFailed (): number { return this.failedPair & MAX_BUCKET_COUNT }
  set currentFailed (n: number) { this.failedPair = (this.failedPair - (this.failedPair & MAX_BUCKET_COUNT)) + n }

  /** Counts one request in the current bucket (the pair's low bits; `halve` keeps them below the max) */
  countOk (): void { this.okPair++ }
  countFailed (): void { this.failedPair++ }
  countSlow (): void { this.slowPair++ }

  /** Whether a counter of the current bucket is at its max */
  get full (): boolean {
    return (this.okPair & MAX_BUCKET_COUNT) === MAX_BUCKET_COUNT || (this.failedPair & MAX_BUCKET_COUNT) === MAX_BUCKET_COUNT || (this.slowPair & MAX_BUCKET_COUNT) === MAX_BUCKET_COUNT
  }

  get previousSlow (): number { return this.slowPair >>> COUNTER_BITS }
  set previousSlow (n: number) { this.slowPair = n * COUNTER_SPAN + (this.slowPair & MAX_BUCKET_COUNT) }
  get currentSlow (): number { return this.slowPair & MAX_BUCKET_COUNT }
  set currentSlow (n: number) { this.slowPair = (this.slowPair - (this.slowPair & MAX_BUCKET_COUNT)) + n }
}

/** Starts a fresh record but keeps the reported status, so events stay a chain */
export function restart (w: HealthWindow): void {
  w.lastSeen = 0
  w.bucket = 0
  w.previousOk = w.previousFailed = w.previousSlow = 0
  w.currentOk = w.currentFailed = w.currentSlow = 0
  w.total = w.errors = w.consecutive = 0
  w.lastResponse = w.meanResponse = 0
  w.clear()
}

/**
 * Adds one request (not neutral) at `now`. Returns true when the status must be recomputed: false
 * only for a quick success of a HEALTHY peer within the same bucket, which cannot start a change
 * worth an event (only the previous bucket fading could, and the next failure or roll reports it).
 */
export function addSample (w: HealthWindow, config: ResolvedHealthMonitorConfig, now: number, responseTimeMs: number, success: boolean): boolean {
  const responseTime = responseTimeMs >= 0 ? Math.min(responseTimeMs, MAX_RESPONSE_TIME) : 0
  const rolled = roll(w, config.window, now)
  if (w.full) {
    halve(w)
  }
  const total = w.total < MAX_TOTAL ? w.total + 1 : MAX_TOTAL
  w.total = total
  if (success) {
    w.countOk()
    w.consecutive = 0
  } else {
    countFailure(w)
  }
  const slow = responseTime > config.maxResponseTime
  if (slow) {
    w.countSlow()
  }
  w.lastResponse = responseTime
  const alpha = total < 1 / MEAN_ALPHA ? 1 / total : MEAN_ALPHA
  w.meanResponse += alpha * (responseTime - w.meanResponse)
  w.add(responseTime)
  return !success || rolled || slow || w.reported !== HEALTHY
}

/** A failure's counts (out of line: `addSample` stays small enough to inline) */
function countFailure (w: HealthWindow): void {
  w.countFailed()
  if (w.errors < MAX_TOTAL) {
    w.errors++
  }
  if (w.consecutive < MAX_RUN) {
    w.consecutive++
  }
}

/** Whether the window holds a request no older than `maxAge` */
export function isLive (w: HealthWindow | undefined, now: number, maxAge: number): w is HealthWindow {
  return w !== undefined && w.total > 0 && now - w.lastSeen <= maxAge
}

/** The status code at `now` (see `HealthMonitor` for the rules, in order) */
export function computeStatus (w: HealthWindow, config: ResolvedHealthMonitorConfig, now: number): number {
  const minSamples = config.minSamples
  if (w.total < minSamples) {
    return UNKNOWN
  }
  if (w.consecutive >= config.maxConsecutiveErrors) {
    return UNHEALTHY
  }
  const elapsed = bucketIndex(now, config.window) - w.bucket
  let count = 0
  let ok = 0
  let failed = 0
  let slow = 0
  if (elapsed <= 0) {
    const weight = elapsed < 0 ? 1 : previousWeight(now, config.window)
    count = w.previousOk + w.previousFailed + w.currentOk + w.currentFailed
    ok = w.previousOk * weight + w.currentOk
    failed = w.previousFailed * weight + w.currentFailed
    slow = w.previousSlow * weight + w.currentSlow
  } else if (elapsed === 1) {
    const weight = previousWeight(now, config.window)
    count = w.currentOk + w.currentFailed
    ok = w.currentOk * weight
    failed = w.currentFailed * weight
    slow = w.currentSlow * weight
  }
  if (count < minSamples) {
    return UNKNOWN
  }
  const requests = ok + failed
  if (requests <= 0) {
    return UNKNOWN
  }
  const rate = ok / requests
  if (rate + EPSILON < config.degradedThreshold) {
    return UNHEALTHY
  }
  if (rate + EPSILON < config.healthyThreshold || slow / requests > SLOW_SHARE + EPSILON) {
    return DEGRADED
  }
  return HEALTHY
}

/** Successes / requests over the sliding window; the lifetime ratio when the window is empty */
export function successRate (w: HealthWindow, window: number, now: number): number {
  const elapsed = bucketIndex(now, window) - w.bucket
  let ok = 0
  let failed = 0
  if (elapsed <= 0) {
    const weight = elapsed < 0 ? 1 : previousWeight(now, window)
    ok = w.previousOk * weight + w.currentOk
    failed = w.previousFailed * weight + w.currentFailed
  } else if (elapsed === 1) {
    const weight = previousWeight(now, window)
    ok = w.currentOk * weight
    failed = w.currentFailed * weight
  }
  const requests = ok + failed
  if (requests > 0) {
    return ok / requests
  }
  return (w.total - w.errors) / w.total
}

/** Moves the buckets forward to `now`; true when the current bucket changed */
function roll (w: HealthWindow, window: number, now: number): boolean {
  if (w.total > 0 && now >= w.bucket * window && now < (w.bucket + 1) * window) {
    // the same bucket: a multiplication instead of a division on the hot path
    if (now > w.lastSeen) {
      w.lastSeen = now
    }
    return false
  }
  return rollOver(w, window, now)
}

/** `roll` into another bucket (out of line: the same-bucket case stays small enough to inline) */
function rollOver (w: HealthWindow, window: number, now: number): boolean {
  const bucket = bucketIndex(now, window)
  if (w.total === 0) {
    w.lastSeen = now
    w.bucket = bucket
    return true
  }
  const elapsed = bucket - w.bucket
  if (elapsed === 1) {
    w.previousOk = w.currentOk
    w.previousFailed = w.currentFailed
    w.previousSlow = w.currentSlow
  } else if (elapsed > 1) {
    w.previousOk = w.previousFailed = w.previousSlow = 0
  }
  if (elapsed >= 1) {
    w.currentOk = w.currentFailed = w.currentSlow = 0
    w.decay(elapsed)
  }
  // a clock that steps back keeps the newer bucket, so buckets never go backwards
  if (now > w.lastSeen) {
    w.lastSeen = now
    if (elapsed > 0) {
      w.bucket = bucket
    }
  }
  return elapsed >= 1
}

/** Keeps the ratios when a counter of the current bucket would overflow */
function halve (w: HealthWindow): void {
  w.previousOk >>= 1
  w.previousFailed >>= 1
  w.previousSlow >>= 1
  w.currentOk >>= 1
  w.currentFailed >>= 1
  w.currentSlow >>= 1
}
