import { systemClock } from '../clock.ts'
import { ClosedError, CircuitOpenError, RecoveryThrottledError, TooManyRequestsError } from '../errors.ts'
import { abortErrorFor, classifyOutcome } from '../breaker/execute.ts'
import { SLOT_SPACE, TransitionReason } from '../breaker/core.ts'
import { BitswapCircuitBreaker } from '../breaker/per-peer.ts'
import { EventEmitter } from '../event.ts'
import { HealthMonitor } from '../health/health-monitor.ts'
import { PeerRegistry } from '../peers/registry.ts'
import { RecoveryManager } from '../recovery/recovery-manager.ts'
import {
  CIRCUIT_STATE_NAMES,
  CircuitState,
  HealthStatus,
  Outcome,
  REJECT_HALF_OPEN_FULL,
  REJECT_OPEN,
  REJECT_RECOVERY,
  STATE_CLOSED,
  STATE_HALF_OPEN,
  STATE_OPEN,
  UNTRACKED
} from '../states.ts'
import { defaultReadyToTrip } from '../breaker/config.ts'
import { AutoTune } from './auto-tune.ts'
import { resolveProtectionConfig } from './config.ts'
import { PopulationGuard } from './population-guard.ts'
import type { TunedValues } from './auto-tune.ts'
import type { ProtectionConfigInit } from './config.ts'
import type { LocalSuspicionChange } from './population-guard.ts'
import type { Counts } from '../breaker/config.ts'
import type { ExecuteOptions, ProtectedFunction } from '../breaker/execute.ts'
import type { Clock, RandomSource } from '../clock.ts'
import type { Disposable } from '../event.ts'
import type { HealthSnapshot, HealthStats } from '../health/health-monitor.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { RecoveryStats } from '../recovery/recovery-manager.ts'

export { defaultProtectionConfig } from './config.ts'
export type { ProtectionConfig, ProtectionConfigInit, ProtectionInit } from './config.ts'

/** The transition reason of circuits put back by `restore` */
export const RESTORED = 'restored'

export interface ProtectionManagerOptions {
  clock?: Clock
  random?: RandomSource
}

/** Everything known about one peer */
export interface PeerStatus {
  peer: string
  circuitState: CircuitState
  counts: Counts
  /** When an OPEN circuit lets probes through (0 when not OPEN) */
  openUntil: number
  healthStatus: HealthStatus
  health: HealthSnapshot | undefined
  isRecovering: boolean
  recoveryRate: number
  /** What auto-tuning currently uses for this peer (absent for an untracked peer) */
  tuned: TunedValues | undefined
}

/** Numbers of peers per circuit state */
export interface CircuitStateCounts {
  closed: number
  open: number
  halfOpen: number
}

export interface OverallStatus {
  totalPeers: number
  circuitStates: CircuitStateCounts
  healthStats: HealthStats
  recoveryStats: RecoveryStats
  /** Requests refused because a circuit was OPEN, HALF_OPEN-full, or by the recovery ramp */
  rejected: { open: number, halfOpen: number, recovery: number }
  trips: number
  /** Most peers are failing at once: our own network is suspected and no circuit trips */
  localNetworkSuspected: boolean
  /** More than 80 % of known peers healthy and fewer than 20 % of circuits open (the seed's rule, with real numbers) */
  isHealthy(): boolean
  getSummary(): string
}

/** One peer's circuit as a snapshot keeps it (JSON-safe) */
export interface PeerSnapshot {
  peer: string
  state: CircuitState
  /** Wall-clock ms when probes may start (0 when not OPEN) */
  openUntil: number
  backoffLevel: number
  /** Held open by `isolate()` until released */
  isolated: boolean
}

/** What a restarted node needs to remember which peers were bad, and for how long */
export interface ProtectionSnapshot {
  version: 1
  takenAt: number
  peers: PeerSnapshot[]
}

/** A state change of one peer's circuit, with string states */
export interface TransitionEvent {
  peer: PeerLike
  from: CircuitState
  to: CircuitState
  reason: string
}

/**
 * Breaker → recovery gate → the call → health record, per peer, sharing one bounded peer registry.
 *
 * Divergences from the seed (each fixes a bug it had): breaker and recovery rejections are not
 * counted as the peer's failures; a peer recovers only after its circuit closes, and a recovery that
 * fails re-trips the circuit instead of letting all traffic through; health-based tripping really
 * trips; every count in the overall status is real.
 */
export class BitswapProtectionManager {
  readonly clock: Clock
  readonly registry: PeerRegistry
  readonly circuitBreaker: BitswapCircuitBreaker
  readonly healthMonitor: HealthMonitor
  readonly recoveryManager: RecoveryManager
  readonly populationGuard: PopulationGuard
  readonly autoTune: AutoTune
  /** Fired when local-network suspicion starts or clears */
  readonly onPopulationChange: (listener: (evt: LocalSuspicionChange) => void) => Disposable
  /** Fired after every circuit state change */
  readonly onTransition: (listener: (evt: TransitionEvent) => void) => Disposable

  private readonly transitions = new EventEmitter<TransitionEvent>()
  private readonly enableAutoRecovery: boolean
  private readonly enableHealthBasedTripping: boolean
  private readonly disposables: Disposable[] = []
  private rejectedOpen = 0
  private rejectedHalfOpen = 0
  private rejectedRecovery = 0
  private trips = 0
  private closed = false
  /** The slot being settled, for the auto-tuned trip rule (the core's `readyToTrip` gets no slot) */
  private settlingSlot = -1
  private settlingAt = 0

  constructor (init: ProtectionConfigInit = {}, options: ProtectionManagerOptions = {}) {
    // resolved once, up front: an error names the field by its full path and nothing is built
    const resolved = resolveProtectionConfig(init)
    this.clock = options.clock ?? systemClock
    this.registry = new PeerRegistry({ maxPeers: resolved.maxPeers, idleTimeout: resolved.idleTimeout, clock: this.clock })
    // without a user rule, trip sensitivity is auto-tuned per peer (auto-tune.ts); the default rule
    // (as in a config spread from defaultProtectionConfig()) is not a user rule
    const circuitBreaker = resolved.circuitBreaker.readyToTrip === defaultReadyToTrip && resolved.enableAutoTuning
      ? { ...resolved.circuitBreaker, readyToTrip: (counts: Counts) => this.autoTune.shouldTrip(this.settlingSlot, counts, this.settlingAt) }
      : resolved.circuitBreaker
    this.circuitBreaker = new BitswapCircuitBreaker(circuitBreaker, { clock: this.clock, random: options.random, registry: this.registry })
    this.healthMonitor = new HealthMonitor(resolved.healthMonitor, { clock: this.clock, registry: this.registry })
    this.populationGuard = new PopulationGuard(resolved.populationGuard, { registry: this.registry, clock: this.clock })
    this.autoTune = new AutoTune(resolved.autoTune, { registry: this.registry, guard: this.populationGuard, core: this.circuitBreaker.core })
    this.recoveryManager = new RecoveryManager(resolved.recovery, {
      clock: this.clock,
      registry: this.registry,
      rampSpeed: resolved.enableAutoTuning ? (slot, at) => this.autoTune.recoveryRampSpeed(slot, at) : undefined
    })
    this.onPopulationChange = this.populationGuard.onChange
    this.enableAutoRecovery = resolved.enableAutoRecovery
    this.enableHealthBasedTripping = resolved.enableHealthBasedTripping
    this.onTransition = this.transitions.listen

    const core = this.circuitBreaker.core
    core.canTrip = (slot) => this.populationGuard.canTrip(slot, this.clock.now())
    this.disposables.push(
      core.onTransition(this.populationGuard.recordTransition),
      core.onTransition((slot, from, to, reason, now) => {
        if (to === STATE_OPEN) {
          if (isTrip(reason)) {
            this.trips++
          }
          // a peer that trips again while ramping back starts over once it closes
          this.recoveryManager.cancel(slot, now)
        } else if (to === STATE_CLOSED && from === STATE_HALF_OPEN && this.enableAutoRecovery) {
          this.recoveryManager.start(slot, now)
        }
        this.transitions.emit({
          peer: this.registry.peer(slot),
          from: CIRCUIT_STATE_NAMES[from],
          to: CIRCUIT_STATE_NAMES[to],
          reason
        })
      }),
      this.recoveryManager.onRecoveryFailed(({ peer, reason }) => {
        const slot = this.registry.find(peer)
        if (slot === -1) {
          return
        }
        const now = this.clock.now()
        // a ramp that ran out of time without failures only met a quiet peer: let it be (a failed
        // recovery holds its peer at rate 0, which only a trip or a cancel undoes); a vetoed trip
        // (population guard) must not leave the peer shut out at rate 0 either
        if (reason !== 'failures' || !core.trip(slot, now, `recovery failed: ${reason}`)) {
          this.recoveryManager.cancel(slot, now)
        }
      }),
      this.healthMonitor.onStatusChange(({ peer, to }) => {
        if (!this.enableHealthBasedTripping || to !== HealthStatus.UNHEALTHY) {
          return
        }
        const slot = this.registry.find(peer)
        if (slot !== -1) {
          core.trip(slot, this.clock.now(), 'health: unhealthy')
        }
      })
    )
  }

  // -- the two-step API used by the libp2p service (hot path: no allocation) --

  /**
   * Asks whether a request to `peer` may go ahead. Returns a token (> 0) to pass to `settle`,
   * `UNTRACKED` (0: go ahead, nothing to settle) when the registry is full of peers that may not be
   * evicted, or a negative `REJECT_*` code. `throttle: false` skips the recovery ramp (the libp2p
   * service uses it for inbound streams: they carry answers we asked for). Pass `now` when the
   * caller has just read the clock: a clock read is a large share of this call's cost.
   */
  admit (peer: PeerLike, throttle: boolean = true, now: number = this.clock.now()): number {
    if (this.closed) {
      return UNTRACKED
    }
    const slot = this.registry.slot(peer, now)
    if (slot === -1) {
      return UNTRACKED
    }
    // the ramp first: a recovery that times out on this read re-trips the circuit before admission
    if (throttle && !this.recoveryManager.allow(slot, now)) {
      this.rejectedRecovery++
      return REJECT_RECOVERY
    }
    const token = this.circuitBreaker.core.acquire(slot, now)
    if (token < 0) {
      if (token === REJECT_OPEN) {
        this.rejectedOpen++
      } else {
        this.rejectedHalfOpen++
      }
    }
    return token
  }

  /** Reports how an admitted request ended */
  settle (token: number, outcome: Outcome, latencyMs: number, err?: unknown, now: number = this.clock.now()): void {
    if (token <= 0) {
      return
    }
    const slot = token % SLOT_SPACE
    this.record(slot, token, outcome, now, latencyMs, err)
  }

  /**
   * Records a verdict about a peer that did not come from an admitted request (message-level
   * observation: an answered want, a missed deadline, garbage). It counts as one request of the
   * current generation; in HALF_OPEN a failure still reopens when the probe quota is used up.
   */
  observe (peer: PeerLike, outcome: Outcome, latencyMs: number, err?: unknown): void {
    if (this.closed) {
      return
    }
    const now = this.clock.now()
    const slot = this.registry.slot(peer, now)
    if (slot === -1) {
      return
    }
    const core = this.circuitBreaker.core
    const token = core.acquire(slot, now)
    if (token > 0) {
      this.record(slot, token, outcome, now, latencyMs, err)
      return
    }
    if (outcome !== Outcome.NEUTRAL) {
      // OPEN: the verdict still says how the peer is doing; HALF_OPEN and full: a failure reopens
      this.healthMonitor.record(slot, now, latencyMs, outcome, err)
      if (outcome === Outcome.FAILURE && token === REJECT_HALF_OPEN_FULL) {
        core.trip(slot, now, TransitionReason.PROBE_FAILURE, err)
      }
    }
  }

  private record (slot: number, token: number, outcome: Outcome, now: number, latencyMs: number, err: unknown): void {
    // the guard hears the outcome before the core, so the failure that makes our own network
    // suspect cannot trip this peer's circuit
    this.populationGuard.onOutcome(slot, outcome, now)
    this.autoTune.record(slot, now)
    // asked before the core settles: the probe that closes the circuit starts a ramp it was not
    // admitted by, so it must not count as the ramp's first success
    const ramping = this.recoveryManager.recovering(slot, now)
    this.settlingSlot = slot
    this.settlingAt = now
    try {
      this.circuitBreaker.core.settle(token, outcome, now, err)
    } finally {
      this.settlingSlot = -1
    }
    if (outcome !== Outcome.NEUTRAL) {
      this.healthMonitor.record(slot, now, latencyMs, outcome, err)
      if (ramping) {
        this.recoveryManager.record(slot, now, outcome === Outcome.SUCCESS)
      }
    }
    const outliers = this.populationGuard.evaluateOutliers(now)
    for (let i = 0; i < outliers.length; i++) {
      this.circuitBreaker.core.trip(outliers[i], now, 'outlier')
    }
  }

  /** The error a rejection code stands for */
  rejectionError (code: number): Error {
    if (code === REJECT_OPEN) {
      return new CircuitOpenError()
    }
    if (code === REJECT_HALF_OPEN_FULL) {
      return new TooManyRequestsError()
    }
    return new RecoveryThrottledError()
  }

  // -- the seed's API --

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
    const token = this.admit(peer)
    if (token < 0) {
      throw this.rejectionError(token)
    }
    const isSuccessful = this.circuitBreaker.config.isSuccessful
    const startedAt = this.clock.now()
    let result: T
    try {
      result = await fn(signal)
    } catch (err) {
      this.settle(token, classifyOutcome(isSuccessful, true, err, signal), this.clock.now() - startedAt, err)
      throw err
    }
    this.settle(token, classifyOutcome(isSuccessful, false, undefined, signal), this.clock.now() - startedAt)
    return result
  }

  circuitState (peer: PeerLike): CircuitState {
    return this.circuitBreaker.getPeerState(peer)
  }

  openUntil (peer: PeerLike): number {
    return this.circuitBreaker.getPeerOpenUntil(peer)
  }

  /** Forces a peer's circuit OPEN now (it then follows the normal OPEN → HALF_OPEN path) */
  trip (peer: PeerLike, reason: string = TransitionReason.TRIP): boolean {
    return this.circuitBreaker.tripPeer(peer, reason)
  }

  /** Holds a peer's circuit OPEN until `release` (ref-counted; not a trip, no backoff) */
  isolate (peer: PeerLike): void {
    const now = this.clock.now()
    const slot = this.registry.slot(peer, now)
    if (slot !== -1) {
      this.circuitBreaker.core.isolate(slot, now)
    }
  }

  /** Undoes one `isolate`; the last release resumes the normal OPEN → HALF_OPEN timeline */
  release (peer: PeerLike): void {
    const slot = this.registry.find(peer)
    if (slot !== -1) {
      this.circuitBreaker.core.release(slot, this.clock.now())
    }
  }

  /** Every peer whose circuit is not CLOSED or that still carries backoff, for `restore` after a restart */
  snapshot (): ProtectionSnapshot {
    const now = this.clock.now()
    const core = this.circuitBreaker.core
    const peers: PeerSnapshot[] = []
    this.registry.forEach((slot, key) => {
      const state = core.stateOf(slot, now)
      const backoffLevel = core.backoffLevel(slot, now)
      if (state === STATE_CLOSED && backoffLevel === 0) {
        return
      }
      const isolated = core.isIsolated(slot)
      peers.push({
        peer: key,
        state: CIRCUIT_STATE_NAMES[state],
        openUntil: state === STATE_OPEN && !isolated ? core.openUntil(slot) : 0,
        backoffLevel,
        isolated
      })
    })
    return { version: 1, takenAt: now, peers }
  }

  /**
   * Restores a snapshot: OPEN circuits stay OPEN until their original time (HALF_OPEN at once if it
   * has passed), isolations are held again, backoff levels carry over. Peers are keyed by string,
   * so events for restored peers carry the string until a PeerId is seen.
   */
  restore (snapshot: ProtectionSnapshot): void {
    const now = this.clock.now()
    const core = this.circuitBreaker.core
    for (const entry of snapshot.peers) {
      const slot = this.registry.slot(entry.peer, now)
      if (slot === -1) {
        continue
      }
      const state = CIRCUIT_STATE_NAMES.indexOf(entry.state)
      core.restore(slot, now, state === -1 ? STATE_CLOSED : state, entry.openUntil, entry.backoffLevel, RESTORED)
      if (entry.isolated) {
        core.isolate(slot, now)
      }
    }
  }

  getPeerStatus (peer: PeerLike): PeerStatus {
    const now = this.clock.now()
    const slot = this.registry.find(peer)
    const circuitState = this.circuitBreaker.getPeerState(peer)
    return {
      peer: peer.toString(),
      circuitState,
      counts: this.circuitBreaker.getPeerCounts(peer),
      openUntil: circuitState === CircuitState.OPEN ? this.circuitBreaker.getPeerOpenUntil(peer) : 0,
      healthStatus: this.healthMonitor.getHealthStatus(peer),
      health: this.healthMonitor.getHealth(peer),
      isRecovering: slot !== -1 && this.recoveryManager.recovering(slot, now),
      recoveryRate: slot !== -1 ? this.recoveryManager.rate(slot, now) : 1,
      tuned: slot !== -1 ? this.autoTune.tuned(slot, now) : undefined
    }
  }

  getOverallStatus (): OverallStatus {
    const circuitStates: CircuitStateCounts = { closed: 0, open: 0, halfOpen: 0 }
    const now = this.clock.now()
    const core = this.circuitBreaker.core
    this.registry.forEach((slot) => {
      const state = core.stateOf(slot, now)
      if (state === STATE_OPEN) {
        circuitStates.open++
      } else if (state === STATE_HALF_OPEN) {
        circuitStates.halfOpen++
      } else {
        circuitStates.closed++
      }
    })
    const totalPeers = this.registry.size
    const healthStats = this.healthMonitor.getHealthStats()
    const recoveryStats = this.recoveryManager.getRecoveryStats()
    const rejected = { open: this.rejectedOpen, halfOpen: this.rejectedHalfOpen, recovery: this.rejectedRecovery }
    return {
      totalPeers,
      circuitStates,
      healthStats,
      recoveryStats,
      rejected,
      trips: this.trips,
      localNetworkSuspected: this.populationGuard.check(now),
      isHealthy () {
        if (totalPeers === 0) {
          return true
        }
        return healthStats.healthyPeers / totalPeers > 0.8 && circuitStates.open / totalPeers < 0.2
      },
      getSummary () {
        const healthyPercent = totalPeers === 0 ? 0 : healthStats.healthyPeers / totalPeers * 100
        return `System Status: ${totalPeers} peers, ${healthStats.healthyPeers} healthy (${healthyPercent.toFixed(1)}%), ${recoveryStats.recoveringPeers} recovering, ${circuitStates.open} circuit breakers open`
      }
    }
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
    this.transitions.clear()
    this.healthMonitor.close()
    this.recoveryManager.close()
    this.populationGuard.close()
    this.registry.clear()
  }
}

/** A move to OPEN that the peer caused (not a manual isolation or a restored snapshot) */
export function isTrip (reason: string): boolean {
  return reason !== TransitionReason.ISOLATE && reason !== RESTORED
}
