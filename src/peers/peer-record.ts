import type { PeerLike } from './peer-key.ts'
import type { Counts } from '../breaker/config.ts'
import type { HealthWindow } from '../health/health-window.ts'
import type { FailingNode } from '../protection/local-suspicion.ts'
import type { RampState } from '../recovery/ramp.ts'

/**
 * A CLOSED circuit counts the calls of its current window, which ends at `windowEnd` (0: not
 * started). The counts are the state's own fields (a nested object would cost 32 bytes a peer).
 */
export interface ClosedState extends Counts { kind: 'closed', windowEnd: number }
/** An OPEN circuit lets probes through after `until`, unless `isolation` holds it open */
export interface OpenState { kind: 'open', until: number, isolation: number }
/** A HALF_OPEN circuit, entered at `since`, has admitted `inFlight + successes` probes; any failure reopens it */
export interface HalfOpenState { kind: 'half-open', inFlight: number, successes: number, since: number }
/** The breaker state of one circuit, as cockatiel's `InnerState` */
export type BreakerState = ClosedState | OpenState | HalfOpenState

export function closedState (windowEnd: number): ClosedState {
  return { kind: 'closed', windowEnd, requests: 0, totalSuccesses: 0, totalFailures: 0, consecutiveSuccesses: 0, consecutiveFailures: 0 }
}

// `PeerRecord.mark` values
export const NOT_USED = 0
export const USED = 1
export const FORGOTTEN = -1

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
  /** CLOCK second-chance mark: USED since the hand last passed, or not; FORGOTTEN once the table let it go */
  mark: number = NOT_USED

  // -- the breaker --
  state: BreakerState = closedState(0)
  /** Moves on at every state change and CLOSED window reset: a permit of an older epoch is dropped */
  epoch = 1
  /** Backoff level: outlives states (raised by each trip, decays while CLOSED) */
  level = 0
  /** While CLOSED: the time from which the next backoff decay step is measured */
  levelSince = 0

  // -- health and recovery --
  health: HealthWindow | undefined = undefined
  /** Only for a peer that has started a recovery */
  recovery: RampState | undefined = undefined

  // -- the population guard --
  /** OPEN / FAILING / USEFUL bits (population-guard.ts): whether it ever served us is a bit, not a time */
  guardFlags = 0
  /** Its place in the failing list, with the time of its last failure (made at its first failure) */
  failing: FailingNode | undefined = undefined
  outliers: OutlierCounts | undefined = undefined

  // -- auto-tuning: requests per rate window, an exponentially weighted moving average --
  rateAverage = 0
  rateCount = 0
  rateWindow = 0

  constructor (peer: PeerLike) {
    this.peer = peer
  }

  /** False once the table forgot the record: results that arrive later are dropped */
  get live (): boolean {
    return this.mark !== FORGOTTEN
  }
}
