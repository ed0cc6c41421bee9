import { defaultRandom, systemClock } from '../clock.ts'
import { growFloat64, growUint16, growUint32, growUint8 } from '../peers/columns.ts'
import {
  CIRCUIT_STATE_NAMES,
  Outcome,
  REJECT_HALF_OPEN_FULL,
  REJECT_OPEN,
  STATE_CLOSED,
  STATE_HALF_OPEN,
  STATE_OPEN
} from '../states.ts'
import type { Counts, ResolvedCircuitBreakerConfig } from './config.ts'
import type { Clock, RandomSource } from '../clock.ts'
import type { Disposable } from '../event.ts'
import type { SlotColumns } from '../peers/columns.ts'

/** Tokens are `generation * SLOT_SPACE + slot`: the registry never hands out a slot >= 2**24 */
export const SLOT_SPACE = 2 ** 24
/**
 * Generations wrap below this so a token stays an exact integer (< 2**53). A late result would
 * have to outlive half a billion generations of its slot to be mistaken for a current one.
 */
const GENERATION_LIMIT = 2 ** 29
/** The backoff level is stored in a byte */
const MAX_LEVEL_CAP = 255
const MAX_ISOLATION = 0xFFFF

/** Why a circuit changed state. `trip()` callers may pass their own reason strings. */
export const TransitionReason = {
  /** `readyToTrip` returned true after a failure while CLOSED */
  FAILURES: 'failures',
  /** The open duration elapsed: probes may go through */
  TIMEOUT: 'timeout',
  /** A HALF_OPEN probe failed */
  PROBE_FAILURE: 'probe-failure',
  /** `maxRequests` consecutive HALF_OPEN probes succeeded */
  PROBES_SUCCEEDED: 'probes-succeeded',
  /** A HALF_OPEN probe stayed unsettled longer than `maxHalfOpenDwell` */
  HALF_OPEN_DWELL: 'half-open-dwell',
  /** Forced open by `trip()` without a reason of its own */
  TRIP: 'trip',
  /** Held open by `isolate()` */
  ISOLATE: 'isolate',
  /** The last isolation was released */
  RELEASE: 'release',
  /** Cleared by the user */
  RESET: 'reset'
} as const

/**
 * Called after a circuit changed state, once every column is consistent. `from` and `to` are the
 * numeric states (STATE_CLOSED, STATE_OPEN, STATE_HALF_OPEN); `cause` is the error that caused a
 * trip, when there was one.
 */
export type TransitionListener = (slot: number, from: number, to: number, reason: string, now: number, cause?: unknown) => void

export interface BreakerCoreInit {
  config: ResolvedCircuitBreakerConfig
  /** Used only by reads that are not given a time */
  clock?: Clock
  /** Jitter source; inject a seeded one for repeatable tests */
  random?: RandomSource
  /** The breaker name passed to the user's `onStateChange` */
  name?: (slot: number) => string
  /** Veto consulted before any CLOSED→OPEN trip; false keeps the circuit CLOSED */
  canTrip?: (slot: number) => boolean
}

interface PendingTransition {
  slot: number
  from: number
  to: number
  reason: string
  now: number
  cause: unknown
  name: string
}

/**
 * The gobreaker state machine over slots. Each circuit's state lives in typed-array columns
 * indexed by slot, so one core serves a single breaker (one slot) or a registry of many peers
 * at a few dozen bytes each. No timers: time-driven changes are computed from timestamps
 * whenever a slot is looked at.
 *
 * Admission hands out a numeric token that encodes the slot and its generation; a result whose
 * generation has passed (a state change, a CLOSED window reset, or the slot reused by another
 * peer) is dropped, as in gobreaker.
 */
export class BreakerCore implements SlotColumns {
  readonly config: ResolvedCircuitBreakerConfig
  readonly clock: Clock
  /** Population guard: consulted before any CLOSED→OPEN trip */
  canTrip: ((slot: number) => boolean) | undefined

  private readonly random: RandomSource
  private readonly nameOf: ((slot: number) => string) | undefined
  private readonly maxRequests: number
  private readonly interval: number
  private readonly timeout: number
  private readonly maxTimeout: number
  private readonly multiplier: number
  private readonly jitter: number
  private readonly decay: number
  private readonly dwell: number
  private readonly maxLevel: number

  private capacity = 0
  private state: Uint8Array = new Uint8Array(0)
  private isolation: Uint16Array = new Uint16Array(0)
  private level: Uint8Array = new Uint8Array(0)
  private generation: Uint32Array = new Uint32Array(0)
  /** CLOSED: end of the counting window (0 = not started or never); OPEN: when probes may start */
  private expiry: Float64Array = new Float64Array(0)
  /** When the current state was entered */
  private since: Float64Array = new Float64Array(0)
  /** While CLOSED: the time from which the next backoff decay step is measured */
  private levelSince: Float64Array = new Float64Array(0)
  private requests: Uint32Array = new Uint32Array(0)
  private successes: Uint32Array = new Uint32Array(0)
  private failures: Uint32Array = new Uint32Array(0)
  private consecutiveSuccesses: Uint32Array = new Uint32Array(0)
  private consecutiveFailures: Uint32Array = new Uint32Array(0)

  private listeners: TransitionListener[] = []
  private readonly pending: PendingTransition[] = []
  private flushing = false

  constructor (init: BreakerCoreInit) {
    const config = init.config
    this.config = config
    this.clock = init.clock ?? systemClock
    this.random = init.random ?? defaultRandom
    this.nameOf = init.name
    this.canTrip = init.canTrip
    this.maxRequests = config.maxRequests
    this.interval = config.interval
    this.timeout = config.timeout
    this.maxTimeout = config.maxTimeout
    this.multiplier = config.backoffMultiplier
    this.jitter = config.jitter
    this.decay = config.backoffDecay
    this.dwell = config.maxHalfOpenDwell
    this.maxLevel = maxBackoffLevel(config)
  }

  /** Subscribes to every state change of every slot */
  onTransition (listener: TransitionListener): Disposable {
    this.listeners = [...this.listeners, listener]
    return {
      dispose: () => {
        this.listeners = this.listeners.filter(l => l !== listener)
      }
    }
  }

  // -- SlotColumns --

  grow (capacity: number): void {
    if (capacity <= this.capacity) {
      return
    }
    const from = this.capacity
    this.state = growUint8(this.state, capacity)
    this.isolation = growUint16(this.isolation, capacity)
    this.level = growUint8(this.level, capacity)
    this.generation = growUint32(this.generation, capacity)
    // tokens must be > 0 even for slot 0, so generations start at 1
    this.generation.fill(1, from)
    this.expiry = growFloat64(this.expiry, capacity)
    this.since = growFloat64(this.since, capacity)
    this.levelSince = growFloat64(this.levelSince, capacity)
    this.requests = growUint32(this.requests, capacity)
    this.successes = growUint32(this.successes, capacity)
    this.failures = growUint32(this.failures, capacity)
    this.consecutiveSuccesses = growUint32(this.consecutiveSuccesses, capacity)
    this.consecutiveFailures = growUint32(this.consecutiveFailures, capacity)
    this.capacity = capacity
  }

  /**
   * Makes the slot a fresh CLOSED circuit for a new occupant. Silent (no transition is reported).
   * The generation moves on, never back, so tokens of the previous occupant are dropped.
   */
  reset (slot: number): void {
    this.nextGeneration(slot)
    this.state[slot] = STATE_CLOSED
    this.isolation[slot] = 0
    this.level[slot] = 0
    this.expiry[slot] = 0
    this.since[slot] = 0
    this.levelSince[slot] = 0
  }

  /**
   * Only a clean CLOSED circuit may be forgotten: nothing in flight, not isolated, backoff fully
   * decayed. Pure: it reports no transitions, because the registry asks mid-update.
   */
  evictable (slot: number, now: number): boolean {
    if (this.state[slot] !== STATE_CLOSED || this.isolation[slot] !== 0) {
      return false
    }
    if (this.effectiveLevel(slot, now) !== 0) {
      return false
    }
    const expiry = this.expiry[slot]
    // calls of an expired window will be dropped when they settle, so they do not pin the slot
    if (this.interval > 0 && expiry !== 0 && expiry < now) {
      return true
    }
    return this.inFlight(slot) === 0
  }

  // -- admission --

  /**
   * Asks to run a call on `slot`. Returns a token (> 0) to pass to `settle`, or REJECT_OPEN /
   * REJECT_HALF_OPEN_FULL. Allocates nothing unless the circuit changes state.
   */
  acquire (slot: number, now: number): number {
    let state = this.advance(slot, now)
    if (this.pending.length !== 0) {
      // listeners run before the decision, so it sees anything they changed
      this.flush()
      state = this.state[slot]
    }
    let result: number
    if (state === STATE_OPEN) {
      result = REJECT_OPEN
    } else if (state === STATE_HALF_OPEN && this.requests[slot] >= this.maxRequests) {
      result = REJECT_HALF_OPEN_FULL
    } else {
      this.requests[slot]++
      result = this.generation[slot] * SLOT_SPACE + slot
    }
    if (this.pending.length !== 0) {
      this.flush()
    }
    return result
  }

  /**
   * Records how an admitted call ended. A token of a past generation is ignored. NEUTRAL counts
   * neither way and returns the call's request (and so a HALF_OPEN permit). Each token must be
   * settled once.
   */
  settle (token: number, outcome: Outcome, now: number, err?: unknown): void {
    if (!(token > 0)) {
      return
    }
    const slot = token % SLOT_SPACE
    if (slot >= this.capacity) {
      return
    }
    let state = this.advance(slot, now)
    if (this.pending.length !== 0) {
      this.flush()
      state = this.state[slot]
    }
    if ((token - slot) / SLOT_SPACE === this.generation[slot]) {
      if (outcome === Outcome.SUCCESS) {
        this.onSuccess(slot, state, now)
      } else if (outcome === Outcome.FAILURE) {
        this.onFailure(slot, state, now, err)
      } else if (this.requests[slot] > 0) {
        this.requests[slot]--
      }
    }
    if (this.pending.length !== 0) {
      this.flush()
    }
  }

  // -- control --

  /**
   * Forces the circuit OPEN now (an open-stream deadline miss, a health verdict). A CLOSED circuit
   * asks `canTrip` first. Raises the backoff level like any trip. Returns true if the circuit is
   * OPEN afterwards.
   */
  trip (slot: number, now: number, reason: string = TransitionReason.TRIP, cause?: unknown): boolean {
    const state = this.advance(slot, now)
    if (state === STATE_CLOSED) {
      this.tripClosed(slot, now, reason, cause)
    } else if (state === STATE_HALF_OPEN) {
      this.setState(slot, STATE_OPEN, now, reason, cause)
    }
    const open = this.state[slot] === STATE_OPEN
    this.flush()
    return open
  }

  /**
   * Holds the circuit OPEN until every isolation is released (ref-counted). Not a trip: the
   * backoff level is untouched and `canTrip` is not asked.
   */
  isolate (slot: number, now: number = this.clock.now()): void {
    const state = this.advance(slot, now)
    if (this.isolation[slot] < MAX_ISOLATION) {
      this.isolation[slot]++
    }
    if (state !== STATE_OPEN) {
      this.setState(slot, STATE_OPEN, now, TransitionReason.ISOLATE, undefined, false)
    }
    this.flush()
  }

  /**
   * Drops one isolation. When the last goes, the circuit resumes its normal timeline: HALF_OPEN at
   * once if its open duration has passed (or it was isolated from CLOSED / HALF_OPEN), else at the
   * end of that duration.
   */
  release (slot: number, now: number = this.clock.now()): void {
    if (this.isolation[slot] === 0) {
      return
    }
    this.isolation[slot]--
    if (this.isolation[slot] === 0 && this.state[slot] === STATE_OPEN && this.expiry[slot] <= now) {
      this.setState(slot, STATE_HALF_OPEN, now, TransitionReason.RELEASE)
    }
    this.flush()
  }

  /**
   * Puts back a circuit from a snapshot taken before a restart: OPEN until `openUntil` (a wall-clock
   * time; already passed means HALF_OPEN at the next look) with its backoff level. Not a trip: no
   * veto is asked and the level is set, not raised. A CLOSED entry only restores the level.
   */
  restore (slot: number, now: number, state: number, openUntil: number, level: number, reason: string = 'restored'): void {
    this.level[slot] = Math.min(Math.max(0, Math.floor(level)), this.maxLevel)
    this.levelSince[slot] = now
    if (state === STATE_CLOSED) {
      return
    }
    this.setState(slot, STATE_OPEN, now, reason, undefined, false)
    this.expiry[slot] = state === STATE_OPEN ? openUntil : now
    this.flush()
  }

  /** Like `reset`, but reports the change to CLOSED (a user's explicit reset) */
  clear (slot: number, now: number, reason: string = TransitionReason.RESET): void {
    const from = this.state[slot]
    this.reset(slot)
    if (from !== STATE_CLOSED) {
      this.since[slot] = now
      this.queue(slot, from, STATE_CLOSED, reason, now, undefined)
      this.flush()
    }
  }

  // -- reads --

  /** The numeric state at `now` (time-driven changes happen here, and are reported) */
  stateOf (slot: number, now: number): number {
    this.advance(slot, now)
    if (this.pending.length !== 0) {
      this.flush()
    }
    // read after the listeners ran: one of them may have changed it
    return this.state[slot]
  }

  /** The counts of the current generation at `now` (an expired CLOSED window reads as zero) */
  countsOf (slot: number, now: number): Counts {
    this.advance(slot, now)
    if (this.pending.length !== 0) {
      this.flush()
    }
    return this.countsObject(slot)
  }

  /** When an OPEN circuit lets probes through: Infinity while isolated, 0 when not OPEN */
  openUntil (slot: number): number {
    if (this.state[slot] !== STATE_OPEN) {
      return 0
    }
    return this.isolation[slot] > 0 ? Infinity : this.expiry[slot]
  }

  /** The backoff level at `now`, after decay: the next trip opens for timeout × multiplier^level */
  backoffLevel (slot: number, now: number = this.clock.now()): number {
    return this.effectiveLevel(slot, now)
  }

  /** Admitted calls of the current generation that have not settled */
  inFlight (slot: number): number {
    return this.requests[slot] - this.successes[slot] - this.failures[slot]
  }

  isIsolated (slot: number): boolean {
    return this.isolation[slot] > 0
  }

  /** When the current state was entered (0 for a slot that has never changed state) */
  stateSince (slot: number): number {
    return this.since[slot]
  }

  // -- the state machine --

  /** Applies the time-driven changes (window reset, OPEN→HALF_OPEN, half-open dwell) */
  private advance (slot: number, now: number): number {
    const state = this.state[slot]
    if (state === STATE_CLOSED) {
      if (this.interval > 0) {
        const expiry = this.expiry[slot]
        if (expiry === 0) {
          this.expiry[slot] = now + this.interval
        } else if (expiry < now) {
          this.nextGeneration(slot)
          this.expiry[slot] = now + this.interval
        }
      }
      return STATE_CLOSED
    }
    if (state === STATE_OPEN) {
      if (this.isolation[slot] === 0 && this.expiry[slot] < now) {
        this.setState(slot, STATE_HALF_OPEN, now, TransitionReason.TIMEOUT)
        return STATE_HALF_OPEN
      }
      return STATE_OPEN
    }
    if (now - this.since[slot] > this.dwell && this.requests[slot] > this.successes[slot]) {
      this.setState(slot, STATE_OPEN, now, TransitionReason.HALF_OPEN_DWELL)
      return STATE_OPEN
    }
    return STATE_HALF_OPEN
  }

  private onSuccess (slot: number, state: number, now: number): void {
    this.successes[slot]++
    this.consecutiveSuccesses[slot]++
    this.consecutiveFailures[slot] = 0
    if (state === STATE_HALF_OPEN && this.consecutiveSuccesses[slot] >= this.maxRequests) {
      this.setState(slot, STATE_CLOSED, now, TransitionReason.PROBES_SUCCEEDED)
    }
  }

  private onFailure (slot: number, state: number, now: number, err: unknown): void {
    this.failures[slot]++
    this.consecutiveFailures[slot]++
    this.consecutiveSuccesses[slot] = 0
    if (state === STATE_CLOSED) {
      let ready = false
      try {
        ready = Boolean(this.config.readyToTrip(this.countsObject(slot)))
      } catch {
        // a throwing rule cannot decide; the circuit stays as it is
      }
      if (ready) {
        this.tripClosed(slot, now, TransitionReason.FAILURES, err)
      }
    } else if (state === STATE_HALF_OPEN) {
      this.setState(slot, STATE_OPEN, now, TransitionReason.PROBE_FAILURE, err)
    }
  }

  private tripClosed (slot: number, now: number, reason: string, cause: unknown): void {
    const canTrip = this.canTrip
    if (canTrip !== undefined) {
      let allowed = true
      try {
        allowed = canTrip(slot) !== false
      } catch {
        // a broken guard must not stop the breaker from protecting us
      }
      if (!allowed) {
        return
      }
    }
    this.setState(slot, STATE_OPEN, now, reason, cause)
  }

  private setState (slot: number, to: number, now: number, reason: string, cause?: unknown, backoff: boolean = true): void {
    const from = this.state[slot]
    if (from === to) {
      return
    }
    if (from === STATE_CLOSED) {
      this.commitDecay(slot, now)
    }
    this.state[slot] = to
    this.since[slot] = now
    this.nextGeneration(slot)
    if (to === STATE_CLOSED) {
      this.expiry[slot] = this.interval > 0 ? now + this.interval : 0
      this.levelSince[slot] = now
    } else if (to === STATE_OPEN) {
      // isolation holds the circuit open by itself, so it adds no open duration and no backoff
      this.expiry[slot] = backoff ? now + this.openDuration(slot) : now
    } else {
      this.expiry[slot] = 0
    }
    this.queue(slot, from, to, reason, now, cause)
  }

  /** The next open duration; raises the backoff level */
  private openDuration (slot: number): number {
    const level = this.level[slot]
    let duration = this.timeout
    if (level > 0) {
      duration = Math.min(this.timeout * this.multiplier ** level, this.maxTimeout)
      if (this.jitter > 0) {
        duration += duration * this.jitter * this.random()
      }
    }
    if (level < this.maxLevel) {
      this.level[slot] = level + 1
    }
    return duration
  }

  private effectiveLevel (slot: number, now: number): number {
    const level = this.level[slot]
    if (level === 0 || this.state[slot] !== STATE_CLOSED) {
      return level
    }
    const steps = Math.floor((now - this.levelSince[slot]) / this.decay)
    return steps >= level ? 0 : level - Math.max(steps, 0)
  }

  private commitDecay (slot: number, now: number): void {
    const level = this.level[slot]
    if (level === 0) {
      return
    }
    const steps = Math.floor((now - this.levelSince[slot]) / this.decay)
    if (steps > 0) {
      this.level[slot] = steps >= level ? 0 : level - steps
      this.levelSince[slot] += steps * this.decay
    }
  }

  private nextGeneration (slot: number): void {
    const next = this.generation[slot] + 1
    this.generation[slot] = next >= GENERATION_LIMIT ? 1 : next
    this.requests[slot] = 0
    this.successes[slot] = 0
    this.failures[slot] = 0
    this.consecutiveSuccesses[slot] = 0
    this.consecutiveFailures[slot] = 0
  }

  private countsObject (slot: number): Counts {
    return {
      requests: this.requests[slot],
      totalSuccesses: this.successes[slot],
      totalFailures: this.failures[slot],
      consecutiveSuccesses: this.consecutiveSuccesses[slot],
      consecutiveFailures: this.consecutiveFailures[slot]
    }
  }

  // -- reporting: queued while the columns change, delivered once they are consistent --

  private queue (slot: number, from: number, to: number, reason: string, now: number, cause: unknown): void {
    const name = this.config.onStateChange !== undefined && this.nameOf !== undefined ? this.nameOf(slot) : ''
    this.pending.push({ slot, from, to, reason, now, cause, name })
  }

  /**
   * Delivers queued transitions. A listener that calls back into the core queues more, and they
   * are delivered by the loop already running, in order.
   */
  private flush (): void {
    if (this.flushing) {
      return
    }
    this.flushing = true
    const pending = this.pending
    try {
      for (let i = 0; i < pending.length; i++) {
        const t = pending[i]
        const listeners = this.listeners
        for (let j = 0; j < listeners.length; j++) {
          try {
            listeners[j](t.slot, t.from, t.to, t.reason, t.now, t.cause)
          } catch {
            // a listener's error is its own; the state is already consistent
          }
        }
        const onStateChange = this.config.onStateChange
        if (onStateChange !== undefined) {
          try {
            onStateChange(t.name, CIRCUIT_STATE_NAMES[t.from], CIRCUIT_STATE_NAMES[t.to])
          } catch {
            // as above
          }
        }
      }
    } finally {
      pending.length = 0
      this.flushing = false
    }
  }
}

/** The level at which the backed-off duration reaches `maxTimeout`: levels above it change nothing */
function maxBackoffLevel (config: ResolvedCircuitBreakerConfig): number {
  if (config.backoffMultiplier <= 1) {
    // no growth, but a raised level still jitters later open durations
    return 1
  }
  let level = 0
  while (level < MAX_LEVEL_CAP && config.timeout * config.backoffMultiplier ** level < config.maxTimeout) {
    level++
  }
  return Math.max(level, 1)
}
