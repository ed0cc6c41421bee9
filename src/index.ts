/**
 * @packageDocumentation
 *
 * Per-peer circuit breakers, health monitoring and gradual recovery for IPFS Bitswap on js-libp2p.
 *
 * The engine (`CircuitBreaker`, `BitswapCircuitBreaker`, `HealthMonitor`, `RecoveryManager`,
 * `BitswapProtectionManager`) decides whether a peer may be talked to; the libp2p service
 * (`bitswapCircuitBreaker()`) applies those decisions to every Bitswap stream and dial.
 *
 * @example Add it to a libp2p node
 *
 * ```ts
 * import { createLibp2p } from 'libp2p'
 * import { bitswapCircuitBreaker } from 'bitswap-circuit-breaker'
 *
 * const node = await createLibp2p({
 *   // ...transports, encrypters, muxers
 *   services: {
 *     bitswapCircuitBreaker: bitswapCircuitBreaker()
 *   }
 * })
 * ```
 *
 * @example Add it to Helia without losing Helia's default services
 *
 * ```ts
 * import { libp2pDefaults } from '@helia/libp2p'
 * import { createHelia } from 'helia'
 * import { addBitswapCircuitBreaker } from 'bitswap-circuit-breaker'
 *
 * const helia = createHelia({
 *   libp2p: addBitswapCircuitBreaker(libp2pDefaults())
 * })
 * await helia.start()
 * ```
 */

import { CircuitBreakerService } from './libp2p/service.ts'
import { DEFAULT_SERVICE_KEY } from './libp2p/constants.ts'
import type { Clock, RandomSource } from './clock.ts'
import type { BitswapProtectionManager, OverallStatus, PeerStatus, ProtectionInit, ProtectionSnapshot } from './protection/protection-manager.ts'
import type { LocalSuspicionChange } from './protection/population-guard.ts'
import type { TransitionReason } from './breaker/core.ts'
import type { BitswapObserverInit } from './libp2p/observer.ts'
import type { CircuitState, HealthStatus } from './states.ts'
import type { OpenStreamGuardInit } from './libp2p/open-stream-init.ts'
import type { EventLoopLag } from './libp2p/deadline-scheduler.ts'
import type { ObserverStats } from './libp2p/observer.ts'
import type { ReleaseStatus } from './libp2p/release.ts'
import type { ComponentLogger, ConnectionGater, Libp2pEvents, Metrics, PeerId, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

// the engine: classes, their config types and defaults
export { CircuitBreaker } from './breaker/circuit-breaker.ts'
export { BitswapCircuitBreaker } from './breaker/per-peer.ts'
export { defaultBitswapCircuitBreakerConfig } from './breaker/config.ts'
export type { CircuitBreakerConfig, CircuitBreakerInit, Counts } from './breaker/config.ts'
export { HealthMonitor } from './health/health-monitor.ts'
export { defaultHealthMonitorConfig } from './health/config.ts'
export type { HealthMonitorConfig, HealthMonitorInit } from './health/config.ts'
export { RecoveryManager } from './recovery/recovery-manager.ts'
export { defaultRecoveryConfig } from './recovery/config.ts'
export type { RecoveryConfig, RecoveryInit } from './recovery/config.ts'
export { BitswapProtectionManager, defaultProtectionConfig } from './protection/protection-manager.ts'
export type { ProtectionConfig, ProtectionConfigInit, ProtectionInit } from './protection/protection-manager.ts'
// types that appear in the signatures above and below (no runtime surface)
export type { Clock, RandomSource } from './clock.ts'
export type { PeerSnapshot, ProtectionSnapshot, RestoreOptions, RestoreStats, PeerStatus, OverallStatus, CircuitStateCounts, TransitionEvent } from './protection/types.ts'
export type { HealthSnapshot, HealthStats } from './health/health-monitor.ts'
export type { RecoveryState, RecoveryStats } from './recovery/recovery-manager.ts'
export type { LocalSuspicionChange } from './protection/population-guard.ts'
export type { TransitionReason } from './breaker/core.ts'
export type { BitswapObserverInit } from './libp2p/observer.ts'
export type { OpenStreamGuardInit } from './libp2p/open-stream-init.ts'
export type { EventLoopLag } from './libp2p/deadline-scheduler.ts'
export type { ObserverStats } from './libp2p/observer.ts'
export type { ReleaseStatus } from './libp2p/release.ts'
export type { ReleaseReason } from './bitswap/want-release.ts'
export type { CircuitBreakerDefaults, ResolvedCircuitBreakerConfig } from './breaker/config.ts'
export type { CircuitBreakerOptions, StateChangeEvent } from './breaker/circuit-breaker.ts'
export type { BitswapCircuitBreakerOptions, PeerStateChangeEvent } from './breaker/per-peer.ts'
export type { ExecuteOptions, ProtectedFunction } from './breaker/execute.ts'
export type { Admission, Permit, Rejection, RejectionReason } from './breaker/permit.ts'
export type { ResolvedHealthMonitorConfig } from './health/config.ts'
export type { HealthMonitorOptions, HealthStatusChange } from './health/health-monitor.ts'
export type { ResolvedRecoveryConfig } from './recovery/config.ts'
export type { RecoveryEvent, RecoveryFailedEvent, RecoveryFailureReason, RecoveryManagerOptions } from './recovery/recovery-manager.ts'
export type { AutoTuneDefaults, AutoTuneInit, PopulationGuardInit, ResolvedAutoTuneConfig, ResolvedPopulationGuardConfig } from './protection/config.ts'
export type { ProtectionManagerOptions } from './protection/types.ts'
export type { ProtectionEvents } from './protection/events.ts'
export type { TunedValues } from './protection/auto-tune.ts'
export type { PreparedSnapshot } from './protection/snapshot.ts'
export type { PeerLike } from './peers/peer-key.ts'
export type { Disposable, Listener } from './event.ts'
export type { InvalidMessageReason } from './bitswap/errors.ts'

// errors and state enums
export {
  CircuitOpenError,
  TooManyRequestsError,
  RecoveryThrottledError,
  InvalidConfigError,
  InvalidSnapshotError,
  OpenStreamDeadlineError,
  InboundLimitError,
  ClosedError,
  ResponseDeadlineError
} from './errors.ts'
export { FrameTooLargeError, InvalidFrameError, InvalidMessageError, WantDeadlineError } from './bitswap/errors.ts'
export { CircuitState, HealthStatus, Outcome, RecoveryStrategy } from './states.ts'
export { RecoveryPhase } from './recovery/types.ts'

/** What `circuit:*` events carry */
export interface CircuitEventDetail {
  peer: PeerId
  from: CircuitState
  to: CircuitState
  /**
   * Why the state changed: `failures` (the trip rule fired), `timeout` (the open duration passed),
   * `probe-failure`, `probes-succeeded`, `half-open-dwell`, `isolate`, `release`, `restored`,
   * `health: unhealthy`, `outlier`, `recovery failed: failures`
   */
  reason: TransitionReason
}

/** What `health:change` events carry */
export interface HealthEventDetail {
  peer: PeerId
  from: HealthStatus
  to: HealthStatus
}

/** What `recovery:*` events carry */
export interface RecoveryEventDetail {
  peer: PeerId
  /** Why a recovery failed: consecutive failures during the ramp, or `maxRecoveryTime` ran out */
  reason?: 'failures' | 'timeout'
}

/** The service's events, for `addEventListener` (each a `CustomEvent` with the detail shown) */
export interface BitswapCircuitBreakerEvents {
  'circuit:open': CustomEvent<CircuitEventDetail>
  'circuit:half-open': CustomEvent<CircuitEventDetail>
  'circuit:close': CustomEvent<CircuitEventDetail>
  'health:change': CustomEvent<HealthEventDetail>
  'recovery:start': CustomEvent<RecoveryEventDetail>
  'recovery:complete': CustomEvent<RecoveryEventDetail>
  'recovery:fail': CustomEvent<RecoveryEventDetail>
  /** Most peers fail at once: our own network is suspected and circuits are held closed */
  'population:local-suspected': CustomEvent<LocalSuspicionChange>
  'population:local-recovered': CustomEvent<LocalSuspicionChange>
}

/** Options of `bitswapCircuitBreaker(init)`: the engine's (`ProtectionInit`) plus the service's own */
export interface BitswapCircuitBreakerInit extends ProtectionInit {
  /**
   * The Bitswap protocols whose streams are gated
   *
   * @default ['/ipfs/bitswap/1.2.0', '/ipfs/bitswap/1.1.0', '/ipfs/bitswap/1.0.0', '/ipfs/bitswap']
   */
  protocols?: string[]

  /**
   * Hang up a peer's connections when its circuit opens. libp2p does not consult the gater while a
   * connection exists, so without this an open circuit only refuses streams; with it, Helia re-sends
   * its wantlist when the half-open redial reconnects, which is what lets the peer recover.
   *
   * @default true
   */
  disconnectOnOpen?: boolean

  /**
   * When the open duration of a peer we hung up on has passed, redial it once as the half-open probe
   * (nothing else would reconnect it unless routing finds it again)
   *
   * @default true
   */
  redialOnHalfOpen?: boolean

  /**
   * Peers that are never gated (trusted peers, your own gateways)
   *
   * @default []
   */
  allowlist?: Array<PeerId | string>

  /**
   * The least time (ms) a peer gets to finish one of our outbound Bitswap streams before it counts
   * as stalling (a failure); the effective deadline is twice its open deadline when that is longer
   *
   * @default 2000
   */
  responseDeadline?: number

  /**
   * After a circuit closes, the peer's outbound Bitswap opens are limited to
   * `recoveryRate × rampConcurrency` at once (at least one) until the recovery ramp completes;
   * further opens wait rather than fail, because @helia/bitswap would not re-send a refused want
   *
   * @default 4
   */
  rampConcurrency?: number

  /**
   * Observe Bitswap messages on the intercepted streams: correlate our wants with the peer's
   * answers (block, HAVE, DONT_HAVE) under a per-peer adaptive deadline, and refuse garbage and
   * floods. With it, a clean stream close is no longer a success by itself: answers are.
   *
   * @default true
   */
  observeMessages?: boolean

  /**
   * End Bitswap's waits on a peer that will not answer: when a want it was asked with
   * `sendDontHave` misses its deadline, its circuit opens, its last connection closes or the stream
   * carrying the want fails, a DONT_HAVE from that peer is handed to this node's own Bitswap
   * handler, as boxo's DontHaveTimeoutManager does. A Helia session then asks its next provider
   * instead of waiting until its caller gives up. Needs `observeMessages`.
   *
   * @default true
   */
  releaseWaits?: boolean

  /** Message observation and inbound abuse limits (see `BitswapObserverInit`) */
  observe?: Omit<BitswapObserverInit, 'clock' | 'scheduler'>

  /**
   * A snapshot from `snapshot()` before a restart: peers that were OPEN stay gated until their
   * original open duration ends (at most `maxTimeout` from now), with their backoff. Checked at
   * construction: a malformed one throws `InvalidSnapshotError`; entries with invalid peer ids,
   * ended open times or beyond half of `maxPeers` are left out and counted in `restored`.
   *
   * @default undefined
   */
  initialState?: ProtectionSnapshot

  /**
   * Deadlines for outbound Bitswap stream opens (see `OpenStreamGuardInit`)
   */
  openStream?: Omit<OpenStreamGuardInit, 'protocols' | 'scheduler'>

  /**
   * The clock used by every component (tests inject a fake one)
   *
   * @default Date.now
   */
  clock?: Clock

  /**
   * The random source used for backoff jitter
   *
   * @default Math.random
   */
  random?: RandomSource
}

/** The libp2p components the service uses (libp2p passes them to the factory) */
export interface BitswapCircuitBreakerComponents {
  peerId: PeerId
  registrar: Registrar
  connectionManager: ConnectionManager
  connectionGater: ConnectionGater
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  metrics?: Metrics
}

/** Counters of the Bitswap streams the service saw */
export interface StreamCounts {
  inbound: number
  outbound: number
  refusedInbound: number
  refusedOutbound: number
}

/** The engine's overall status plus what only the service knows */
export interface ServiceStatus extends OverallStatus {
  streams: StreamCounts
  /**
   * Stalls of our own event loop, as the deadline timer measured them. Pending deadlines were
   * pushed back by each, so no peer was judged on time we could not read its answers in.
   */
  eventLoop: EventLoopLag
  /** Message observation and the inbound limits: counters, and bytes of partial frames held now (absent with `observeMessages: false`) */
  observer: ObserverStats | undefined
  /** Whether the libp2p <= 3.3.11 middleware workaround had to be applied */
  upstreamMiddlewareWorkaround: 'applied' | 'not-needed' | 'not-started'
  /** Waits released with a DONT_HAVE (`releaseWaits`) */
  releases: ReleaseStats
}

/** What `releaseWaits` has done */
export interface ReleaseStats {
  /**
   * `active`; `disabled` (by option, or without `observeMessages`); `unreachable`: no Bitswap
   * handler took our message (another implementation, no handler registered), so waits on failed
   * peers end only when Bitswap gives up, while everything else works; `not-started`
   */
  status: ReleaseStatus
  /** Wants released since start */
  released: number
}

/** A peer's status as the service sees it: the engine's plus its current deadlines */
export interface ServicePeerStatus extends PeerStatus {
  /** Deadline (ms) for its next outbound Bitswap stream open */
  openDeadline: number | undefined
  /** Deadline (ms) for an answer to a want (adaptive, from its own latency) */
  wantDeadline: number | undefined
  /** Its wants released with a DONT_HAVE on its behalf since start */
  releasedWants: number
}

/** The service as `node.services.bitswapCircuitBreaker` */
export interface BitswapCircuitBreakerService extends TypedEventTarget<BitswapCircuitBreakerEvents> {
  /** The engine behind the service: breaker, health and recovery state of every peer */
  readonly protection: BitswapProtectionManager
  /** A peer's circuit, health, recovery and deadlines */
  getPeerStatus(peer: PeerId | string): ServicePeerStatus
  /** Counts over every peer, plus streams, event-loop lag, observation and releases */
  getOverallStatus(): ServiceStatus
  /** Holds a peer's circuit OPEN (and hangs it up) until `release`; ref-counted */
  isolate(peer: PeerId): void
  /** Undoes one `isolate`; the last release lets the circuit go on to HALF_OPEN as usual */
  release(peer: PeerId): void
  /** JSON-safe state to pass as `initialState` after a restart */
  snapshot(): ProtectionSnapshot
}

/**
 * The service factory, for `createLibp2p({ services: { bitswapCircuitBreaker: bitswapCircuitBreaker() } })`
 */
export function bitswapCircuitBreaker (init: BitswapCircuitBreakerInit = {}): BitswapCircuitBreakerFactory {
  return (components) => new CircuitBreakerService(components, init)
}

/** The factory `bitswapCircuitBreaker()` returns: what a libp2p `services` map holds */
export type BitswapCircuitBreakerFactory = (components: BitswapCircuitBreakerComponents) => BitswapCircuitBreakerService

/**
 * A libp2p config with the service added under `K`, so that `node.services[K]` (and Helia's
 * `helia.libp2p.services[K]`) is typed as {@link BitswapCircuitBreakerService} next to the config's own services
 */
export type WithBitswapCircuitBreaker<T extends { services?: object }, K extends string = 'bitswapCircuitBreaker'> =
  Omit<T, 'services'> & { services: NonNullable<T['services']> & Record<K, BitswapCircuitBreakerFactory> }

/**
 * Adds the service to an existing libp2p config (e.g. Helia's `libp2pDefaults()`), keeping every
 * service already in it. Helia's `libp2p` option replaces the whole services map, so pass it the
 * result of this call rather than a map with only our service in it.
 */
export function addBitswapCircuitBreaker<T extends { services?: object }, K extends string = 'bitswapCircuitBreaker'> (config: T, init: BitswapCircuitBreakerInit = {}, key: K = DEFAULT_SERVICE_KEY as K): WithBitswapCircuitBreaker<T, K> {
  return {
    ...config,
    services: {
      ...config.services,
      [key]: bitswapCircuitBreaker(init)
    }
  } as WithBitswapCircuitBreaker<T, K>
}
