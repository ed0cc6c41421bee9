import { systemClock } from '../clock.ts'
import { ClosedError } from '../errors.ts'
import { abortErrorFor, classifyOutcome } from '../breaker/execute.ts'
import { TransitionReason } from '../breaker/core.ts'
import { BitswapCircuitBreaker } from '../breaker/per-peer.ts'
import { REJECTED_RECOVERY, UNTRACKED_PERMIT } from '../breaker/permit.ts'
import { DEFAULT_MAX_PEERS } from '../peers/config.ts'
import { HealthMonitor } from '../health/health-monitor.ts'
import { PeerTable } from '../peers/peer-table.ts'
import { RecoveryManager } from '../recovery/recovery-manager.ts'
import { CircuitState, HealthStatus, Outcome } from '../states.ts'
import { defaultReadyToTrip } from '../breaker/config.ts'
import { AutoTune } from './auto-tune.ts'
import { ProtectionEmitter } from './events.ts'
import { countCircuitStates, overallStatus } from './status.ts'
import { resolveProtectionConfig } from './config.ts'
import { PopulationGuard } from './population-guard.ts'
import { MAX_SNAPSHOT_ENTRIES, prepareSnapshot, SNAPSHOT_VERSION } from './snapshot.ts'
import { checkEngineOptions } from '../validate.ts'
import type { PreparedSnapshot } from './snapshot.ts'
import type { ProtectionInit } from './config.ts'
import type { LocalSuspicionChange } from './population-guard.ts'
import type { OverallStatus, PeerSnapshot, PeerStatus, ProtectionManagerOptions, ProtectionSnapshot, RestoreOptions, RestoreStats, TransitionEvent } from './types.ts'
import type { Counts } from '../breaker/config.ts'
import type { ExecuteOptions, ProtectedFunction } from '../breaker/execute.ts'
import type { Admission, Permit, PermitOwner, Rejection } from '../breaker/permit.ts'
import type { Clock } from '../clock.ts'
import type { Disposable } from '../event.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { PeerRecord } from '../peers/peer-record.ts'

export { defaultProtectionConfig } from './config.ts'
export type { PreparedSnapshot } from './snapshot.ts'
export type { ProtectionConfig, ProtectionConfigInit, ProtectionInit } from './config.ts'
export type { CircuitStateCounts, OverallStatus, PeerSnapshot, PeerStatus, ProtectionManagerOptions, ProtectionSnapshot, RestoreOptions, RestoreStats, TransitionEvent } from './types.ts'

/**
 * Breaker → recovery gate → the call → health record, per peer, sharing one bounded peer table.
 * Our own rejections are never the peer's failures, so a gated peer is not punished twice.
 */
export class BitswapProtectionManager extends ProtectionEmitter implements PermitOwner {
  readonly clock: Clock
  /** @internal */
  readonly registry: PeerTable
  readonly circuitBreaker: BitswapCircuitBreaker
  readonly healthMonitor: HealthMonitor
  readonly recoveryManager: RecoveryManager
  /** @internal */
  readonly populationGuard: PopulationGuard
  /** @internal */
  readonly autoTune: AutoTune
  private readonly enableAutoRecovery: boolean
  private readonly enableHealthBasedTripping: boolean
  /** Outlier detection is off by default: then a settle does not even ask */
  private readonly outlierDetection: boolean
  private readonly disposables: Disposable[] = []
  private rejectedOpen = 0
  private rejectedHalfOpen = 0
  private rejectedRecovery = 0
  private trips = 0
  private restoreStats: RestoreStats | undefined
  private closed = false
  /** The record `punish` is tripping: the population guard is not asked */
  private punishing: PeerRecord | undefined

  constructor (init: ProtectionInit = {}, options: ProtectionManagerOptions = {}) {
    // resolved once, up front: an error names the field by its full path and nothing is built
    super()
    const resolved = resolveProtectionConfig(init)
    checkEngineOptions(options)
    this.clock = options.clock ?? systemClock
    this.registry = new PeerTable({ maxPeers: resolved.maxPeers, idleTimeout: resolved.idleTimeout, clock: this.clock })
    this.circuitBreaker = new BitswapCircuitBreaker(resolved.circuitBreaker, { clock: this.clock, random: options.random, registry: this.registry })
    this.healthMonitor = new HealthMonitor(resolved.healthMonitor, { clock: this.clock, registry: this.registry })
    this.populationGuard = new PopulationGuard(resolved.populationGuard, { registry: this.registry, clock: this.clock })
    const core = this.circuitBreaker.core
    this.autoTune = new AutoTune(resolved.autoTune, { guard: this.populationGuard, core })
    this.recoveryManager = new RecoveryManager(resolved.recovery, {
      clock: this.clock,
      registry: this.registry,
      rampSpeed: resolved.enableAutoTuning ? (record, at) => this.autoTune.recoveryRampSpeed(record, at) : undefined
    })
    this.enableAutoRecovery = resolved.enableAutoRecovery
    this.enableHealthBasedTripping = resolved.enableHealthBasedTripping
    this.outlierDetection = resolved.populationGuard.outlierDetection

    // without a user rule, trip sensitivity is auto-tuned per peer (auto-tune.ts); the default rule
    // (as in a config spread from defaultProtectionConfig()) is not a user rule
    if (resolved.circuitBreaker.readyToTrip === defaultReadyToTrip && resolved.enableAutoTuning) {
      core.policy = { shouldTrip: (counts: Counts, record, now) => this.autoTune.shouldTrip(record, counts, now) }
    }
    core.canTrip = (record, now) => record === this.punishing || this.populationGuard.canTrip(record, now)
    this.disposables.push(
      core.onTransition(this.populationGuard.recordTransition),
      core.onTransition((record, from, to, reason, now) => {
        this.reportTransition(() => {
          if (to === CircuitState.OPEN) {
            if (isTrip(reason)) {
              this.trips++
            }
            // a peer that trips again while ramping back starts over once it closes
            this.recoveryManager.cancel(record, now)
          } else if (to === CircuitState.CLOSED && from === CircuitState.HALF_OPEN && this.enableAutoRecovery) {
            this.recoveryManager.start(record, now)
          }
          this.emit('transition', { peer: record.peer, from, to, reason })
        })
      }),
      this.recoveryManager.onRecoveryStart((evt) => { this.emit('recovery:start', evt) }),
      this.recoveryManager.onRecoveryComplete((evt) => { this.emit('recovery:complete', evt) }),
      this.recoveryManager.onRecoveryFailed((evt) => {
        const record = this.registry.find(evt.peer)
        if (record !== undefined) {
          const now = this.clock.now()
          // a ramp that ran out of time without failures only met a quiet peer: let it be (a failed
          // recovery holds its peer at rate 0, which only a trip or a cancel undoes); a vetoed trip
          // (population guard) must not leave the peer shut out at rate 0 either
          if (evt.reason !== 'failures' || !core.trip(record, now, TransitionReason.RECOVERY_FAILED)) {
            this.recoveryManager.cancel(record, now)
          }
        }
        // after the trip it caused, as the trip's own event
        this.emit('recovery:fail', evt)
      }),
      this.healthMonitor.onStatusChange((evt) => {
        if (this.enableHealthBasedTripping && evt.to === HealthStatus.UNHEALTHY) {
          const record = this.registry.find(evt.peer)
          if (record !== undefined) {
            core.trip(record, this.clock.now(), TransitionReason.UNHEALTHY)
          }
        }
        this.emit('health:change', evt)
      }),
      this.populationGuard.onChange((evt) => { this.emit('population:change', evt) })
    )
  }

  /** `listener` after every circuit state change; the handle unsubscribes (see the `transition` event) */
  onTransition (listener: (evt: TransitionEvent) => void): Disposable {
    return this.listen('transition', listener)
  }

  /** `listener` when local-network suspicion starts or clears (see the `population:change` event) */
  onPopulationChange (listener: (evt: LocalSuspicionChange) => void): Disposable {
    return this.listen('population:change', listener)
  }

  // -- the two-step API used by the libp2p service (hot path: one permit, nothing else) --

  /**
   * Asks whether a request to `peer` may go ahead: a `Permit` to settle when it ends (an untracked
   * one, which settles to nothing, when the table is full of peers it must keep), or a rejection.
   * `throttle: false` skips the recovery ramp (the libp2p service uses it for inbound streams:
   * they carry answers we asked for). Pass `now` when the caller has just read the clock.
   */
  admit (peer: PeerLike, throttle: boolean = true, now: number = this.clock.now()): Admission {
    if (this.closed) {
      return UNTRACKED_PERMIT
    }
    const record = this.registry.get(peer, now)
    if (record === undefined) {
      return UNTRACKED_PERMIT
    }
    // the ramp first: a recovery that times out on this read re-trips the circuit before admission
    if (throttle && !this.recoveryManager.allow(record, now)) {
      this.rejectedRecovery++
      return REJECTED_RECOVERY
    }
    const admission = this.circuitBreaker.core.admit(record, now, this)
    if (!admission.admitted) {
      this.countRejection(admission)
    }
    return admission
  }

  // out of line, so that the hot paths of `admit` and `record` stay small enough to inline

  private countRejection (rejection: Rejection): void {
    if (rejection.reason === 'open') {
      this.rejectedOpen++
    } else {
      this.rejectedHalfOpen++
    }
  }

  private tripOutliers (now: number): void {
    const outliers = this.populationGuard.evaluateOutliers(now)
    for (let i = 0; i < outliers.length; i++) {
      this.circuitBreaker.core.trip(outliers[i], now, TransitionReason.OUTLIER)
    }
  }

  /** `Permit.settle` of the permits this manager gave @internal */
  settlePermit (permit: Permit, outcome: Outcome, latencyMs: number, err: unknown, now: number | undefined): void {
    const record = permit.record
    if (record !== undefined) {
      this.record(record, permit.epoch, outcome, now ?? permit.at + (latencyMs > 0 ? latencyMs : 0), latencyMs, err)
    }
  }

  /**
   * Records a verdict about a peer that did not come from an admitted request (message-level
   * observation: an answered want, a missed deadline, garbage). It counts as one request of the
   * current epoch; in HALF_OPEN a failure still reopens when the probe quota is used up.
   */
  observe (peer: PeerLike, outcome: Outcome, latencyMs: number, err?: unknown): void {
    if (this.closed) {
      return
    }
    const now = this.clock.now()
    const record = this.registry.get(peer, now)
    if (record === undefined) {
      return
    }
    const core = this.circuitBreaker.core
    const rejection = core.acquire(record, now)
    if (rejection === undefined) {
      this.record(record, record.epoch, outcome, now, latencyMs, err)
      return
    }
    if (outcome !== Outcome.NEUTRAL) {
      // OPEN: the verdict still says how the peer is doing; HALF_OPEN and full: a failure reopens
      this.healthMonitor.record(record, now, latencyMs, outcome, err)
      if (outcome === Outcome.FAILURE && rejection.reason === 'half-open-full') {
        core.trip(record, now, TransitionReason.PROBE_FAILURE, err)
      }
    }
  }

  private record (record: PeerRecord, epoch: number, outcome: Outcome, now: number, latencyMs: number, err: unknown): void {
    if (!record.live) {
      // the peer was forgotten while the request ran
      return
    }
    // the guard hears the outcome before the core, so the failure that makes our own network
    // suspect cannot trip this peer's circuit
    this.populationGuard.onOutcome(record, outcome, now)
    this.autoTune.record(record, now)
    // asked before the core settles: the probe that closes the circuit starts a ramp it was not
    // admitted by, so it must not count as the ramp's first success
    const ramping = this.recoveryManager.recovering(record, now)
    this.circuitBreaker.core.settle(record, epoch, outcome, now, err)
    if (outcome !== Outcome.NEUTRAL) {
      this.healthMonitor.record(record, now, latencyMs, outcome, err)
      if (ramping) {
        this.recoveryManager.record(record, now, outcome === Outcome.SUCCESS)
      }
    }
    if (this.outlierDetection) {
      this.tripOutliers(now)
    }
  }

  // -- the Go original's API --

  /**
   * Runs `fn` for `peer` if its circuit and recovery ramp allow it, and records the outcome.
   * Rejections throw `CircuitOpenError`, `TooManyRequestsError` or `RecoveryThrottledError` without
   * calling `fn`. An aborted `signal` is neutral: it counts neither way.
   */
  async executeRequest<T> (peer: PeerLike, fn: ProtectedFunction<T>, options?: ExecuteOptions): Promise<T> {
    if (this.closed) {
      throw new ClosedError('protection manager is closed')
    }
    const signal = options?.signal
    if (signal?.aborted === true) {
      throw abortErrorFor(signal)
    }
    const admission = this.admit(peer)
    if (!admission.admitted) {
      throw admission.error
    }
    const isSuccessful = this.circuitBreaker.config.isSuccessful
    const startedAt = admission.at
    let result: T
    try {
      result = await fn(signal)
    } catch (err) {
      const now = this.clock.now()
      admission.settle(classifyOutcome(isSuccessful, true, err, signal), now - startedAt, err, now)
      throw err
    }
    const now = this.clock.now()
    admission.settle(classifyOutcome(isSuccessful, false, undefined, signal), now - startedAt, undefined, now)
    return result
  }

  /** The peer's circuit state; CLOSED for an unknown peer */
  circuitState (peer: PeerLike): CircuitState {
    return this.circuitBreaker.getPeerState(peer)
  }

  /** When the peer's OPEN circuit lets probes through (Infinity while isolated, 0 when not OPEN) */
  openUntil (peer: PeerLike): number {
    return this.circuitBreaker.getPeerOpenUntil(peer)
  }

  /** Forces a peer's circuit OPEN now (it then follows the normal OPEN → HALF_OPEN path) */
  trip (peer: PeerLike, reason: TransitionReason = TransitionReason.TRIP): boolean {
    return this.circuitBreaker.tripPeer(peer, reason)
  }

  /** Trips a peer that flooded us whatever the population guard says: no detector is in doubt */
  punish (peer: PeerLike): boolean {
    const now = this.clock.now()
    const record = this.closed ? undefined : this.registry.get(peer, now)
    if (record === undefined) {
      return false
    }
    this.punishing = record
    try {
      return this.circuitBreaker.core.trip(record, now, TransitionReason.ABUSE)
    } finally {
      this.punishing = undefined
    }
  }

  /** Holds a peer's circuit OPEN until `release` (ref-counted; not a trip, no backoff) */
  isolate (peer: PeerLike): void {
    const now = this.clock.now()
    const record = this.registry.get(peer, now)
    if (record !== undefined) {
      this.circuitBreaker.core.isolate(record, now)
    }
  }

  /** Undoes one `isolate`; the last release resumes the normal OPEN → HALF_OPEN timeline */
  release (peer: PeerLike): void {
    const record = this.registry.find(peer)
    if (record !== undefined) {
      this.circuitBreaker.core.release(record, this.clock.now())
    }
  }

  /** Every peer whose circuit is not CLOSED or that still carries backoff, for `restore` after a restart */
  snapshot (): ProtectionSnapshot {
    const now = this.clock.now()
    const core = this.circuitBreaker.core
    const peers: PeerSnapshot[] = []
    this.registry.forEach((record, key) => {
      const state = core.stateOf(record, now)
      const backoffLevel = core.backoffLevel(record, now)
      if (state === CircuitState.CLOSED && backoffLevel === 0) {
        return
      }
      const isolated = core.isIsolated(record)
      peers.push({
        peer: key,
        state,
        openUntil: state === CircuitState.OPEN && !isolated ? core.openUntil(record) : 0,
        backoffLevel,
        isolated
      })
    })
    return { version: SNAPSHOT_VERSION, takenAt: now, peers }
  }

  /**
   * Restores a snapshot: OPEN circuits stay OPEN until their original time (cut to `maxTimeout`
   * from now), isolations are held again, backoff levels carry over. The snapshot is checked first
   * (see snapshot.ts): a malformed one throws `InvalidSnapshotError` and nothing is restored; at
   * most half the peer table is taken, newest trips first. Peers are keyed by string, so events for
   * restored peers carry the string until a PeerId is seen.
   */
  restore (snapshot: ProtectionSnapshot, options: RestoreOptions = {}): PreparedSnapshot {
    const now = this.clock.now()
    const maxPeers = this.registry.maxPeers
    const prepared = prepareSnapshot(snapshot, {
      now,
      path: options.path,
      capacity: Math.floor(maxPeers / 2),
      maxEntries: Math.min(MAX_SNAPSHOT_ENTRIES, Math.max(maxPeers, DEFAULT_MAX_PEERS)),
      breaker: this.circuitBreaker.config,
      isValidPeer: options.isValidPeer
    })
    const core = this.circuitBreaker.core
    for (const entry of prepared.entries) {
      const record = this.registry.get(entry.peer, now)
      if (record === undefined) {
        continue
      }
      core.restore(record, now, entry.state, entry.openUntil, entry.backoffLevel, TransitionReason.RESTORED)
      if (entry.isolated) {
        core.isolate(record, now)
      }
    }
    this.restoreStats = prepared.stats
    return prepared
  }

  /** Everything known about one peer: circuit, counts, health, recovery, tuned values */
  getPeerStatus (peer: PeerLike): PeerStatus {
    const now = this.clock.now()
    const record = this.registry.find(peer)
    const circuitState = this.circuitBreaker.getPeerState(peer)
    return {
      peer: peer.toString(),
      circuitState,
      counts: this.circuitBreaker.getPeerCounts(peer),
      openUntil: circuitState === CircuitState.OPEN ? this.circuitBreaker.getPeerOpenUntil(peer) : 0,
      healthStatus: this.healthMonitor.getHealthStatus(peer),
      health: this.healthMonitor.getHealth(peer),
      isRecovering: this.recoveryManager.recovering(record, now),
      recoveryRate: this.recoveryManager.rate(record, now),
      tuned: record !== undefined ? this.autoTune.tuned(record, now) : undefined
    }
  }

  /** Counts over every tracked peer: circuit states, health, recovery, rejections, trips */
  getOverallStatus (): OverallStatus {
    const now = this.clock.now()
    return overallStatus({
      totalPeers: this.registry.size,
      circuitStates: countCircuitStates(this.registry, this.circuitBreaker.core, now),
      healthStats: this.healthMonitor.getHealthStats(),
      recoveryStats: this.recoveryManager.getRecoveryStats(),
      rejected: { open: this.rejectedOpen, halfOpen: this.rejectedHalfOpen, recovery: this.rejectedRecovery },
      trips: this.trips,
      localNetworkSuspected: this.populationGuard.check(now),
      restored: this.restoreStats
    })
  }

  /** Stops accepting requests and drops all state. Nothing was running: there are no timers. */
  close (): void {
    if (this.closed) {
      return
    }
    this.closed = true
    for (const d of this.disposables) {
      d.dispose()
    }
    this.healthMonitor.close()
    this.recoveryManager.close()
    this.populationGuard.close()
    this.registry.clear()
  }
}

/** A move to OPEN that the peer caused (not a manual isolation or a restored snapshot) */
export function isTrip (reason: TransitionReason): boolean {
  return reason !== TransitionReason.ISOLATE && reason !== TransitionReason.RESTORED
}
