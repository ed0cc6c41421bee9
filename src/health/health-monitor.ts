import { systemClock } from '../clock.ts'
import { isAbortError } from '../errors.ts'
import { EventEmitter } from '../event.ts'
import { growColumn } from '../peers/columns.ts'
import { PeerRegistry } from '../peers/registry.ts'
import { HealthStatus, Outcome } from '../states.ts'
import { resolveHealthMonitorConfig } from './config.ts'
import { HISTOGRAM_BUCKETS, histogramAdd, histogramDecay, histogramQuantile } from './latency-histogram.ts'
import { bucketIndex, previousWeight } from './window.ts'
import type { HealthMonitorConfig, ResolvedHealthMonitorConfig } from './config.ts'
import type { Clock } from '../clock.ts'
import type { Disposable, Listener } from '../event.ts'
import type { SlotColumns } from '../peers/columns.ts'
import type { PeerLike } from '../peers/peer-key.ts'

export interface HealthMonitorOptions {
  /** @default the registry's clock, else systemClock */
  clock?: Clock

  /**
   * A registry shared with the other per-peer components (breaker, recovery). Without one the
   * monitor creates its own, whose `idleTimeout` is `maxAge`; `maxPeers` then applies to it.
   */
  registry?: PeerRegistry

  /** @default 10000 */
  maxPeers?: number
}

/** A snapshot of one peer's health */
export interface HealthSnapshot {
  /** The peer as it was first recorded */
  peer: PeerLike
  /** When its last request was recorded (clock ms) */
  lastSeen: number
  /**
   * Successes / requests over the sliding window. When the window holds no request (the peer was
   * idle for two windows) this is the lifetime ratio, the last thing known.
   */
  successRate: number
  /** Exact mean of the first 10 response times, then an exponentially weighted mean (weight 0.1) */
  meanResponseTime: number
  /** Estimated from a log-scale histogram whose counts halve every window (see latency-histogram.ts) */
  p95ResponseTime: number
  lastResponseTime: number
  /** Requests recorded since the record was created (aborted ones excluded) */
  totalRequests: number
  errorCount: number
  consecutiveErrors: number
  /** The error of the last request, or undefined when it succeeded */
  lastError: unknown
  status: HealthStatus
}

export interface HealthStats {
  totalPeers: number
  healthyPeers: number
  degradedPeers: number
  unhealthyPeers: number
  unknownPeers: number
  /** Mean of the peers' success rates (UNKNOWN peers included, as in the seed); 0 with no peers */
  averageSuccessRate: number
  /** Mean of the peers' mean response times; 0 with no peers */
  averageResponseTime: number
}

export interface HealthStatusChange {
  peer: PeerLike
  from: HealthStatus
  to: HealthStatus
}

// status codes in the `reported` column; 0 so that a reset slot reads UNKNOWN
const UNKNOWN = 0
const HEALTHY = 1
const DEGRADED = 2
const UNHEALTHY = 3
const STATUS_NAMES: readonly HealthStatus[] = [HealthStatus.UNKNOWN, HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY]

/** p95 > maxResponseTime exactly when more than this share of requests is slower than it */
const SLOW_SHARE = 0.05
/** Thresholds are inclusive; this absorbs float rounding of the weighted window (0.8 stays 0.8) */
const EPSILON = 1e-9
/** Weight of a new response in the mean once the first 1/MEAN_ALPHA are in */
const MEAN_ALPHA = 0.1
const MAX_UINT16 = 0xFFFF
const MAX_UINT32 = 0xFFFFFFFF
/** Response times are clamped to this (about 24 days) so that Infinity cannot poison the mean */
const MAX_RESPONSE_TIME = 2 ** 31

/**
 * Tracks how each peer is doing from the requests recorded against it: a sliding-window success
 * rate, latency, and error runs, summarised as HEALTHY / DEGRADED / UNHEALTHY / UNKNOWN.
 *
 * Status, in this order (seed bug 19 fixed: the rate is checked before latency):
 * 1. UNKNOWN: fewer than `minSamples` requests recorded;
 * 2. UNHEALTHY: at least `maxConsecutiveErrors` errors in a row;
 * 3. UNKNOWN: fewer than `minSamples` requests in the window (current + previous bucket), i.e. no
 *    recent evidence;
 * 4. UNHEALTHY: windowed success rate below `degradedThreshold`;
 * 5. DEGRADED: windowed success rate below `healthyThreshold`, or the windowed p95 response time
 *    above `maxResponseTime`. The p95 check is exact over the window: it is "more than 5 % of the
 *    window's requests were slower than `maxResponseTime`";
 * 6. HEALTHY.
 *
 * Per-peer state is kept in columns of a `PeerRegistry` (about 75 bytes a peer). Nothing runs in the
 * background: windows roll and stale peers expire when they are next read or written.
 * `onStatusChange` fires when a recorded request changes a peer's status, after the state is
 * updated; a change caused only by time passing is reported with the peer's next request.
 */
export class HealthMonitor implements SlotColumns {
  readonly config: Readonly<ResolvedHealthMonitorConfig>
  readonly registry: PeerRegistry
  /** Subscribes to status changes; returns a disposable */
  readonly onStatusChange: (listener: Listener<HealthStatusChange>) => Disposable

  private readonly clock: Clock
  private readonly ownRegistry: boolean
  private readonly statusChange = new EventEmitter<HealthStatusChange>()
  private closed = false

  // -- columns --
  /** Last recorded request; also identifies the current window bucket */
  private lastSeen: Float64Array = new Float64Array(0)
  private previousOk: Uint16Array = new Uint16Array(0)
  private previousFailed: Uint16Array = new Uint16Array(0)
  private previousSlow: Uint16Array = new Uint16Array(0)
  private currentOk: Uint16Array = new Uint16Array(0)
  private currentFailed: Uint16Array = new Uint16Array(0)
  private currentSlow: Uint16Array = new Uint16Array(0)
  private total: Uint32Array = new Uint32Array(0)
  private errors: Uint32Array = new Uint32Array(0)
  private consecutive: Uint16Array = new Uint16Array(0)
  private lastResponse: Float32Array = new Float32Array(0)
  private meanResponse: Float32Array = new Float32Array(0)
  private reported: Uint8Array = new Uint8Array(0)
  private histogram: Uint8Array = new Uint8Array(0)
  /** Only peers whose last request failed have an entry */
  private readonly lastErrors = new Map<number, unknown>()

  // scratch results of `readWindow`, so the hot path allocates nothing
  private windowOk = 0
  private windowFailed = 0
  private windowSlow = 0
  private windowCount = 0

  constructor (config: HealthMonitorConfig = {}, options: HealthMonitorOptions = {}) {
    this.config = resolveHealthMonitorConfig(config)
    this.clock = options.clock ?? options.registry?.clock ?? systemClock
    this.ownRegistry = options.registry == null
    this.registry = options.registry ?? new PeerRegistry({
      maxPeers: options.maxPeers,
      idleTimeout: this.config.maxAge,
      clock: this.clock
    })
    this.onStatusChange = this.statusChange.listen
    this.registry.attach(this)
  }

  // -- peer-level API --

  /**
   * Records one request's outcome: `err == null` is a success, an error named `AbortError` is
   * neutral (not recorded: the caller gave up, the peer did nothing wrong), any other error is a
   * failure. `responseTimeMs` is clamped to >= 0.
   */
  recordRequest (peer: PeerLike, responseTimeMs: number, err?: unknown): void {
    if (this.closed || isAbortError(err)) {
      return
    }
    const now = this.clock.now()
    const slot = this.registry.slot(peer, now)
    if (slot === -1) {
      return
    }
    this.record(slot, now, responseTimeMs, err == null ? Outcome.SUCCESS : Outcome.FAILURE, err)
  }

  /** The peer's status; UNKNOWN when it has no (fresh) record */
  getHealthStatus (peer: PeerLike): HealthStatus {
    return this.status(this.registry.find(peer), this.clock.now())
  }

  isHealthy (peer: PeerLike): boolean {
    return this.getHealthStatus(peer) === HealthStatus.HEALTHY
  }

  /** A snapshot of the peer's health, or undefined when it has no fresh record */
  getHealth (peer: PeerLike): HealthSnapshot | undefined {
    const slot = this.registry.find(peer)
    const now = this.clock.now()
    if (!this.isLive(slot, now)) {
      return undefined
    }
    return this.snapshot(slot, now)
  }

  /** Snapshots of every peer with a fresh record, keyed by peer id string */
  getAllHealth (): Map<string, HealthSnapshot> {
    const now = this.clock.now()
    const all = new Map<string, HealthSnapshot>()
    this.registry.forEach((slot, key) => {
      if (this.isLive(slot, now)) {
        all.set(key, this.snapshot(slot, now))
      }
    })
    return all
  }

  getHealthStats (): HealthStats {
    const now = this.clock.now()
    const stats: HealthStats = {
      totalPeers: 0,
      healthyPeers: 0,
      degradedPeers: 0,
      unhealthyPeers: 0,
      unknownPeers: 0,
      averageSuccessRate: 0,
      averageResponseTime: 0
    }
    let rateSum = 0
    let responseSum = 0
    this.registry.forEach((slot) => {
      if (!this.isLive(slot, now)) {
        return
      }
      stats.totalPeers++
      switch (this.computeStatus(slot, now)) {
        case HEALTHY: stats.healthyPeers++; break
        case DEGRADED: stats.degradedPeers++; break
        case UNHEALTHY: stats.unhealthyPeers++; break
        default: stats.unknownPeers++
      }
      rateSum += this.successRate(slot, now)
      responseSum += this.meanResponse[slot]
    })
    if (stats.totalPeers > 0) {
      stats.averageSuccessRate = rateSum / stats.totalPeers
      stats.averageResponseTime = responseSum / stats.totalPeers
    }
    return stats
  }

  /**
   * Forgets a peer's health. A monitor with its own registry forgets the peer entirely; with a
   * shared registry only the health columns are cleared. No status event is emitted. Returns
   * whether the peer had a record.
   */
  removePeer (peer: PeerLike): boolean {
    const slot = this.registry.find(peer)
    if (slot === -1) {
      return false
    }
    const had = this.total[slot] > 0
    if (this.ownRegistry) {
      this.registry.delete(peer)
    } else {
      this.reset(slot)
    }
    return had
  }

  /**
   * Drops every stale record (no request for more than `maxAge`) now rather than lazily. Returns
   * how many were dropped.
   */
  prune (now: number = this.clock.now()): number {
    if (this.ownRegistry) {
      return this.registry.prune(now)
    }
    let removed = 0
    this.registry.forEach((slot) => {
      if (this.total[slot] > 0 && !this.isLive(slot, now)) {
        this.reset(slot)
        removed++
      }
    })
    return removed
  }

  /** Stops recording, drops every listener and forgets all health data */
  close (): void {
    if (this.closed) {
      return
    }
    this.closed = true
    this.statusChange.clear()
    if (this.ownRegistry) {
      this.registry.clear()
    } else {
      this.registry.forEach((slot) => { this.reset(slot) })
    }
  }

  // -- slot-level API (hot path: no peer lookup, no allocation unless the status changes) --

  /**
   * Records one request against a registry slot. NEUTRAL outcomes are ignored. The caller has
   * already touched the slot in the registry. `err` is kept as `lastError` on failure.
   */
  record (slot: number, now: number, responseTimeMs: number, outcome: Outcome, err?: unknown): void {
    if (this.closed || slot < 0 || outcome === Outcome.NEUTRAL) {
      return
    }
    if (this.total[slot] > 0 && now - this.lastSeen[slot] > this.config.maxAge) {
      // stale: start a fresh record, but keep the reported status so events stay a chain
      const reported = this.reported[slot]
      this.reset(slot)
      this.reported[slot] = reported
    }
    const responseTime = responseTimeMs >= 0 ? Math.min(responseTimeMs, MAX_RESPONSE_TIME) : 0
    const rolled = this.roll(slot, now)

    if (this.currentOk[slot] === MAX_UINT16 || this.currentFailed[slot] === MAX_UINT16 || this.currentSlow[slot] === MAX_UINT16) {
      this.halveWindow(slot)
    }
    const total = this.total[slot] < MAX_UINT32 ? this.total[slot] + 1 : MAX_UINT32
    this.total[slot] = total
    if (outcome === Outcome.SUCCESS) {
      this.currentOk[slot]++
      // only a failure (which starts a run) can have stored an error
      if (this.consecutive[slot] > 0) {
        this.consecutive[slot] = 0
        this.lastErrors.delete(slot)
      }
    } else {
      this.currentFailed[slot]++
      if (this.errors[slot] < MAX_UINT32) {
        this.errors[slot]++
      }
      if (this.consecutive[slot] < MAX_UINT16) {
        this.consecutive[slot]++
      }
      if (err === undefined) {
        this.lastErrors.delete(slot)
      } else {
        this.lastErrors.set(slot, err)
      }
    }
    if (responseTime > this.config.maxResponseTime) {
      this.currentSlow[slot]++
    }
    this.lastResponse[slot] = responseTime
    const alpha = total < 1 / MEAN_ALPHA ? 1 / total : MEAN_ALPHA
    this.meanResponse[slot] += alpha * (responseTime - this.meanResponse[slot])
    histogramAdd(this.histogram, slot * HISTOGRAM_BUCKETS, responseTime)

    // the hot path: a quick success of a HEALTHY peer within the same bucket cannot start a change
    // worth an event (only the previous bucket fading could, and the next failure or roll reports it)
    if (outcome === Outcome.SUCCESS && !rolled && this.reported[slot] === HEALTHY && responseTime <= this.config.maxResponseTime) {
      return
    }
    const to = this.computeStatus(slot, now)
    const from = this.reported[slot]
    if (to !== from) {
      this.reported[slot] = to
      if (this.statusChange.size > 0) {
        this.statusChange.emit({ peer: this.registry.peer(slot), from: STATUS_NAMES[from], to: STATUS_NAMES[to] })
      }
    }
  }

  /** The status of a slot at `now`; UNKNOWN for -1, an empty or a stale slot */
  status (slot: number, now: number): HealthStatus {
    if (!this.isLive(slot, now)) {
      return HealthStatus.UNKNOWN
    }
    return STATUS_NAMES[this.computeStatus(slot, now)]
  }

  // -- SlotColumns --

  grow (capacity: number): void {
    this.lastSeen = growColumn(this.lastSeen, capacity)
    this.previousOk = growColumn(this.previousOk, capacity)
    this.previousFailed = growColumn(this.previousFailed, capacity)
    this.previousSlow = growColumn(this.previousSlow, capacity)
    this.currentOk = growColumn(this.currentOk, capacity)
    this.currentFailed = growColumn(this.currentFailed, capacity)
    this.currentSlow = growColumn(this.currentSlow, capacity)
    this.total = growColumn(this.total, capacity)
    this.errors = growColumn(this.errors, capacity)
    this.consecutive = growColumn(this.consecutive, capacity)
    this.lastResponse = growColumn(this.lastResponse, capacity)
    this.meanResponse = growColumn(this.meanResponse, capacity)
    this.reported = growColumn(this.reported, capacity)
    this.histogram = growColumn(this.histogram, capacity * HISTOGRAM_BUCKETS)
  }

  reset (slot: number): void {
    this.lastSeen[slot] = 0
    this.previousOk[slot] = 0
    this.previousFailed[slot] = 0
    this.previousSlow[slot] = 0
    this.currentOk[slot] = 0
    this.currentFailed[slot] = 0
    this.currentSlow[slot] = 0
    this.total[slot] = 0
    this.errors[slot] = 0
    this.consecutive[slot] = 0
    this.lastResponse[slot] = 0
    this.meanResponse[slot] = 0
    this.reported[slot] = UNKNOWN
    this.histogram.fill(0, slot * HISTOGRAM_BUCKETS, (slot + 1) * HISTOGRAM_BUCKETS)
    this.lastErrors.delete(slot)
  }

  /** Health data is only a summary: it never keeps a peer from being forgotten */
  evictable (_slot: number, _now: number): boolean {
    return true
  }

  // -- internals --

  private isLive (slot: number, now: number): boolean {
    return slot >= 0 && this.total[slot] > 0 && now - this.lastSeen[slot] <= this.config.maxAge
  }

  /** Moves the window buckets forward to `now` (on write only; reads compute the same virtually) */
  /** Moves the window to `now`; true when the current bucket changed */
  private roll (slot: number, now: number): boolean {
    const last = this.lastSeen[slot]
    if (this.total[slot] === 0) {
      this.lastSeen[slot] = now
      return true
    }
    const window = this.config.window
    const elapsed = bucketIndex(now, window) - bucketIndex(last, window)
    if (elapsed === 1) {
      this.previousOk[slot] = this.currentOk[slot]
      this.previousFailed[slot] = this.currentFailed[slot]
      this.previousSlow[slot] = this.currentSlow[slot]
    } else if (elapsed > 1) {
      this.previousOk[slot] = 0
      this.previousFailed[slot] = 0
      this.previousSlow[slot] = 0
    }
    if (elapsed >= 1) {
      this.currentOk[slot] = 0
      this.currentFailed[slot] = 0
      this.currentSlow[slot] = 0
      histogramDecay(this.histogram, slot * HISTOGRAM_BUCKETS, elapsed)
    }
    // a clock that steps back keeps the newer bucket, so buckets never go backwards
    if (now > last) {
      this.lastSeen[slot] = now
    }
    return elapsed >= 1
  }

  /** Keeps the ratios when a counter of the current bucket would overflow */
  private halveWindow (slot: number): void {
    this.previousOk[slot] >>= 1
    this.previousFailed[slot] >>= 1
    this.previousSlow[slot] >>= 1
    this.currentOk[slot] >>= 1
    this.currentFailed[slot] >>= 1
    this.currentSlow[slot] >>= 1
  }

  /** Fills the scratch fields with the weighted window counts at `now` */
  private readWindow (slot: number, now: number): void {
    const window = this.config.window
    const elapsed = bucketIndex(now, window) - bucketIndex(this.lastSeen[slot], window)
    let previousOk = 0
    let previousFailed = 0
    let previousSlow = 0
    let currentOk = 0
    let currentFailed = 0
    let currentSlow = 0
    if (elapsed <= 0) {
      previousOk = this.previousOk[slot]
      previousFailed = this.previousFailed[slot]
      previousSlow = this.previousSlow[slot]
      currentOk = this.currentOk[slot]
      currentFailed = this.currentFailed[slot]
      currentSlow = this.currentSlow[slot]
    } else if (elapsed === 1) {
      previousOk = this.currentOk[slot]
      previousFailed = this.currentFailed[slot]
      previousSlow = this.currentSlow[slot]
    }
    const weight = elapsed < 0 ? 1 : previousWeight(now, window)
    this.windowOk = previousOk * weight + currentOk
    this.windowFailed = previousFailed * weight + currentFailed
    this.windowSlow = previousSlow * weight + currentSlow
    this.windowCount = previousOk + previousFailed + currentOk + currentFailed
  }

  private computeStatus (slot: number, now: number): number {
    const minSamples = this.config.minSamples
    if (this.total[slot] < minSamples) {
      return UNKNOWN
    }
    if (this.consecutive[slot] >= this.config.maxConsecutiveErrors) {
      return UNHEALTHY
    }
    this.readWindow(slot, now)
    if (this.windowCount < minSamples) {
      return UNKNOWN
    }
    const requests = this.windowOk + this.windowFailed
    if (requests <= 0) {
      return UNKNOWN
    }
    const rate = this.windowOk / requests
    if (rate + EPSILON < this.config.degradedThreshold) {
      return UNHEALTHY
    }
    if (rate + EPSILON < this.config.healthyThreshold || this.windowSlow / requests > SLOW_SHARE + EPSILON) {
      return DEGRADED
    }
    return HEALTHY
  }

  private successRate (slot: number, now: number): number {
    this.readWindow(slot, now)
    const requests = this.windowOk + this.windowFailed
    if (requests > 0) {
      return this.windowOk / requests
    }
    const total = this.total[slot]
    return (total - this.errors[slot]) / total
  }

  private snapshot (slot: number, now: number): HealthSnapshot {
    const lastResponseTime = this.lastResponse[slot]
    return {
      peer: this.registry.peer(slot),
      lastSeen: this.lastSeen[slot],
      successRate: this.successRate(slot, now),
      meanResponseTime: this.meanResponse[slot],
      p95ResponseTime: histogramQuantile(this.histogram, slot * HISTOGRAM_BUCKETS, 0.95, lastResponseTime),
      lastResponseTime,
      totalRequests: this.total[slot],
      errorCount: this.errors[slot],
      consecutiveErrors: this.consecutive[slot],
      lastError: this.lastErrors.get(slot),
      status: STATUS_NAMES[this.computeStatus(slot, now)]
    }
  }
}
