import { systemClock } from '../clock.ts'
import { EventEmitter } from '../event.ts'
import { PeerRegistry } from '../peers/registry.ts'
import { CIRCUIT_STATE_NAMES, CircuitState } from '../states.ts'
import { resolveCircuitBreakerConfig } from './config.ts'
import { BreakerCore, TransitionReason } from './core.ts'
import { abortErrorFor, rejectionError, runAdmitted, runUnprotected } from './execute.ts'
import type { StateChangeEvent } from './circuit-breaker.ts'
import type { CircuitBreakerConfig, Counts, ResolvedCircuitBreakerConfig } from './config.ts'
import type { ExecuteOptions, ProtectedFunction } from './execute.ts'
import type { Clock, RandomSource } from '../clock.ts'
import type { Disposable, Listener } from '../event.ts'
import type { PeerLike } from '../peers/peer-key.ts'

export interface BitswapCircuitBreakerOptions {
  /** @default the registry's clock, else systemClock */
  clock?: Clock
  /** Jitter source for backed-off open durations. @default Math.random */
  random?: RandomSource
  /**
   * A registry shared with other per-peer components (health, recovery). When given, `maxPeers`
   * and `idleTimeout` are the registry's and the options below are ignored.
   */
  registry?: PeerRegistry
  /** @default 10000 */
  maxPeers?: number
  /** @default 600000 */
  idleTimeout?: number
}

export interface PeerStateChangeEvent extends StateChangeEvent {
  /** The peer as it was first given (a `PeerId` when the caller had one) */
  peer: PeerLike
}

/** The name passed to `onStateChange` for a peer's circuit (the whole key: seed bug 14 sliced it) */
export const PEER_BREAKER_PREFIX = 'bitswap-peer-'

const ZERO_COUNTS: Readonly<Counts> = Object.freeze({
  requests: 0,
  totalSuccesses: 0,
  totalFailures: 0,
  consecutiveSuccesses: 0,
  consecutiveFailures: 0
})

/**
 * One circuit per peer, all sharing one config, stored as columns in a bounded registry. Only
 * clean CLOSED circuits are ever evicted, so a tripped peer cannot escape by flooding the
 * registry with new peers; when the registry is full of peers that may not be evicted, a new peer
 * runs unprotected (fail open) rather than unboundedly growing memory.
 */
export class BitswapCircuitBreaker {
  readonly config: ResolvedCircuitBreakerConfig
  /** Slot-level access for the protection manager and the libp2p glue */
  readonly core: BreakerCore
  readonly registry: PeerRegistry
  /** Subscribes to every peer's state changes; returns a disposable that unsubscribes */
  readonly onStateChange: (listener: Listener<PeerStateChangeEvent>) => Disposable

  private readonly clock: Clock
  private readonly events = new EventEmitter<PeerStateChangeEvent>()

  constructor (config: CircuitBreakerConfig = {}, options: BitswapCircuitBreakerOptions = {}) {
    this.config = resolveCircuitBreakerConfig(config)
    this.clock = options.clock ?? options.registry?.clock ?? systemClock
    this.registry = options.registry ?? new PeerRegistry({
      maxPeers: options.maxPeers,
      idleTimeout: options.idleTimeout,
      clock: this.clock
    })
    const registry = this.registry
    this.core = new BreakerCore({
      config: this.config,
      clock: this.clock,
      random: options.random,
      name: (slot) => PEER_BREAKER_PREFIX + registry.key(slot)
    })
    registry.attach(this.core)
    this.onStateChange = this.events.listen
    this.core.onTransition((slot, from, to, reason, _now, cause) => {
      if (this.events.size > 0) {
        this.events.emit({
          peer: registry.peer(slot),
          name: PEER_BREAKER_PREFIX + registry.key(slot),
          from: CIRCUIT_STATE_NAMES[from],
          to: CIRCUIT_STATE_NAMES[to],
          reason,
          cause
        })
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
      const slot = this.registry.slot(peer, now)
      if (slot === -1) {
        // untracked: the registry is full of peers it must remember, so this one is not protected
        return runUnprotected(fn, signal)
      }
      const token = this.core.acquire(slot, now)
      if (token < 0) {
        return Promise.reject(rejectionError(token))
      }
      return runAdmitted(this.core, token, fn, signal, this.clock)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /** The peer's state; CLOSED for an unknown peer (which is not created) */
  getPeerState (peer: PeerLike): CircuitState {
    const slot = this.registry.find(peer)
    if (slot === -1) {
      return CircuitState.CLOSED
    }
    return CIRCUIT_STATE_NAMES[this.core.stateOf(slot, this.clock.now())]
  }

  /** The peer's counts (a copy); zeros for an unknown peer */
  getPeerCounts (peer: PeerLike): Counts {
    const slot = this.registry.find(peer)
    if (slot === -1) {
      return { ...ZERO_COUNTS }
    }
    return this.core.countsOf(slot, this.clock.now())
  }

  /** When the peer's OPEN circuit lets probes through (Infinity while isolated, 0 when not OPEN) */
  getPeerOpenUntil (peer: PeerLike): number {
    const slot = this.registry.find(peer)
    if (slot === -1) {
      return 0
    }
    this.core.stateOf(slot, this.clock.now())
    return this.core.openUntil(slot)
  }

  /** Every tracked peer's state, keyed by the peer's string form */
  getAllStates (): Map<string, CircuitState> {
    const slots: number[] = []
    const keys: string[] = []
    this.registry.forEach((slot, key) => {
      slots.push(slot)
      keys.push(key)
    })
    const now = this.clock.now()
    const states = new Map<string, CircuitState>()
    for (let i = 0; i < slots.length; i++) {
      states.set(keys[i], CIRCUIT_STATE_NAMES[this.core.stateOf(slots[i], now)])
    }
    return states
  }

  /**
   * Forces the peer's circuit OPEN (a trip: the open duration backs off). Returns false if the
   * peer could not be tracked or a population guard vetoed the trip.
   */
  tripPeer (peer: PeerLike, reason: string = TransitionReason.TRIP, cause?: unknown): boolean {
    const now = this.clock.now()
    const slot = this.registry.slot(peer, now)
    if (slot === -1) {
      return false
    }
    return this.core.trip(slot, now, reason, cause)
  }

  /**
   * Holds the peer's circuit OPEN until the handle is disposed (isolations nest). A peer the
   * registry cannot track is not isolated; the handle then does nothing.
   */
  isolatePeer (peer: PeerLike): Disposable {
    const now = this.clock.now()
    const slot = this.registry.slot(peer, now)
    if (slot === -1) {
      return { dispose: () => {} }
    }
    this.core.isolate(slot, now)
    let released = false
    return {
      dispose: () => {
        // an isolated slot is never evicted, so it still belongs to this peer unless it was removed
        if (!released && this.registry.find(peer) === slot) {
          this.core.release(slot, this.clock.now())
        }
        released = true
      }
    }
  }

  /** Forgets the peer whatever its state (reported as a change to CLOSED if it was not) */
  removePeer (peer: PeerLike): boolean {
    const slot = this.registry.find(peer)
    if (slot === -1) {
      return false
    }
    this.core.clear(slot, this.clock.now())
    return this.registry.delete(peer)
  }
}
