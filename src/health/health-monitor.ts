import { systemClock } from '../clock.ts'
import { isAbortError } from '../errors.ts'
import { EventEmitter } from '../event.ts'
import { PeerTable } from '../peers/peer-table.ts'
import { HealthStatus, Outcome } from '../states.ts'
import { resolveHealthMonitorConfig } from './config.ts'
import { DEGRADED, HEALTHY, HealthWindow, UNHEALTHY, addSample, computeStatus, isLive, restart, successRate } from './health-window.ts'
import { checkEngineOptions } from '../validate.ts'
import type { HealthMonitorInit, ResolvedHealthMonitorConfig } from './config.ts'
import type { Clock } from '../clock.ts'
import type { Disposable, Listener } from '../event.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { PeerRecord } from '../peers/peer-record.ts'

/** The monitor's runtime plumbing (not config): its clock, and the bound of a peer table of its own */
export interface HealthMonitorOptions {
  /** @default the registry's clock, else systemClock */
  clock?: Clock

  /**
   * A peer table shared with the other per-peer components (breaker, recovery). Without one the
   * monitor creates its own, whose `idleTimeout` is `maxAge`; `maxPeers` then applies to it.
   *
   * @internal
   */
  registry?: PeerTable

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

/** Peers per health status, and means over them (for `getHealthStats()` and the overall status) */
export interface HealthStats {
  totalPeers: number
  healthyPeers: number
  degradedPeers: number
  unhealthyPeers: number
  unknownPeers: number
  /** Mean of the peers' success rates (UNKNOWN peers included, as the Go original counts them); 0 with no peers */
  averageSuccessRate: number
  /** Mean of the peers' mean response times; 0 with no peers */
  averageResponseTime: number
}

/** What `onStatusChange` listeners get: a peer's status before and after a recorded request */
export interface HealthStatusChange {
  peer: PeerLike
  from: HealthStatus
  to: HealthStatus
}

const STATUS_NAMES: readonly HealthStatus[] = [HealthStatus.UNKNOWN, HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.UNHEALTHY]

/**
 * Tracks how each peer is doing from the requests recorded against it: a sliding-window success
 * rate, latency, and error runs, summarised as HEALTHY / DEGRADED / UNHEALTHY / UNKNOWN.
 *
 * Status, in this order (the rate is checked before latency):
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
 * Per-peer state is a `HealthWindow` in the peer's record. Nothing runs in the background:
 * windows roll and stale peers expire when they are next read or written. `onStatusChange` fires
 * when a recorded request changes a peer's status, after the state is updated; a change caused
 * only by time passing is reported with the peer's next request.
 */
export class HealthMonitor {
  readonly config: Readonly<ResolvedHealthMonitorConfig>
  /** @internal */
  readonly registry: PeerTable
  /** Subscribes to status changes; returns a disposable */
  readonly onStatusChange: (listener: Listener<HealthStatusChange>) => Disposable

  private readonly clock: Clock
  /** Forgets a peer's health: the whole record in a table of our own, the health part in a shared one */
  private readonly forget: (record: PeerRecord) => void
  private readonly statusChange = new EventEmitter<HealthStatusChange>()
  /** The error of the last request, for peers whose last request failed (few: not a field of every window) */
  private readonly lastErrors = new WeakMap<HealthWindow, unknown>()
  private closed = false

  constructor (config: HealthMonitorInit = {}, options: HealthMonitorOptions = {}) {
    this.config = resolveHealthMonitorConfig(config)
    checkEngineOptions(options)
    this.clock = options.clock ?? options.registry?.clock ?? systemClock
    const shared = options.registry
    this.registry = shared ?? new PeerTable({
      maxPeers: options.maxPeers,
      idleTimeout: this.config.maxAge,
      clock: this.clock
    })
    this.forget = shared === undefined
      ? (record) => { this.registry.delete(record.peer) }
      : (record) => { record.health = undefined }
    this.onStatusChange = this.statusChange.listen
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
    const record = this.registry.get(peer, now)
    if (record === undefined) {
      return
    }
    this.record(record, now, responseTimeMs, err == null ? Outcome.SUCCESS : Outcome.FAILURE, err)
  }

  /** The peer's status; UNKNOWN when it has no (fresh) record */
  getHealthStatus (peer: PeerLike): HealthStatus {
    return this.status(this.registry.find(peer), this.clock.now())
  }

  /** Whether the peer's status is HEALTHY (UNKNOWN is not) */
  isHealthy (peer: PeerLike): boolean {
    return this.getHealthStatus(peer) === HealthStatus.HEALTHY
  }

  /** A snapshot of the peer's health, or undefined when it has no fresh record */
  getHealth (peer: PeerLike): HealthSnapshot | undefined {
    const record = this.registry.find(peer)
    const now = this.clock.now()
    const health = record?.health
    if (record === undefined || !isLive(health, now, this.config.maxAge)) {
      return undefined
    }
    return this.snapshot(record, health, now)
  }

  /** Snapshots of every peer with a fresh record, keyed by peer id string */
  getAllHealth (): Map<string, HealthSnapshot> {
    const now = this.clock.now()
    const all = new Map<string, HealthSnapshot>()
    this.registry.forEach((record, key) => {
      const health = record.health
      if (isLive(health, now, this.config.maxAge)) {
        all.set(key, this.snapshot(record, health, now))
      }
    })
    return all
  }

  /** Counts per status and mean success rate and response time over every peer with a fresh record */
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
    this.registry.forEach((record) => {
      const health = record.health
      if (!isLive(health, now, this.config.maxAge)) {
        return
      }
      stats.totalPeers++
      switch (computeStatus(health, this.config, now)) {
        case HEALTHY: stats.healthyPeers++; break
        case DEGRADED: stats.degradedPeers++; break
        case UNHEALTHY: stats.unhealthyPeers++; break
        default: stats.unknownPeers++
      }
      rateSum += successRate(health, this.config.window, now)
      responseSum += health.meanResponse
    })
    if (stats.totalPeers > 0) {
      stats.averageSuccessRate = rateSum / stats.totalPeers
      stats.averageResponseTime = responseSum / stats.totalPeers
    }
    return stats
  }

  /**
   * Forgets a peer's health (in a table of its own, the whole peer). No status event is emitted.
   * Returns whether the peer had a record.
   */
  removePeer (peer: PeerLike): boolean {
    const record = this.registry.find(peer)
    if (record === undefined) {
      return false
    }
    const had = record.health !== undefined && record.health.total > 0
    this.forget(record)
    return had
  }

  /**
   * Drops every stale record (no request for more than `maxAge`) now rather than lazily. Returns
   * how many were dropped.
   */
  prune (now: number = this.clock.now()): number {
    let removed = 0
    this.registry.forEach((record) => {
      const health = record.health
      if (health !== undefined && health.total > 0 && !isLive(health, now, this.config.maxAge)) {
        this.forget(record)
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
    this.registry.forEach((record) => { this.forget(record) })
  }

  // -- record-level API (hot path: no peer lookup, no allocation unless the status changes) --

  /**
   * Records one request against a peer's record. NEUTRAL outcomes are ignored. The caller has
   * already marked the record used. `err` is kept as `lastError` on failure.
   *
   * @internal
   */
  record (record: PeerRecord, now: number, responseTimeMs: number, outcome: Outcome, err?: unknown): void {
    if (this.closed || outcome === Outcome.NEUTRAL) {
      return
    }
    let health = record.health
    if (health === undefined) {
      health = record.health = new HealthWindow()
    } else if (health.total > 0 && now - health.lastSeen > this.config.maxAge) {
      this.startOver(health)
    }
    const success = outcome === Outcome.SUCCESS
    if (!success || health.consecutive > 0) {
      // only a failure, which starts a run, can have stored an error
      this.keepError(health, success, err)
    }
    if (addSample(health, this.config, now, responseTimeMs, success)) {
      this.report(record, health, now)
    }
  }

  // out of line, so that `record`'s hot path (a success with nothing to report) stays small enough to inline

  private startOver (health: HealthWindow): void {
    restart(health)
    this.lastErrors.delete(health)
  }

  private keepError (health: HealthWindow, success: boolean, err: unknown): void {
    if (!success && err !== undefined) {
      this.lastErrors.set(health, err)
    } else {
      this.lastErrors.delete(health)
    }
  }

  /** Recomputes the status and reports a change */
  private report (record: PeerRecord, health: HealthWindow, now: number): void {
    const to = computeStatus(health, this.config, now)
    const from = health.reported
    if (to !== from) {
      health.reported = to
      if (this.statusChange.size > 0) {
        this.statusChange.emit({ peer: record.peer, from: STATUS_NAMES[from], to: STATUS_NAMES[to] })
      }
    }
  }

  /** The status of a record at `now`; UNKNOWN for none, an empty or a stale one @internal */
  status (record: PeerRecord | undefined, now: number): HealthStatus {
    const health = record?.health
    if (!isLive(health, now, this.config.maxAge)) {
      return HealthStatus.UNKNOWN
    }
    return STATUS_NAMES[computeStatus(health, this.config, now)]
  }

  private snapshot (record: PeerRecord, health: HealthWindow, now: number): HealthSnapshot {
    const lastResponseTime = health.lastResponse
    return {
      peer: record.peer,
      lastSeen: health.lastSeen,
      successRate: successRate(health, this.config.window, now),
      meanResponseTime: health.meanResponse,
      p95ResponseTime: health.quantile(0.95, lastResponseTime),
      lastResponseTime,
      totalRequests: health.total,
      errorCount: health.errors,
      consecutiveErrors: health.consecutive,
      lastError: this.lastErrors.get(health),
      status: STATUS_NAMES[computeStatus(health, this.config, now)]
    }
  }
}
