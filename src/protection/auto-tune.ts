import { resolveAutoTuneConfig } from './config.ts'
import type { AutoTuneInit, ResolvedAutoTuneConfig } from './config.ts'
import type { PopulationGuard } from './population-guard.ts'
import type { Counts, ResolvedCircuitBreakerConfig } from '../breaker/config.ts'
import type { BreakerCore } from '../breaker/core.ts'
import type { PeerRecord } from '../peers/peer-record.ts'

/** Absorbs float error in rates, so that exactly 10 requests a window ask for 10, not 11 */
const EPSILON = 1e-9
/** A window's request count stops here */
const MAX_COUNT = 0xFFFFFFFF

export { defaultAutoTuneConfig, resolveAutoTuneConfig } from './config.ts'
export type { AutoTuneConfig, AutoTuneInit, ResolvedAutoTuneConfig } from './config.ts'

// -- the rules, as pure functions --

/**
 * Rule 1, trip volume from load: ask for as many requests as the peer sends in one rate window,
 * `ceil(requestsPerWindow)` clamped to [min, max]. Why: the ratio rule is decided by the first few
 * requests of each counting window, and for a peer that normally fails 10 % of its requests, 2
 * failures of the first 3 happen with probability 2.8 % per window (a busy peer meets that many
 * windows), while 12 of the first 20 happen with probability about 1e-7. A quiet peer keeps the
 * lower bound of 3: waiting for 20 of its requests would leave it stalling wants for minutes. A
 * busy broken peer still trips within about one window of its traffic.
 */
export function tripMinRequestsFor (requestsPerWindow: number, min: number, max: number): number {
  const wanted = Math.ceil(requestsPerWindow - EPSILON)
  return wanted < min ? min : wanted > max ? max : wanted
}

/**
 * Rule 2, trip ratio from the population: `min + (max − min) × clamp(othersFailingShare /
 * suspicionShare, 0, 1)`. When other peers fail too, a failure says more about a shared cause
 * (our network, a stalled event loop) and less about this peer, so more of its requests must fail
 * before it is cut off; the top is reached where local suspicion vetoes every trip anyway.
 */
export function tripFailureRatioFor (othersFailingShare: number, suspicionShare: number, min: number, max: number): number {
  let t = suspicionShare > 0 ? othersFailingShare / suspicionShare : (othersFailingShare > 0 ? 1 : 0)
  t = t < 0 ? 0 : t > 1 ? 1 : t
  return min + (max - min) * t
}

/**
 * Rule 3, recovery ramp speed from the population: `max × (min / max)^h` for the share `h` of the
 * other peers that are available (not OPEN / HALF_OPEN, not failing). All others available: `min`
 * (no hurry, a relapse costs more than the capacity gained); none: `max` (we need this peer's
 * capacity, and our only other choice is nobody). Geometric, so half available is exactly 1×.
 */
export function recoveryRampSpeedFor (othersAvailableShare: number, min: number, max: number): number {
  const h = othersAvailableShare < 0 ? 0 : othersAvailableShare > 1 ? 1 : othersAvailableShare
  return max * (min / max) ** h
}

/**
 * The open duration the core will give the next trip at this backoff level, before jitter (the
 * core's own rule, read back for the status: `min(timeout × multiplier^level, maxTimeout)`)
 */
export function openDurationFor (config: ResolvedCircuitBreakerConfig, level: number): number {
  return Math.min(config.timeout * config.backoffMultiplier ** level, config.maxTimeout)
}

/** The tuned values for one peer, for its status */
export interface TunedValues {
  /** Backoff level after decay (from the core): the next trip opens for `openDuration` */
  backoffLevel: number
  /** The next trip's open duration before jitter (ms) */
  openDuration: number
  /** When the OPEN circuit lets probes through (0 when not OPEN, Infinity while isolated) */
  openUntil: number
  /** The peer's requests per rate window (moving average, at least the current window's count) */
  requestRate: number
  tripMinRequests: number
  tripFailureRatio: number
  /** Multiplier on the recovery ramp's speed, if a recovery started now */
  recoveryRampSpeed: number
}

export interface AutoTuneOptions {
  /** The population guard of the same table: failing and open counts */
  guard: PopulationGuard
  /** The breaker core of the same table: backoff level and open duration are read from it */
  core: BreakerCore
}

/**
 * Automatic configuration adjustment based on load: three bounded rules over per-peer load and
 * the health of the whole population (see the pure functions above), plus the open-duration
 * backoff the core already does (read back, not redone).
 *
 * No timers: each peer's request rate (`PeerRecord.rate*`) is an exponentially weighted moving
 * average over fixed windows, folded lazily when the peer is next seen (`record`, allocation-free), and read as the
 * larger of that average and the current window's count, so a burst counts at once and a lull
 * fades over a few windows.
 */
export class AutoTune {
  readonly config: Readonly<ResolvedAutoTuneConfig>

  private readonly guard: PopulationGuard
  private readonly core: BreakerCore
  private readonly rateWindow: number
  private readonly alpha: number

  constructor (config: AutoTuneInit = {}, options: AutoTuneOptions) {
    this.config = resolveAutoTuneConfig(config)
    this.guard = options.guard
    this.core = options.core
    this.rateWindow = this.config.rateWindow
    this.alpha = this.config.rateSmoothing
  }

  /** Counts one request to the peer (call it once per settled request, any outcome) */
  record (record: PeerRecord, now: number): void {
    const last = record.rateWindow
    // still the window being counted: a multiplication instead of a division on the hot path
    const w = now < (last + 1) * this.rateWindow ? last : Math.floor(now / this.rateWindow)
    if (w > last) {
      record.rateAverage = this.folded(record, w - last)
      record.rateCount = 0
      record.rateWindow = w
    }
    if (record.rateCount < MAX_COUNT) {
      record.rateCount++
    }
  }

  /** The peer's requests per rate window at `now` (0 for an untracked peer) */
  requestRate (record: PeerRecord | undefined, now: number): number {
    if (record === undefined) {
      return 0
    }
    const elapsed = Math.floor(now / this.rateWindow) - record.rateWindow
    if (elapsed > 0) {
      return this.folded(record, elapsed)
    }
    const average = record.rateAverage
    const current = record.rateCount
    return current > average ? current : average
  }

  /** Rule 1 for this peer at `now` */
  tripMinRequests (record: PeerRecord | undefined, now: number): number {
    const { minTripRequests, maxTripRequests } = this.config
    if (record === undefined) {
      return minTripRequests
    }
    return tripMinRequestsFor(this.requestRate(record, now), minTripRequests, maxTripRequests)
  }

  /** Rule 2 for this peer at `now`: the others' failing share against local suspicion's share */
  tripFailureRatio (record: PeerRecord | undefined, now: number): number {
    const { minTripFailureRatio, maxTripFailureRatio } = this.config
    if (record === undefined) {
      return minTripFailureRatio
    }
    const others = this.guard.population - 1
    if (others <= 0) {
      return minTripFailureRatio
    }
    const failing = this.guard.failingPeers(now) - (this.guard.isFailing(record, now) ? 1 : 0)
    return tripFailureRatioFor(failing / others, this.guard.config.localFailureShare, minTripFailureRatio, maxTripFailureRatio)
  }

  /**
   * The tuned trip rule for the peer: at least `tripMinRequests` requests and at least
   * `tripFailureRatio` of them failed. For the manager to use when the user gave no `readyToTrip`
   * of their own. An untracked peer gets the untuned rule (the lower bounds).
   */
  shouldTrip (record: PeerRecord | undefined, counts: Readonly<Counts>, now: number): boolean {
    const requests = counts.requests
    if (requests <= 0 || requests < this.tripMinRequests(record, now)) {
      return false
    }
    return counts.totalFailures / requests >= this.tripFailureRatio(record, now) - EPSILON
  }

  /** Rule 3 for this peer at `now`: the multiplier for a recovery ramp starting now */
  recoveryRampSpeed (record: PeerRecord | undefined, now: number): number {
    const { minRampSpeed, maxRampSpeed } = this.config
    const others = this.guard.population - (record !== undefined ? 1 : 0)
    if (others <= 0) {
      return maxRampSpeed
    }
    let unavailable = this.guard.unavailablePeers(now)
    if (record !== undefined && (this.guard.isOpen(record) || this.guard.isFailing(record, now))) {
      unavailable--
    }
    return recoveryRampSpeedFor((others - unavailable) / others, minRampSpeed, maxRampSpeed)
  }

  /** Every tuned value of the peer at `now` (brings its circuit up to `now` first) */
  tuned (record: PeerRecord | undefined, now: number): TunedValues {
    const core = this.core
    if (record !== undefined) {
      core.stateOf(record, now)
    }
    const backoffLevel = record !== undefined ? core.backoffLevel(record, now) : 0
    return {
      backoffLevel,
      openDuration: openDurationFor(core.config, backoffLevel),
      openUntil: record !== undefined ? core.openUntil(record) : 0,
      requestRate: this.requestRate(record, now),
      tripMinRequests: this.tripMinRequests(record, now),
      tripFailureRatio: this.tripFailureRatio(record, now),
      recoveryRampSpeed: this.recoveryRampSpeed(record, now)
    }
  }

  /** The average after the counted window closed and `elapsed - 1` empty ones followed it */
  private folded (record: PeerRecord, elapsed: number): number {
    const alpha = this.alpha
    const average = record.rateAverage
    const closed = average + alpha * (record.rateCount - average)
    return elapsed > 1 ? closed * (1 - alpha) ** (elapsed - 1) : closed
  }
}
