import type { PeerLike } from './peer-key.ts'
import type { Counts } from '../breaker/config.ts'
import type { HealthWindow } from '../health/health-window.ts'
import type { RampState } from '../recovery/ramp.ts'

/** A CLOSED circuit counts the calls of its current window, which ends at `windowEnd` (0: not started) */
export interface ClosedState { kind: 'closed', windowEnd: number, counts: Counts }
/** An OPEN circuit lets probes through after `until`, unless `isolation` holds it open */
export interface OpenState { kind: 'open', until: number, isolation: number }
/** A HALF_OPEN circuit has admitted `inFlight + successes` probes; any failure reopens it */
export interface HalfOpenState { kind: 'half-open', inFlight: number, successes: number }
/** The breaker state of one circuit, as cockatiel's `InnerState` */
export type BreakerState = ClosedState | OpenState | HalfOpenState

export function closedState (windowEnd: number): ClosedState {
  return {
    kind: 'closed',
    windowEnd,
    counts: { requests: 0, totalSuccesses: 0, totalFailures: 0, consecutiveSuccesses: 0, consecutiveFailures: 0 }
  }
}

/** Outlier-detection counts of the interval `epoch` and the one before it (only with detection on) */
export interface OutlierCounts {
  epoch: number
  ok: number
  fail: number
  prevOk: number
  prevFail: number
}

/**
 * Everything the engine knows about one peer, in one object: a newcomer adds a field here and
 * nowhere else. Components are functions or small classes over a record; parts only some peers
 * need (health samples, a recovery ramp, outlier counts) are objects created on first use.
 */
export class PeerRecord {
  /** The peer as it was first given (a `PeerId` once the caller had one) */
  peer: PeerLike

  // -- the table (eviction) --
  /** Last admission or lookup that counted as a use (clock ms) */
  lastSeen = 0
  /** CLOCK second-chance mark */
  referenced = false
  /** False once the table forgot the record: results that arrive later are dropped */
  live = true

  // -- the breaker --
  state: BreakerState = closedState(0)
  /** Moves on at every state change and CLOSED window reset: a permit of an older epoch is dropped */
  epoch = 1
  /** When the current state was entered */
  since = 0
  /** Backoff level: outlives states (raised by each trip, decays while CLOSED) */
  level = 0
  /** While CLOSED: the time from which the next backoff decay step is measured */
  levelSince = 0

  // -- health and recovery --
  health: HealthWindow | undefined = undefined
  /** Only for a peer that has started a recovery */
  recovery: RampState | undefined = undefined

  // -- the population guard --
  /** OPEN / FAILING bits (see population/flags) */
  guardFlags = 0
  /** When a FAILING peer last failed: its place in the failing list */
  lastFailure = 0
  failPrev: PeerRecord | undefined = undefined
  failNext: PeerRecord | undefined = undefined
  outliers: OutlierCounts | undefined = undefined

  // -- auto-tuning: requests per rate window, an exponentially weighted moving average --
  rateAverage = 0
  rateCount = 0
  rateWindow = 0

  /**
   * When the peer last did useful work for us (an answered want, a completed exchange); 0 = never.
   * Lets the population guard tell peers that ever served us from ones that never did.
   */
  lastUsefulAt = 0

  constructor (peer: PeerLike) {
    this.peer = peer
  }

  /** Records useful work at `now` (never moves backwards) */
  markUseful (now: number): void {
    if (now > this.lastUsefulAt) {
      this.lastUsefulAt = now
    }
  }
}
