import { systemClock } from '../clock.ts'
import { EventEmitter } from '../event.ts'
import { growColumn } from '../peers/columns.ts'
import { PeerRegistry } from '../peers/registry.ts'
import { resolveRecoveryConfig } from './config.ts'
import { recoveryRate } from './strategies.ts'
import type { RecoveryConfig, ResolvedRecoveryConfig } from './config.ts'
import type { Clock } from '../clock.ts'
import type { Disposable, Listener } from '../event.ts'
import type { SlotColumns } from '../peers/columns.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { RecoveryStrategy } from '../states.ts'

export interface RecoveryManagerOptions {
  /** @default the registry's clock, else systemClock */
  clock?: Clock

  /**
   * A registry shared with the other per-peer components (breaker, health). Without one the
   * manager creates its own, which forgets a finished recovery once idle for twice
   * `maxRecoveryTime` (the seed's cleanup age); `maxPeers` then applies to it.
   */
  registry?: PeerRegistry

  /** @default 10000 */
  maxPeers?: number

  /**
   * Auto-tuning hook: how fast this peer's ramp runs (1 = as configured, 2 = twice as fast),
   * asked once when its recovery begins so the rate never jumps backwards. Time limits
   * (`maxRecoveryTime`, the cooldown) stay in real time.
   *
   * @default () => 1
   */
  rampSpeed?: (slot: number, at: number) => number
}

/** Where a peer's recovery stands */
export const RecoveryPhase = {
  /** Ramping up: a fraction of requests is admitted */
  RECOVERING: 'RECOVERING',
  /** Asked to start during the cooldown; starts when the cooldown ends */
  DEFERRED: 'DEFERRED',
  /** Ended after `successThreshold` successes in a row: full traffic */
  COMPLETED: 'COMPLETED',
  /** Ended after `failureThreshold` failures in a row or a timeout: no traffic until a new start or `cancel` */
  FAILED: 'FAILED',
  /** Stopped by `cancel` (the circuit tripped again and restricts the peer itself): no restriction from recovery */
  CANCELLED: 'CANCELLED'
} as const
export type RecoveryPhase = typeof RecoveryPhase[keyof typeof RecoveryPhase]

/** Why a recovery failed */
export type RecoveryFailureReason = 'failures' | 'timeout'

/** A copy of one peer's recovery record */
export interface RecoveryState {
  peer: PeerLike
  phase: RecoveryPhase
  /** True only in the RECOVERING phase */
  isRecovering: boolean
  /** When the ramp started, or will start when DEFERRED (clock ms) */
  recoveryStartTime: number
  /** When the last recovery ended (completed, failed, cancelled), or 0 if none has */
  recoveryEndTime: number
  /** The fraction of requests admitted now */
  currentRate: number
  consecutiveSuccesses: number
  consecutiveFailures: number
  /** The last start or recorded attempt */
  lastActivity: number
  strategy: RecoveryStrategy
}

export interface RecoveryStats {
  /** Peers with a recovery record (running, deferred or finished) */
  totalPeers: number
  recoveringPeers: number
  deferredPeers: number
  /** Recoveries completed since the manager was created */
  completedRecoveries: number
  /** Recoveries failed (by failures or timeout) since the manager was created */
  failedRecoveries: number
  /** Mean rate over the recovering peers; 0 when none is */
  averageRecoveryRate: number
}

export interface RecoveryEvent {
  peer: PeerLike
}

export interface RecoveryFailedEvent {
  peer: PeerLike
  reason: RecoveryFailureReason
}

// phase codes in the `phase` column; 0 so that a reset slot has no record
const NONE = 0
const RECOVERING = 1
/** Deferred start, held at the ramp's starting rate */
const DEFERRED = 2
/** Deferred start after a failed recovery, held at 0 */
const DEFERRED_FAILED = 3
const COMPLETED = 4
const FAILED = 5
const CANCELLED = 6
const PHASE_NAMES: ReadonlyArray<RecoveryPhase | undefined> = [
  undefined,
  RecoveryPhase.RECOVERING,
  RecoveryPhase.DEFERRED,
  RecoveryPhase.DEFERRED,
  RecoveryPhase.COMPLETED,
  RecoveryPhase.FAILED,
  RecoveryPhase.CANCELLED
]

/** Absorbs float rounding in the credit sum, so that 10 x 0.1 admits on the 10th request */
const CREDIT_EPSILON = 1e-9
const MAX_UINT16 = 0xFFFF

/**
 * Ramps a peer's traffic back up after its circuit closed, admitting a growing fraction of its
 * requests (LINEAR, STEP or EXPONENTIAL in the time since the start) until enough successes in a row
 * complete the recovery, or enough failures in a row (or a timeout) fail it.
 *
 * Admission is a deterministic credit accumulator: each request adds the current rate to the
 * peer's credit and is admitted when the credit reaches 1, which then subtracts 1. Over any run of
 * requests at a constant rate r, the admitted count is within one of r times the requests (the
 * seed's `shouldAllowRequest` always returned true). The credit starts at 0, so the first
 * admission comes after about 1/r requests.
 *
 * No timers: rates, timeouts and deferred starts are computed from the clock when a peer is read or
 * written. A transition found that way (a deferred start beginning, a timeout) fires its event at
 * the moment it is found, after the state has changed. Per-peer state is kept in columns of a
 * `PeerRegistry` (37 bytes a peer).
 */
export class RecoveryManager implements SlotColumns {
  readonly config: Readonly<ResolvedRecoveryConfig>
  readonly registry: PeerRegistry
  readonly onRecoveryStart: (listener: Listener<RecoveryEvent>) => Disposable
  readonly onRecoveryComplete: (listener: Listener<RecoveryEvent>) => Disposable
  readonly onRecoveryFailed: (listener: Listener<RecoveryFailedEvent>) => Disposable

  private readonly clock: Clock
  private readonly ownRegistry: boolean
  private readonly started = new EventEmitter<RecoveryEvent>()
  private readonly completed = new EventEmitter<RecoveryEvent>()
  private readonly failed = new EventEmitter<RecoveryFailedEvent>()
  private completedCount = 0
  private failedCount = 0
  private closed = false

  // -- columns --
  private phase: Uint8Array = new Uint8Array(0)
  /** Ramp start; the scheduled start while deferred */
  private startTime: Float64Array = new Float64Array(0)
  /** When the last recovery ended, for the cooldown */
  private endTime: Float64Array = new Float64Array(0)
  private lastActivity: Float64Array = new Float64Array(0)
  private credit: Float64Array = new Float64Array(0)
  private successes: Uint16Array = new Uint16Array(0)
  private failures: Uint16Array = new Uint16Array(0)
  private speed: Float32Array = new Float32Array(0)
  private readonly rampSpeed: ((slot: number, at: number) => number) | undefined

  constructor (config: RecoveryConfig = {}, options: RecoveryManagerOptions = {}) {
    this.config = resolveRecoveryConfig(config)
    this.clock = options.clock ?? options.registry?.clock ?? systemClock
    this.ownRegistry = options.registry == null
    this.registry = options.registry ?? new PeerRegistry({
      maxPeers: options.maxPeers,
      idleTimeout: 2 * this.config.maxRecoveryTime,
      clock: this.clock
    })
    this.rampSpeed = options.rampSpeed
    this.onRecoveryStart = this.started.listen
    this.onRecoveryComplete = this.completed.listen
    this.onRecoveryFailed = this.failed.listen
    this.registry.attach(this)
  }

  // -- peer-level API --

  /**
   * Starts ramping the peer up. Returns true when a recovery started now or was deferred to the
   * end of the cooldown; false when one is already running or deferred (nothing changes), the
   * manager is closed, or the registry cannot track the peer.
   */
  startRecovery (peer: PeerLike): boolean {
    if (this.closed) {
      return false
    }
    const now = this.clock.now()
    return this.start(this.registry.slot(peer, now), now)
  }

  /** Stops a running or deferred recovery, or releases a failed one's hold, without an event (see `cancel`) */
  cancelRecovery (peer: PeerLike): boolean {
    return this.cancel(this.registry.find(peer), this.clock.now())
  }

  /** Whether a request to the peer may go ahead now; counts as one request for the ramp */
  shouldAllowRequest (peer: PeerLike): boolean {
    return this.allow(this.registry.find(peer), this.clock.now())
  }

  /** Records the outcome of a request admitted during recovery; ignored when not recovering */
  recordRecoveryAttempt (peer: PeerLike, success: boolean): void {
    const slot = this.registry.find(peer)
    if (slot === -1) {
      return
    }
    const now = this.clock.now()
    this.registry.touch(slot, now)
    this.record(slot, now, success)
  }

  /** The fraction of requests admitted now: 1.0 when unrestricted, 0 after a failed recovery */
  getRecoveryRate (peer: PeerLike): number {
    return this.rate(this.registry.find(peer), this.clock.now())
  }

  isRecovering (peer: PeerLike): boolean {
    return this.recovering(this.registry.find(peer), this.clock.now())
  }

  /** A copy of the peer's recovery record (finished ones included), or undefined if it has none */
  getRecoveryState (peer: PeerLike): RecoveryState | undefined {
    const slot = this.registry.find(peer)
    if (slot === -1 || this.closed) {
      return undefined
    }
    const now = this.clock.now()
    this.advance(slot, now)
    const phase = this.phase[slot]
    const name = PHASE_NAMES[phase]
    if (name === undefined) {
      return undefined
    }
    return {
      peer: this.registry.peer(slot),
      phase: name,
      isRecovering: phase === RECOVERING,
      recoveryStartTime: this.startTime[slot],
      recoveryEndTime: this.endTime[slot],
      currentRate: this.currentRate(slot, now),
      consecutiveSuccesses: this.successes[slot],
      consecutiveFailures: this.failures[slot],
      lastActivity: this.lastActivity[slot],
      strategy: this.config.strategy
    }
  }

  getRecoveryStats (): RecoveryStats {
    const now = this.clock.now()
    const stats: RecoveryStats = {
      totalPeers: 0,
      recoveringPeers: 0,
      deferredPeers: 0,
      completedRecoveries: 0,
      failedRecoveries: 0,
      averageRecoveryRate: 0
    }
    let rateSum = 0
    this.registry.forEach((slot) => {
      if (this.closed || this.phase[slot] === NONE) {
        return
      }
      this.advance(slot, now)
      const phase = this.phase[slot]
      if (phase === NONE) {
        return // a listener removed it
      }
      stats.totalPeers++
      if (phase === RECOVERING) {
        stats.recoveringPeers++
        rateSum += this.currentRate(slot, now)
      } else if (phase === DEFERRED || phase === DEFERRED_FAILED) {
        stats.deferredPeers++
      }
    })
    // read after the sweep, which may have found timeouts
    stats.completedRecoveries = this.completedCount
    stats.failedRecoveries = this.failedCount
    if (stats.recoveringPeers > 0) {
      stats.averageRecoveryRate = rateSum / stats.recoveringPeers
    }
    return stats
  }

  /**
   * Forgets a peer's recovery record without an event. A manager with its own registry forgets the
   * peer entirely; with a shared registry only the recovery columns are cleared. Returns whether
   * the peer had a record.
   */
  removePeer (peer: PeerLike): boolean {
    const slot = this.registry.find(peer)
    if (slot === -1) {
      return false
    }
    const had = this.phase[slot] !== NONE
    if (this.ownRegistry) {
      this.registry.delete(peer)
    } else {
      this.reset(slot)
    }
    return had
  }

  /**
   * For a manager with its own registry: forgets now every idle peer whose recovery is over and
   * cooled down. Returns how many were forgotten (0 with a shared registry, which is pruned by
   * its owner).
   */
  prune (now: number = this.clock.now()): number {
    return this.ownRegistry ? this.registry.prune(now) : 0
  }

  /**
   * Drops every listener and every recovery record. A closed manager restricts nothing: `allow`
   * admits every request and `start` does nothing.
   */
  close (): void {
    if (this.closed) {
      return
    }
    this.closed = true
    this.started.clear()
    this.completed.clear()
    this.failed.clear()
    if (this.ownRegistry) {
      this.registry.clear()
    } else {
      this.registry.forEach((slot) => { this.reset(slot) })
    }
  }

  // -- slot-level API (hot path: no peer lookup, no allocation unless an event fires) --

  /** See `startRecovery` */
  start (slot: number, now: number): boolean {
    if (this.closed || slot < 0) {
      return false
    }
    this.advance(slot, now)
    const phase = this.phase[slot]
    if (phase === RECOVERING || phase === DEFERRED || phase === DEFERRED_FAILED) {
      return false
    }
    this.lastActivity[slot] = now
    if (phase !== NONE) {
      const cooldownEnd = this.endTime[slot] + this.config.cooldownPeriod
      if (now < cooldownEnd) {
        this.phase[slot] = phase === FAILED ? DEFERRED_FAILED : DEFERRED
        this.startTime[slot] = cooldownEnd
        this.credit[slot] = 0
        this.successes[slot] = 0
        this.failures[slot] = 0
        return true
      }
    }
    this.begin(slot, now)
    return true
  }

  /**
   * Hands the peer back to its circuit breaker: for when its circuit trips again, which restricts
   * the peer by itself. A running recovery becomes CANCELLED (the cooldown counts from now), a
   * deferred start is withdrawn, and a failed recovery's hold at rate 0 is released, so that the
   * circuit's HALF_OPEN probes can get through. No event and no count. Returns whether anything
   * changed.
   */
  cancel (slot: number, now: number): boolean {
    if (this.closed || slot < 0) {
      return false
    }
    const phase = this.advance(slot, now)
    if (phase === RECOVERING) {
      this.endTime[slot] = now
    } else if (phase === DEFERRED || phase === DEFERRED_FAILED) {
      // never started: the cooldown still counts from the previous end
      this.startTime[slot] = this.endTime[slot]
    } else if (phase !== FAILED) {
      return false
    }
    this.phase[slot] = CANCELLED
    this.credit[slot] = 0
    return true
  }

  /**
   * Whether a request may go ahead now, counting it for the ramp. True when the peer has no
   * restriction (never recovered, completed, cancelled, untracked: slot -1, or closed); false after
   * a failed recovery until a new one starts.
   */
  allow (slot: number, now: number): boolean {
    if (this.closed || slot < 0) {
      return true
    }
    let phase = this.phase[slot]
    if (phase === NONE || phase === COMPLETED || phase === CANCELLED) {
      return true
    }
    phase = this.advance(slot, now)
    if (phase === NONE || phase === COMPLETED || phase === CANCELLED) {
      return true
    }
    const rate = this.currentRate(slot, now)
    if (rate <= 0) {
      return false
    }
    const credit = this.credit[slot] + rate
    if (credit >= 1 - CREDIT_EPSILON) {
      this.credit[slot] = credit - 1 > 0 ? credit - 1 : 0
      return true
    }
    this.credit[slot] = credit
    return false
  }

  /** Records an admitted request's outcome (neutral outcomes should not be recorded at all) */
  record (slot: number, now: number, success: boolean): void {
    if (this.closed || slot < 0) {
      return
    }
    const current = this.phase[slot]
    if (current !== RECOVERING && current !== DEFERRED && current !== DEFERRED_FAILED) {
      return
    }
    if (this.advance(slot, now) !== RECOVERING) {
      return
    }
    this.lastActivity[slot] = now
    if (success) {
      this.failures[slot] = 0
      const successes = this.successes[slot] < MAX_UINT16 ? this.successes[slot] + 1 : MAX_UINT16
      this.successes[slot] = successes
      if (successes >= this.config.successThreshold) {
        this.finish(slot, now, COMPLETED)
        this.completedCount++
        if (this.completed.size > 0) {
          this.completed.emit({ peer: this.registry.peer(slot) })
        }
      }
    } else {
      this.successes[slot] = 0
      const failures = this.failures[slot] < MAX_UINT16 ? this.failures[slot] + 1 : MAX_UINT16
      this.failures[slot] = failures
      if (failures >= this.config.failureThreshold) {
        this.fail(slot, now, 'failures')
      }
    }
  }

  /** The fraction admitted now: 1 with no restriction (or slot -1), 0 after a failed recovery */
  rate (slot: number, now: number): number {
    if (this.closed || slot < 0) {
      return 1
    }
    this.advance(slot, now)
    return this.currentRate(slot, now)
  }

  /** Whether the slot is ramping up now (a deferred start is not running yet) */
  recovering (slot: number, now: number): boolean {
    if (this.closed || slot < 0 || this.phase[slot] === NONE) {
      return false
    }
    return this.advance(slot, now) === RECOVERING
  }

  // -- SlotColumns --

  grow (capacity: number): void {
    this.phase = growColumn(this.phase, capacity)
    this.startTime = growColumn(this.startTime, capacity)
    this.endTime = growColumn(this.endTime, capacity)
    this.lastActivity = growColumn(this.lastActivity, capacity)
    this.credit = growColumn(this.credit, capacity)
    this.successes = growColumn(this.successes, capacity)
    this.failures = growColumn(this.failures, capacity)
    this.speed = growColumn(this.speed, capacity)
  }

  reset (slot: number): void {
    this.phase[slot] = NONE
    this.startTime[slot] = 0
    this.endTime[slot] = 0
    this.lastActivity[slot] = 0
    this.credit[slot] = 0
    this.successes[slot] = 0
    this.failures[slot] = 0
    this.speed[slot] = 1
  }

  /**
   * A peer may be forgotten unless it is recovering, deferred or cooling down. Pure (the registry
   * asks in the middle of its own updates): a timeout not yet noticed is worked out, not applied.
   * A peer whose failed recovery has cooled down may be forgotten: its circuit, tripped again on
   * the failure, is what keeps it out.
   */
  evictable (slot: number, now: number): boolean {
    const phase = this.phase[slot]
    if (phase === NONE) {
      return true
    }
    let end = this.endTime[slot]
    if (phase === RECOVERING || phase === DEFERRED || phase === DEFERRED_FAILED) {
      const start = this.startTime[slot]
      if (now < start || now - start <= this.config.maxRecoveryTime) {
        return false
      }
      end = start + this.config.maxRecoveryTime
    }
    return now >= end + this.config.cooldownPeriod
  }

  // -- internals --

  /** Applies lazily found transitions (deferred start, timeout), firing their events. Returns the phase. */
  private advance (slot: number, now: number): number {
    let phase = this.phase[slot]
    if ((phase === DEFERRED || phase === DEFERRED_FAILED) && now >= this.startTime[slot]) {
      this.begin(slot, this.startTime[slot])
      phase = this.phase[slot] // a start listener may have changed it
    }
    if (phase === RECOVERING && now - this.startTime[slot] > this.config.maxRecoveryTime) {
      this.fail(slot, this.startTime[slot] + this.config.maxRecoveryTime, 'timeout')
      phase = this.phase[slot]
    }
    return phase
  }

  private begin (slot: number, at: number): void {
    this.phase[slot] = RECOVERING
    this.startTime[slot] = at
    this.credit[slot] = 0
    this.successes[slot] = 0
    this.failures[slot] = 0
    this.speed[slot] = this.rampSpeed?.(slot, at) ?? 1
    if (this.lastActivity[slot] < at) {
      this.lastActivity[slot] = at
    }
    if (this.started.size > 0) {
      this.started.emit({ peer: this.registry.peer(slot) })
    }
  }

  private fail (slot: number, at: number, reason: RecoveryFailureReason): void {
    this.finish(slot, at, FAILED)
    this.failedCount++
    if (this.failed.size > 0) {
      this.failed.emit({ peer: this.registry.peer(slot), reason })
    }
  }

  private finish (slot: number, at: number, phase: number): void {
    this.phase[slot] = phase
    this.endTime[slot] = at
    this.credit[slot] = 0
  }

  /** The rate for the slot's phase, after `advance` */
  private currentRate (slot: number, now: number): number {
    const phase = this.phase[slot]
    if (phase === RECOVERING || phase === DEFERRED) {
      const { strategy, initialRecoveryRate, recoveryIncrement, maxRecoveryRate, recoveryInterval } = this.config
      const intervals = phase === RECOVERING ? (now - this.startTime[slot]) * this.speed[slot] / recoveryInterval : 0
      return recoveryRate(strategy, initialRecoveryRate, recoveryIncrement, maxRecoveryRate, intervals)
    }
    if (phase === FAILED || phase === DEFERRED_FAILED) {
      return 0
    }
    return 1
  }
}
