import { defaultRandom, systemClock } from '../clock.ts'
import { closedState } from '../peers/peer-record.ts'
import { CircuitState, Outcome } from '../states.ts'
import { decayedLevel, maxBackoffLevel, openDuration } from './backoff.ts'
import { countsOf, resetCounts } from './counts.ts'
import { Permit, REJECTED_HALF_OPEN_FULL, REJECTED_OPEN } from './permit.ts'
import { TransitionQueue, TransitionReason, readyToTripPolicy } from './transition.ts'
import type { Counts, ResolvedCircuitBreakerConfig } from './config.ts'
import type { Admission, PermitOwner, Rejection } from './permit.ts'
import type { TransitionListener, TripPolicy } from './transition.ts'
import type { Clock, RandomSource } from '../clock.ts'
import type { Disposable } from '../event.ts'
import type { BreakerState, ClosedState, HalfOpenState, OpenState, PeerRecord } from '../peers/peer-record.ts'
import type { RecordKeeper } from '../peers/peer-table.ts'

export { TransitionReason, readyToTripPolicy } from './transition.ts'
export { copyCounts } from './counts.ts'
export type { TransitionListener, TripPolicy } from './transition.ts'

export interface BreakerCoreInit {
  config: ResolvedCircuitBreakerConfig
  /** Used only by reads that are not given a time */
  clock?: Clock
  /** Jitter source; inject a seeded one for repeatable tests */
  random?: RandomSource
  /** The breaker name passed to the user's `onStateChange` */
  name?: (record: PeerRecord) => string
  /** Veto consulted before any CLOSED→OPEN trip; false keeps the circuit CLOSED */
  canTrip?: (record: PeerRecord, now: number) => boolean
  /** @default the config's `readyToTrip` */
  policy?: TripPolicy
}

const STATE_NAMES = { closed: CircuitState.CLOSED, open: CircuitState.OPEN, 'half-open': CircuitState.HALF_OPEN } as const

/**
 * The gobreaker state machine over peer records. No timers: time-driven changes are computed from
 * timestamps whenever a record is looked at. A permit carries its record's epoch; a result whose
 * epoch has passed (a state change or a CLOSED window reset) is dropped, as in gobreaker.
 */
export class BreakerCore implements PermitOwner, RecordKeeper {
  readonly config: ResolvedCircuitBreakerConfig
  readonly clock: Clock
  /** Population guard: consulted before any CLOSED→OPEN trip */
  canTrip: ((record: PeerRecord, now: number) => boolean) | undefined
  policy: TripPolicy

  private readonly random: RandomSource
  private readonly nameOf: ((record: PeerRecord) => string) | undefined
  private readonly maxLevel: number
  private readonly transitions: TransitionQueue

  constructor (init: BreakerCoreInit) {
    this.config = init.config
    this.clock = init.clock ?? systemClock
    this.random = init.random ?? defaultRandom
    this.nameOf = init.name
    this.canTrip = init.canTrip
    this.policy = init.policy ?? readyToTripPolicy(init.config.readyToTrip)
    this.maxLevel = maxBackoffLevel(init.config)
    this.transitions = new TransitionQueue(init.config.onStateChange)
  }

  /** Subscribes to every state change of every record */
  onTransition (listener: TransitionListener): Disposable {
    return this.transitions.listen(listener)
  }

  /**
   * Only a clean CLOSED circuit may be forgotten: nothing in flight, not isolated, backoff fully
   * decayed. Pure: it reports no transitions, because the table asks mid-update.
   */
  evictable (record: PeerRecord, now: number): boolean {
    const state = record.state
    if (state.kind !== 'closed' || decayedLevel(record.level, now - record.levelSince, this.config.backoffDecay) !== 0) {
      return false
    }
    // calls of an expired window will be dropped when they settle, so they do not pin the record
    if (this.config.interval > 0 && state.windowEnd !== 0 && state.windowEnd < now) {
      return true
    }
    return this.inFlight(record) === 0
  }

  // -- admission --

  /**
   * Asks to run a call. Returns a permit (settled through `owner`) or a rejection. Allocates only
   * the permit unless the circuit changes state.
   */
  admit (record: PeerRecord, now: number, owner: PermitOwner = this): Admission {
    return this.acquire(record, now) ?? new Permit(owner, record, record.epoch, now)
  }

  /**
   * Admission without a permit, for a caller that settles at once: undefined when admitted (the
   * call then belongs to `record.epoch`), else the rejection.
   */
  acquire (record: PeerRecord, now: number): Rejection | undefined {
    this.advance(record, now)
    if (!this.transitions.empty) {
      // listeners run before the decision, so it sees anything they changed
      this.transitions.flush()
    }
    const state = record.state
    if (state.kind === 'open') {
      return REJECTED_OPEN
    }
    if (state.kind === 'half-open') {
      if (state.inFlight + state.successes >= this.config.maxRequests) {
        return REJECTED_HALF_OPEN_FULL
      }
      state.inFlight++
    } else {
      state.requests++
    }
    return undefined
  }

  settlePermit (permit: Permit, outcome: Outcome, _latencyMs: number, err: unknown, now: number | undefined): void {
    const record = permit.record
    if (record === undefined) {
      return
    }
    if (now === undefined && outcome === Outcome.SUCCESS && record.state.kind === 'closed' && permit.epoch === record.epoch && record.live) {
      // no clock read: a CLOSED success changes no state, and counted into a window that has just
      // ended it is unseen (every read first starts the next window, at the next call)
      this.onSuccess(record, permit.at)
      return
    }
    this.settle(record, permit.epoch, outcome, now ?? this.clock.now(), err)
  }

  /**
   * Records how an admitted call ended. A result of a past epoch is ignored. NEUTRAL counts
   * neither way and gives the call's request (and so a HALF_OPEN permit) back.
   */
  settle (record: PeerRecord, epoch: number, outcome: Outcome, now: number, err?: unknown): void {
    this.advance(record, now)
    if (!this.transitions.empty) {
      this.transitions.flush()
    }
    if (epoch === record.epoch && record.live) {
      if (outcome === Outcome.SUCCESS) {
        this.onSuccess(record, now)
      } else if (outcome === Outcome.FAILURE) {
        this.onFailure(record, now, err)
      } else {
        this.onNeutral(record)
      }
    }
    if (!this.transitions.empty) {
      this.transitions.flush()
    }
  }

  // -- control --

  /**
   * Forces the circuit OPEN now. A CLOSED circuit asks `canTrip` first. Raises the backoff level
   * like any trip. Returns true if the circuit is OPEN afterwards.
   */
  trip (record: PeerRecord, now: number, reason: TransitionReason = TransitionReason.TRIP, cause?: unknown): boolean {
    const kind = this.advance(record, now)
    if (kind === 'closed') {
      this.tripClosed(record, now, reason, cause)
    } else if (kind === 'half-open') {
      this.setState(record, 'open', now, reason, cause)
    }
    const open = record.state.kind === 'open'
    this.transitions.flush()
    return open
  }

  /** Holds the circuit OPEN until every isolation is released (ref-counted). Not a trip: no backoff, no veto. */
  isolate (record: PeerRecord, now: number = this.clock.now()): void {
    this.advance(record, now)
    const state = record.state
    if (state.kind === 'open') {
      state.isolation++
    } else {
      this.setState(record, 'open', now, TransitionReason.ISOLATE, undefined, false)
      const open = record.state
      if (open.kind === 'open') {
        open.isolation = 1
      }
    }
    this.transitions.flush()
  }

  /**
   * Drops one isolation. When the last goes, the circuit resumes its normal timeline: HALF_OPEN at
   * once if its open duration has passed (or it was isolated from CLOSED / HALF_OPEN), else at the
   * end of that duration.
   */
  release (record: PeerRecord, now: number = this.clock.now()): void {
    const state = record.state
    if (state.kind !== 'open' || state.isolation === 0) {
      return
    }
    state.isolation--
    if (state.isolation === 0 && state.until <= now) {
      this.setState(record, 'half-open', now, TransitionReason.RELEASE)
    }
    this.transitions.flush()
  }

  /**
   * Puts back a circuit from a snapshot: OPEN until `openUntil` (wall-clock; already passed means
   * HALF_OPEN at the next look) with its backoff level. Not a trip: no veto, the level is set, not
   * raised. A CLOSED entry only restores the level.
   */
  restore (record: PeerRecord, now: number, state: CircuitState, openUntil: number, level: number, reason: TransitionReason = TransitionReason.RESTORED): void {
    record.level = Math.min(Math.max(0, Math.floor(level)), this.maxLevel)
    record.levelSince = now
    if (state === CircuitState.CLOSED) {
      return
    }
    this.setState(record, 'open', now, reason, undefined, false)
    const open = record.state
    if (open.kind === 'open') {
      open.until = state === CircuitState.OPEN ? openUntil : now
    }
    this.transitions.flush()
  }

  /** Makes the record a fresh CLOSED circuit, reporting the change if it was not CLOSED (a user's reset) */
  clear (record: PeerRecord, now: number, reason: TransitionReason = TransitionReason.RESET): void {
    const from = STATE_NAMES[record.state.kind]
    record.epoch++
    record.state = closedState(0)
    record.level = 0
    record.levelSince = 0
    if (from !== CircuitState.CLOSED) {
      this.queue(record, from, CircuitState.CLOSED, reason, now, undefined)
      this.transitions.flush()
    }
  }

  // -- reads --

  /** The state at `now` (time-driven changes happen here, and are reported) */
  stateOf (record: PeerRecord, now: number): CircuitState {
    this.advance(record, now)
    if (!this.transitions.empty) {
      this.transitions.flush()
    }
    // read after the listeners ran: one of them may have changed it
    return STATE_NAMES[record.state.kind]
  }

  /** A copy of the counts of the current epoch at `now` (an expired CLOSED window reads as zero) */
  countsOf (record: PeerRecord, now: number): Counts {
    this.advance(record, now)
    if (!this.transitions.empty) {
      this.transitions.flush()
    }
    return countsOf(record.state)
  }

  /** When an OPEN circuit lets probes through: Infinity while isolated, 0 when not OPEN */
  openUntil (record: PeerRecord): number {
    const state = record.state
    if (state.kind !== 'open') {
      return 0
    }
    return state.isolation > 0 ? Infinity : state.until
  }

  /** The backoff level at `now`, after decay: the next trip opens for timeout × multiplier^level */
  backoffLevel (record: PeerRecord, now: number = this.clock.now()): number {
    if (record.state.kind !== 'closed') {
      return record.level
    }
    return decayedLevel(record.level, now - record.levelSince, this.config.backoffDecay)
  }

  /** Admitted calls of the current epoch that have not settled */
  inFlight (record: PeerRecord): number {
    const state = record.state
    if (state.kind === 'closed') {
      return state.requests - state.totalSuccesses - state.totalFailures
    }
    return state.kind === 'half-open' ? state.inFlight : 0
  }

  isIsolated (record: PeerRecord): boolean {
    const state = record.state
    return state.kind === 'open' && state.isolation > 0
  }

  // -- the state machine --

  /** Applies the time-driven changes (window reset, OPEN→HALF_OPEN, half-open dwell) */
  private advance (record: PeerRecord, now: number): BreakerState['kind'] {
    const state = record.state
    if (state.kind === 'closed') {
      if (this.config.interval > 0 && (state.windowEnd === 0 || state.windowEnd < now)) {
        this.nextWindow(record, state, now)
      }
      return 'closed'
    }
    return this.advanceOpen(record, state, now)
  }

  // out of line, so that `advance` stays small enough to inline on the hot path (a CLOSED circuit in its window)

  /** Starts the first window, or a new one (a new epoch) once the last has ended */
  private nextWindow (record: PeerRecord, state: ClosedState, now: number): void {
    if (state.windowEnd !== 0) {
      record.epoch++
      resetCounts(state)
    }
    state.windowEnd = now + this.config.interval
  }

  private advanceOpen (record: PeerRecord, state: OpenState | HalfOpenState, now: number): BreakerState['kind'] {
    if (state.kind === 'open') {
      if (state.isolation === 0 && state.until < now) {
        this.setState(record, 'half-open', now, TransitionReason.TIMEOUT)
        return 'half-open'
      }
      return 'open'
    }
    if (now - state.since > this.config.maxHalfOpenDwell && state.inFlight > 0) {
      this.setState(record, 'open', now, TransitionReason.HALF_OPEN_DWELL)
      return 'open'
    }
    return 'half-open'
  }

  private onSuccess (record: PeerRecord, now: number): void {
    const state = record.state
    if (state.kind === 'closed') {
      state.totalSuccesses++
      state.consecutiveSuccesses++
      state.consecutiveFailures = 0
    } else if (state.kind === 'half-open') {
      this.onProbeSuccess(record, state, now)
    }
  }

  private onProbeSuccess (record: PeerRecord, state: HalfOpenState, now: number): void {
    state.inFlight--
    state.successes++
    if (state.successes >= this.config.maxRequests) {
      this.setState(record, 'closed', now, TransitionReason.PROBES_SUCCEEDED)
    }
  }

  private onFailure (record: PeerRecord, now: number, err: unknown): void {
    const state = record.state
    if (state.kind === 'closed') {
      state.totalFailures++
      state.consecutiveFailures++
      state.consecutiveSuccesses = 0
      let ready = false
      try {
        ready = this.policy.shouldTrip(state, record, now)
      } catch {
        // a throwing rule cannot decide; the circuit stays as it is
      }
      if (ready) {
        this.tripClosed(record, now, TransitionReason.FAILURES, err)
      }
    } else if (state.kind === 'half-open') {
      this.setState(record, 'open', now, TransitionReason.PROBE_FAILURE, err)
    }
  }

  private onNeutral (record: PeerRecord): void {
    const state = record.state
    if (state.kind === 'closed') {
      if (state.requests > 0) {
        state.requests--
      }
    } else if (state.kind === 'half-open' && state.inFlight > 0) {
      state.inFlight--
    }
  }

  private tripClosed (record: PeerRecord, now: number, reason: TransitionReason, cause: unknown): void {
    const canTrip = this.canTrip
    if (canTrip !== undefined) {
      let allowed = true
      try {
        allowed = canTrip(record, now) !== false
      } catch {
        // a broken guard must not stop the breaker from protecting us
      }
      if (!allowed) {
        return
      }
    }
    this.setState(record, 'open', now, reason, cause)
  }

  private setState (record: PeerRecord, to: BreakerState['kind'], now: number, reason: TransitionReason, cause?: unknown, backoff: boolean = true): void {
    const from = record.state.kind
    if (from === to) {
      return
    }
    if (from === 'closed') {
      this.commitDecay(record, now)
    }
    if (to === 'closed') {
      record.state = closedState(this.config.interval > 0 ? now + this.config.interval : 0)
      record.levelSince = now
    } else if (to === 'open') {
      let until = now
      // isolation holds the circuit open by itself, so it adds no open duration and no backoff
      if (backoff) {
        until += openDuration(record.level, this.config, this.random)
        if (record.level < this.maxLevel) {
          record.level++
        }
      }
      record.state = { kind: 'open', until, isolation: 0 }
    } else {
      record.state = { kind: 'half-open', inFlight: 0, successes: 0, since: now }
    }
    record.epoch++
    this.queue(record, STATE_NAMES[from], STATE_NAMES[to], reason, now, cause)
  }

  private commitDecay (record: PeerRecord, now: number): void {
    const level = record.level
    if (level === 0) {
      return
    }
    const decay = this.config.backoffDecay
    const steps = Math.floor((now - record.levelSince) / decay)
    if (steps > 0) {
      record.level = steps >= level ? 0 : level - steps
      record.levelSince += steps * decay
    }
  }

  private queue (record: PeerRecord, from: CircuitState, to: CircuitState, reason: TransitionReason, now: number, cause: unknown): void {
    const name = this.config.onStateChange !== undefined && this.nameOf !== undefined ? this.nameOf(record) : ''
    this.transitions.push(record, from, to, reason, now, cause, name)
  }
}
