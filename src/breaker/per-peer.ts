import { systemClock } from '../clock.ts'
import { EventEmitter } from '../event.ts'
import { peerKey } from '../peers/peer-key.ts'
import { PeerTable } from '../peers/peer-table.ts'
import { CircuitState } from '../states.ts'
import { resolveCircuitBreakerConfig } from './config.ts'
import { BreakerCore, TransitionReason } from './core.ts'
import { abortErrorFor, runAdmitted, runUnprotected } from './execute.ts'
import { checkEngineOptions } from '../validate.ts'
import type { StateChangeEvent } from './circuit-breaker.ts'
import type { CircuitBreakerInit, Counts, ResolvedCircuitBreakerConfig } from './config.ts'
import type { ExecuteOptions, ProtectedFunction } from './execute.ts'
import type { Clock, RandomSource } from '../clock.ts'
import type { Disposable, Listener } from '../event.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { PeerRecord } from '../peers/peer-record.ts'

/** The per-peer breaker's runtime plumbing and peer-table bounds */
export interface BitswapCircuitBreakerOptions {
  /** @default the registry's clock, else systemClock */
  clock?: Clock
  /** Jitter source for backed-off open durations. @default Math.random */
  random?: RandomSource
  /**
   * A peer table shared with other per-peer components (health, recovery). When given, `maxPeers`
   * and `idleTimeout` are the table's and the options below are ignored.
   *
   * @internal
   */
  registry?: PeerTable
  /** @default 10000 */
  maxPeers?: number
  /** @default 600000 */
  idleTimeout?: number
}

/** A state change of one peer's circuit, with the peer */
export interface PeerStateChangeEvent extends StateChangeEvent {
  /** The peer as it was first given (a `PeerId` when the caller had one) */
  peer: PeerLike
}

/** The name passed to `onStateChange` for a peer's circuit (the whole key, not a slice of it) */
export const PEER_BREAKER_PREFIX = 'bitswap-peer-'

const ZERO_COUNTS: Readonly<Counts> = Object.freeze({
  requests: 0,
  totalSuccesses: 0,
  totalFailures: 0,
  consecutiveSuccesses: 0,
  consecutiveFailures: 0
})

/**
 * One circuit per peer, all sharing one config, each in its peer's record of a bounded table. Only
 * clean CLOSED circuits are ever evicted, so a tripped peer cannot escape by flooding the
 * table with new peers; when the table is full of peers that may not be evicted, a new peer
 * runs unprotected (fail open) rather than unboundedly growing memory.
 */
export class BitswapCircuitBreaker {
  readonly config: ResolvedCircuitBreakerConfig
  /** Record-level access for the protection manager @internal */
  readonly core: BreakerCore
  /** @internal */
  readonly registry: PeerTable
  /** Subscribes to every peer's state changes; returns a disposable that unsubscribes */
  readonly onStateChange: (listener: Listener<PeerStateChangeEvent>) => Disposable

  private readonly clock: Clock
  private readonly events = new EventEmitter<PeerStateChangeEvent>()

  constructor (config: CircuitBreakerInit = {}, options: BitswapCircuitBreakerOptions = {}) {
    this.config = resolveCircuitBreakerConfig(config)
    checkEngineOptions(options)
    this.clock = options.clock ?? options.registry?.clock ?? systemClock
    this.registry = options.registry ?? new PeerTable({
      maxPeers: options.maxPeers,
      idleTimeout: options.idleTimeout,
      clock: this.clock
    })
    const registry = this.registry
    this.core = new BreakerCore({
      config: this.config,
      clock: this.clock,
      random: options.random,
      name: (record) => PEER_BREAKER_PREFIX + peerKey(record.peer)
    })
    registry.attach(this.core)
    this.onStateChange = this.events.listen
    this.core.onTransition((record, from, to, reason, _now, cause) => {
      if (this.events.size > 0) {
        this.events.emit({ peer: record.peer, name: PEER_BREAKER_PREFIX + peerKey(record.peer), from, to, reason, cause })
      }
    })
  }

  /** How many peers are tracked */
  get size (): number {
    return this.registry.size
  }

  /**
   * Runs `fn` through `peer`'s circuit (created on first use). Rejects with `CircuitOpenError` or
   * `TooManyRequestsError` without calling `fn`; otherwise passes `fn`'s result or error through.
   */
  executeWithPeer<T> (peer: PeerLike, fn: ProtectedFunction<T>, options?: ExecuteOptions): Promise<T> {
    // not `async`: a synchronous fn settles without extra microtask turns
    try {
      const signal = options?.signal
      if (signal?.aborted === true) {
        return Promise.reject(abortErrorFor(signal))
      }
      const now = this.clock.now()
      const record = this.registry.get(peer, now)
      if (record === undefined) {
        // untracked: the table is full of peers it must remember, so this one is not protected
        return runUnprotected(fn, signal)
      }
      const admission = this.core.admit(record, now)
      if (!admission.admitted) {
        return Promise.reject(admission.error)
      }
      return runAdmitted(admission, this.config.isSuccessful, fn, signal)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The peer's state; CLOSED for an unknown peer (which is not created) */
  getPeerState (peer: PeerLike): CircuitState {
    const record = this.registry.find(peer)
    if (record === undefined) {
      return CircuitState.CLOSED
    }
    return this.core.stateOf(record, this.clock.now())
  }

  /** The peer's counts (a copy); zeros for an unknown peer */
  getPeerCounts (peer: PeerLike): Counts {
    const record = this.registry.find(peer)
    if (record === undefined) {
      return { ...ZERO_COUNTS }
    }
    return this.core.countsOf(record, this.clock.now())
  }

  /** When the peer's OPEN circuit lets probes through (Infinity while isolated, 0 when not OPEN) */
  getPeerOpenUntil (peer: PeerLike): number {
    const record = this.registry.find(peer)
    if (record === undefined) {
      return 0
    }
    this.core.stateOf(record, this.clock.now())
    return this.core.openUntil(record)
  }

  /** Every tracked peer's state, keyed by the peer's string form */
  getAllStates (): Map<string, CircuitState> {
    const records: PeerRecord[] = []
    const keys: string[] = []
    this.registry.forEach((record, key) => {
      records.push(record)
      keys.push(key)
    })
    const now = this.clock.now()
    const states = new Map<string, CircuitState>()
    for (let i = 0; i < records.length; i++) {
      states.set(keys[i], this.core.stateOf(records[i], now))
    }
    return states
  }

  /**
   * Forces the peer's circuit OPEN (a trip: the open duration backs off). Returns false if the
   * peer could not be tracked or a population guard vetoed the trip.
   */
  tripPeer (peer: PeerLike, reason: TransitionReason = TransitionReason.TRIP, cause?: unknown): boolean {
    const now = this.clock.now()
    const record = this.registry.get(peer, now)
    if (record === undefined) {
      return false
    }
    return this.core.trip(record, now, reason, cause)
  }

  /**
   * Holds the peer's circuit OPEN until the handle is disposed (isolations nest). A peer the
   * table cannot track is not isolated; the handle then does nothing.
   */
  isolatePeer (peer: PeerLike): Disposable {
    const now = this.clock.now()
    const record = this.registry.get(peer, now)
    if (record === undefined) {
      return { dispose: () => {} }
    }
    this.core.isolate(record, now)
    let released = false
    return {
      dispose: () => {
        // an isolated record is never evicted: it is still the peer's unless it was removed
        if (!released && record.live) {
          this.core.release(record, this.clock.now())
        }
        released = true
      }
    }
  }

  /** Forgets the peer whatever its state (reported as a change to CLOSED if it was not) */
  removePeer (peer: PeerLike): boolean {
    const record = this.registry.find(peer)
    if (record === undefined) {
      return false
    }
    this.core.clear(record, this.clock.now())
    return this.registry.delete(peer)
  }
}
