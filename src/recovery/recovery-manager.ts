import { systemClock } from '../clock.ts'
import { EventEmitter } from '../event.ts'
import { PeerTable } from '../peers/peer-table.ts'
import { resolveRecoveryConfig } from './config.ts'
import { CANCELLED, COMPLETED, DEFERRED, DEFERRED_FAILED, FAILED, NONE, RECOVERING, RampState, rampEvictable, rampRate } from './ramp.ts'
import { RecoveryPhase } from './types.ts'
import { checkEngineOptions } from '../validate.ts'
import type { RecoveryEvent, RecoveryFailedEvent, RecoveryFailureReason, RecoveryManagerOptions, RecoveryState, RecoveryStats } from './types.ts'
import type { RecoveryInit, ResolvedRecoveryConfig } from './config.ts'
import type { Clock } from '../clock.ts'
import type { Disposable, Listener } from '../event.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { PeerRecord } from '../peers/peer-record.ts'
import type { RecordKeeper } from '../peers/peer-table.ts'

export { RecoveryPhase } from './types.ts'
export type { RecoveryEvent, RecoveryFailedEvent, RecoveryFailureReason, RecoveryManagerOptions, RecoveryState, RecoveryStats } from './types.ts'

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
/** Success and failure runs stop counting here */
const MAX_COUNT = 0xFFFF

/**
 * Ramps a peer's traffic back up after its circuit closed, admitting a growing fraction of its
 * requests (LINEAR, STEP or EXPONENTIAL in the time since the start) until enough successes in a row
 * complete the recovery, or enough failures in a row (or a timeout) fail it.
 *
 * Admission is a deterministic credit accumulator: each request adds the current rate to the
 * peer's credit and is admitted when the credit reaches 1, which then subtracts 1. Over any run of
 * requests at a constant rate r, the admitted count is within one of r times the requests. The
 * credit starts at 0, so the first admission comes after about 1/r requests.
 *
 * No timers: rates, timeouts and deferred starts are computed from the clock when a peer is read or
 * written. A transition found that way (a deferred start beginning, a timeout) fires its event at
 * the moment it is found, after the state has changed. Per-peer state is a `RampState` in the
 * peer's record, created at its first recovery.
 */
export class RecoveryManager implements RecordKeeper {
  readonly config: Readonly<ResolvedRecoveryConfig>
  /** @internal */
  readonly registry: PeerTable
  /** Subscribes to recovery starts (a deferred one when it begins); returns a disposable */
  readonly onRecoveryStart: (listener: Listener<RecoveryEvent>) => Disposable
  /** Subscribes to recoveries that completed (full traffic again); returns a disposable */
  readonly onRecoveryComplete: (listener: Listener<RecoveryEvent>) => Disposable
  /** Subscribes to recoveries that failed, by failures or timeout; returns a disposable */
  readonly onRecoveryFailed: (listener: Listener<RecoveryFailedEvent>) => Disposable

  private readonly clock: Clock
  private readonly started = new EventEmitter<RecoveryEvent>()
  private readonly completed = new EventEmitter<RecoveryEvent>()
  private readonly failed = new EventEmitter<RecoveryFailedEvent>()
  private completedCount = 0
  private failedCount = 0
  private closed = false

  private readonly rampSpeed: ((record: PeerRecord, at: number) => number) | undefined
  /** Forgets a peer's ramp: the whole record in a table of our own, the ramp in a shared one */
  private readonly forget: (record: PeerRecord) => void

  constructor (config: RecoveryInit = {}, options: RecoveryManagerOptions = {}) {
    this.config = resolveRecoveryConfig(config)
    checkEngineOptions(options)
    this.clock = options.clock ?? options.registry?.clock ?? systemClock
    const shared = options.registry
    this.registry = shared ?? new PeerTable({
      maxPeers: options.maxPeers,
      idleTimeout: 2 * this.config.maxRecoveryTime,
      clock: this.clock
    })
    this.forget = shared === undefined
      ? (record) => { this.registry.delete(record.peer) }
      : (record) => { record.recovery = undefined }
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
   * manager is closed, or the table cannot track the peer.
   */
  startRecovery (peer: PeerLike): boolean {
    if (this.closed) {
      return false
    }
    const now = this.clock.now()
    return this.start(this.registry.get(peer, now), now)
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
    const record = this.registry.find(peer)
    if (record === undefined) {
      return
    }
    const now = this.clock.now()
    this.registry.touch(record, now)
    this.record(record, now, success)
  }

  /** The fraction of requests admitted now: 1.0 when unrestricted, 0 after a failed recovery */
  getRecoveryRate (peer: PeerLike): number {
    return this.rate(this.registry.find(peer), this.clock.now())
  }

  /** Whether the peer is ramping up now (a deferred start does not count until it begins) */
  isRecovering (peer: PeerLike): boolean {
    return this.recovering(this.registry.find(peer), this.clock.now())
  }

  /** A copy of the peer's recovery record (finished ones included), or undefined if it has none */
  getRecoveryState (peer: PeerLike): RecoveryState | undefined {
    const record = this.registry.find(peer)
    const ramp = record?.recovery
    if (record === undefined || ramp === undefined || this.closed) {
      return undefined
    }
    const now = this.clock.now()
    this.advance(record, ramp, now)
    const name = PHASE_NAMES[ramp.phase]
    if (name === undefined || record.recovery !== ramp) {
      return undefined
    }
    return {
      peer: record.peer,
      phase: name,
      isRecovering: ramp.phase === RECOVERING,
      recoveryStartTime: ramp.startTime,
      recoveryEndTime: ramp.endTime,
      currentRate: this.currentRate(ramp, now),
      consecutiveSuccesses: ramp.successes,
      consecutiveFailures: ramp.failures,
      lastActivity: ramp.lastActivity,
      strategy: this.config.strategy
    }
  }

  /** Counts of peers per recovery phase, recoveries completed and failed, and the mean rate */
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
    this.registry.forEach((record) => {
      const ramp = record.recovery
      if (this.closed || ramp === undefined || ramp.phase === NONE) {
        return
      }
      this.advance(record, ramp, now)
      const phase = ramp.phase
      if (phase === NONE || record.recovery !== ramp) {
        return // a listener removed it
      }
      stats.totalPeers++
      if (phase === RECOVERING) {
        stats.recoveringPeers++
        rateSum += this.currentRate(ramp, now)
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
   * Forgets a peer's recovery record without an event (in a table of its own, the whole peer).
   * Returns whether the peer had a record.
   */
  removePeer (peer: PeerLike): boolean {
    const record = this.registry.find(peer)
    if (record === undefined) {
      return false
    }
    const had = record.recovery !== undefined && record.recovery.phase !== NONE
    this.forget(record)
    return had
  }

  /**
   * Forgets now every idle peer whose recovery is over and cooled down (in a table of its own, the
   * whole peer). Returns how many were forgotten.
   */
  prune (now: number = this.clock.now()): number {
    let removed = 0
    const idleTimeout = this.registry.idleTimeout
    this.registry.forEach((record) => {
      if (record.recovery !== undefined && now - record.lastSeen > idleTimeout && this.evictable(record, now)) {
        this.forget(record)
        removed++
      }
    })
    return removed
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
    this.registry.forEach((record) => { this.forget(record) })
  }

  // -- record-level API (hot path: no peer lookup, no allocation unless an event fires) --

  /** See `startRecovery` @internal */
  start (record: PeerRecord | undefined, now: number): boolean {
    if (this.closed || record === undefined) {
      return false
    }
    let ramp = record.recovery
    if (ramp === undefined) {
      ramp = record.recovery = new RampState()
    }
    this.advance(record, ramp, now)
    const phase = ramp.phase
    if (phase === RECOVERING || phase === DEFERRED || phase === DEFERRED_FAILED) {
      return false
    }
    ramp.lastActivity = now
    if (phase !== NONE) {
      const cooldownEnd = ramp.endTime + this.config.cooldownPeriod
      if (now < cooldownEnd) {
        ramp.phase = phase === FAILED ? DEFERRED_FAILED : DEFERRED
        ramp.startTime = cooldownEnd
        ramp.credit = 0
        ramp.successes = 0
        ramp.failures = 0
        return true
      }
    }
    this.begin(record, ramp, now)
    return true
  }

  /**
   * Hands the peer back to its circuit breaker: for when its circuit trips again, which restricts
   * the peer by itself. A running recovery becomes CANCELLED (the cooldown counts from now), a
   * deferred start is withdrawn, and a failed recovery's hold at rate 0 is released, so that the
   * circuit's HALF_OPEN probes can get through. No event and no count. Returns whether anything
   * changed. @internal
   */
  cancel (record: PeerRecord | undefined, now: number): boolean {
    const ramp = record?.recovery
    if (this.closed || record === undefined || ramp === undefined) {
      return false
    }
    const phase = this.advance(record, ramp, now)
    if (phase === RECOVERING) {
      ramp.endTime = now
    } else if (phase === DEFERRED || phase === DEFERRED_FAILED) {
      // never started: the cooldown still counts from the previous end
      ramp.startTime = ramp.endTime
    } else if (phase !== FAILED) {
      return false
    }
    ramp.phase = CANCELLED
    ramp.credit = 0
    return true
  }

  /**
   * Whether a request may go ahead now, counting it for the ramp. True when the peer has no
   * restriction (never recovered, completed, cancelled, untracked, or closed); false after a failed
   * recovery until a new one starts. @internal
   */
  allow (record: PeerRecord | undefined, now: number): boolean {
    const ramp = record?.recovery
    if (this.closed || record === undefined || ramp === undefined) {
      return true
    }
    let phase = ramp.phase
    if (phase === NONE || phase === COMPLETED || phase === CANCELLED) {
      return true
    }
    phase = this.advance(record, ramp, now)
    if (phase === NONE || phase === COMPLETED || phase === CANCELLED) {
      return true
    }
    const rate = this.currentRate(ramp, now)
    if (rate <= 0) {
      return false
    }
    const credit = ramp.credit + rate
    if (credit >= 1 - CREDIT_EPSILON) {
      ramp.credit = credit - 1 > 0 ? credit - 1 : 0
      return true
    }
    ramp.credit = credit
    return false
  }

  /** Records an admitted request's outcome (neutral outcomes should not be recorded at all) @internal */
  record (record: PeerRecord, now: number, success: boolean): void {
    const ramp = record.recovery
    if (this.closed || ramp === undefined) {
      return
    }
    const current = ramp.phase
    if (current !== RECOVERING && current !== DEFERRED && current !== DEFERRED_FAILED) {
      return
    }
    if (this.advance(record, ramp, now) !== RECOVERING) {
      return
    }
    ramp.lastActivity = now
    if (success) {
      ramp.failures = 0
      ramp.successes = ramp.successes < MAX_COUNT ? ramp.successes + 1 : MAX_COUNT
      if (ramp.successes >= this.config.successThreshold) {
        this.finish(ramp, now, COMPLETED)
        this.completedCount++
        if (this.completed.size > 0) {
          this.completed.emit({ peer: record.peer })
        }
      }
    } else {
      ramp.successes = 0
      ramp.failures = ramp.failures < MAX_COUNT ? ramp.failures + 1 : MAX_COUNT
      if (ramp.failures >= this.config.failureThreshold) {
        this.fail(record, ramp, now, 'failures')
      }
    }
  }

  /** The fraction admitted now: 1 with no restriction (or no record), 0 after a failed recovery @internal */
  rate (record: PeerRecord | undefined, now: number): number {
    const ramp = record?.recovery
    if (this.closed || record === undefined || ramp === undefined) {
      return 1
    }
    this.advance(record, ramp, now)
    return this.currentRate(ramp, now)
  }

  /** Whether the peer is ramping up now (a deferred start is not running yet) @internal */
  recovering (record: PeerRecord | undefined, now: number): boolean {
    const ramp = record?.recovery
    if (this.closed || record === undefined || ramp === undefined || ramp.phase === NONE) {
      return false
    }
    return this.advance(record, ramp, now) === RECOVERING
  }

  // -- RecordKeeper --

  /** Not while recovering, deferred or cooling down (see `rampEvictable`) @internal */
  evictable (record: PeerRecord, now: number): boolean {
    return record.recovery === undefined || rampEvictable(record.recovery, this.config, now)
  }

  // -- internals --

  /** Applies lazily found transitions (deferred start, timeout), firing their events. Returns the phase. */
  private advance (record: PeerRecord, ramp: RampState, now: number): number {
    if ((ramp.phase === DEFERRED || ramp.phase === DEFERRED_FAILED) && now >= ramp.startTime) {
      this.begin(record, ramp, ramp.startTime)
      // a start listener may have changed it
    }
    if (ramp.phase === RECOVERING && now - ramp.startTime > this.config.maxRecoveryTime) {
      this.fail(record, ramp, ramp.startTime + this.config.maxRecoveryTime, 'timeout')
    }
    return ramp.phase
  }

  private begin (record: PeerRecord, ramp: RampState, at: number): void {
    ramp.phase = RECOVERING
    ramp.startTime = at
    ramp.credit = 0
    ramp.successes = 0
    ramp.failures = 0
    ramp.speed = this.rampSpeed?.(record, at) ?? 1
    if (ramp.lastActivity < at) {
      ramp.lastActivity = at
    }
    if (this.started.size > 0) {
      this.started.emit({ peer: record.peer })
    }
  }

  private fail (record: PeerRecord, ramp: RampState, at: number, reason: RecoveryFailureReason): void {
    this.finish(ramp, at, FAILED)
    this.failedCount++
    if (this.failed.size > 0) {
      this.failed.emit({ peer: record.peer, reason })
    }
  }

  private finish (ramp: RampState, at: number, phase: number): void {
    ramp.phase = phase
    ramp.endTime = at
    ramp.credit = 0
  }

  /** The rate for the ramp's phase, after `advance` */
  private currentRate (ramp: RampState, now: number): number {
    return rampRate(ramp, this.config, now)
  }
}
