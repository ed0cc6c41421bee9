import { serviceCapabilities, TypedEventEmitter } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { BitswapProtectionManager, isTrip } from '../protection/protection-manager.ts'
import { CircuitState } from '../states.ts'
import { isPeerIdString, resolveServiceConfig } from './config.ts'
import { SERVICE_NAME } from './constants.ts'
import { DeadlineScheduler } from './deadline-scheduler.ts'
import { wrapGater } from './gater.ts'
import { PeerIsolation } from './isolation.ts'
import { ServiceMetrics } from './metrics.ts'
import { installMiddleware } from './middleware.ts'
import { RampLimiter } from './ramp-limiter.ts'
import { WantReleaser } from './release.ts'
import { StreamGate } from './stream-gate.ts'
import { patchMiddlewarePileup } from './upstream.ts'
import type { BitswapCircuitBreakerComponents, BitswapCircuitBreakerEvents, BitswapCircuitBreakerInit, BitswapCircuitBreakerService, CircuitEventDetail, ServicePeerStatus, ServiceStatus } from '../index.ts'
import type { PeerSnapshot, PeerStatus, ProtectionSnapshot, TransitionEvent } from '../protection/protection-manager.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { LocalSuspicionChange } from '../protection/population-guard.ts'
import type { Logger, PeerId, Startable } from '@libp2p/interface'

/**
 * The libp2p service: sits between the network and the real Bitswap handler and decides, per peer,
 * whether each Bitswap stream (both directions) and each dial may proceed. It installs the parts on
 * start and takes them out on stop, relays the engine's events, and answers status queries; the
 * per-stream decisions are in stream-gate.ts, what happens to an isolated peer in isolation.ts.
 *
 * - Inbound and outbound Bitswap streams pass through our stream middleware, which admits or refuses
 *   them and watches how they end (see stream-watch.ts).
 * - Outbound opens are also timed from the moment Bitswap asks for them (open-stream-guard.ts):
 *   a peer that blackholes bytes never gets as far as middleware.
 * - Dials to a peer whose circuit is OPEN are denied through the node's own gater (gater.ts), and
 *   opening a circuit hangs up the peer, because the gater is not consulted while a connection exists.
 */
export class CircuitBreakerService extends TypedEventEmitter<BitswapCircuitBreakerEvents> implements Startable, BitswapCircuitBreakerService {
  readonly [Symbol.toStringTag] = SERVICE_NAME
  readonly [serviceCapabilities]: string[] = ['@ipfs/bitswap-circuit-breaker']

  readonly protection: BitswapProtectionManager
  private readonly components: BitswapCircuitBreakerComponents
  private readonly log: Logger
  private readonly protocols: readonly string[]
  private readonly redialOnHalfOpen: boolean
  private readonly scheduler: DeadlineScheduler
  private readonly gate: StreamGate
  private readonly isolation: PeerIsolation
  /** Ends Bitswap's waits on peers that will not answer (release.ts) */
  private readonly releaser: WantReleaser
  private readonly ramp: RampLimiter
  private readonly rampConcurrency: number
  private readonly metrics: ServiceMetrics
  private suspicionCheck = 0
  private restored: PeerSnapshot[] = []
  private undo: Array<() => void> = []
  private started = false
  private upstreamWorkaround: 'applied' | 'not-needed' | 'not-started' = 'not-started'

  constructor (components: BitswapCircuitBreakerComponents, init: BitswapCircuitBreakerInit = {}) {
    super()
    this.components = components
    this.log = components.logger.forComponent('libp2p:bitswap-circuit-breaker')
    // every option is checked before anything is built: a bad one throws and nothing was installed
    const config = resolveServiceConfig(init)
    this.protocols = config.protocols
    this.redialOnHalfOpen = config.redialOnHalfOpen
    this.protection = new BitswapProtectionManager(config.protection, { clock: config.clock, random: config.random })
    this.scheduler = new DeadlineScheduler({ clock: this.protection.clock })
    this.rampConcurrency = config.rampConcurrency
    this.ramp = new RampLimiter(this.rampLimit)
    this.metrics = new ServiceMetrics(components.metrics, {
      circuitStates: () => this.protection.getOverallStatus().circuitStates,
      healthStates: () => {
        const h = this.protection.healthMonitor.getHealthStats()
        return { healthy: h.healthyPeers, degraded: h.degradedPeers, unhealthy: h.unhealthyPeers, unknown: h.unknownPeers }
      },
      localNetworkSuspected: () => this.protection.populationGuard.check(this.protection.clock.now()) ? 1 : 0,
      stalledMs: () => this.scheduler.lag.stalledMs
    })
    this.releaser = new WantReleaser(components, {
      protocols: this.protocols,
      // only message observation knows which wants a peer left unanswered
      enabled: config.releaseWaits && config.observeMessages,
      scheduler: this.scheduler,
      maxPeers: config.protection.maxPeers,
      onRelease: (reason) => { this.metrics.released(reason) }
    })
    this.gate = new StreamGate(components, config, this.protection, this.scheduler, this.metrics, this.log, this.releaser)
    this.isolation = new PeerIsolation(components.connectionManager, config, this.protection, this.gate.guard, this.scheduler, this.log)
    this.bridgeEngineEvents()
    if (config.initialState !== undefined) {
      // checked before anything is installed: a bad snapshot throws InvalidSnapshotError here
      const { entries, stats } = this.protection.restore(config.initialState, { path: 'initialState', isValidPeer: isPeerIdString })
      this.restored = entries
      this.log('initialState: restored %d peers; skipped %d invalid peer ids and %d duplicates, dropped %d whose open time had ended and %d over half the peer table', stats.restored, stats.invalidPeers, stats.duplicates, stats.expired, stats.overCapacity)
    }
  }

  /** Forwards the engine's events as the service's libp2p events (the engine has ordered them) */
  private bridgeEngineEvents (): void {
    const { protection } = this
    protection.addEventListener('transition', (evt) => { this.onTransition(evt.detail) })
    protection.addEventListener('health:change', (evt) => {
      const { from, to } = evt.detail
      const peer = toPeerId(evt.detail.peer)
      if (peer != null) {
        this.log.trace('health of %p %s -> %s', peer, from, to)
        this.safeDispatchEvent('health:change', { detail: { peer, from, to } })
      }
    })
    protection.addEventListener('recovery:start', (evt) => {
      this.metrics.recovery('started')
      const peer = toPeerId(evt.detail.peer)
      if (peer != null) {
        this.log('recovery of %p started', peer)
        this.safeDispatchEvent('recovery:start', { detail: { peer } })
      }
    })
    protection.addEventListener('recovery:complete', (evt) => {
      this.metrics.recovery('completed')
      const peer = toPeerId(evt.detail.peer)
      if (peer != null) {
        this.log('recovery of %p completed', peer)
        this.safeDispatchEvent('recovery:complete', { detail: { peer } })
      }
    })
    protection.addEventListener('recovery:fail', (evt) => {
      this.metrics.recovery('failed')
      const { reason } = evt.detail
      const peer = toPeerId(evt.detail.peer)
      if (peer != null) {
        this.log('recovery of %p failed: %s', peer, reason)
        this.safeDispatchEvent('recovery:fail', { detail: { peer, reason } })
      }
    })
    protection.addEventListener('population:change', (evt) => { this.onPopulationChange(evt.detail) })
  }

  /** Local-network suspicion started or cleared; while it holds, one timer re-checks when it would clear */
  private readonly onPopulationChange = (change: LocalSuspicionChange): void => {
    if (change.suspected) {
      this.log('%d of %d peers failing at once: suspecting our own network, no circuit will open', change.failing, change.population)
      this.safeDispatchEvent('population:local-suspected', { detail: change })
    } else {
      this.log('local network no longer suspected (%d of %d peers failing)', change.failing, change.population)
      this.safeDispatchEvent('population:local-recovered', { detail: change })
    }
    this.armSuspicionCheck()
  }

  private armSuspicionCheck (): void {
    if (this.suspicionCheck !== 0) {
      this.scheduler.cancel(this.suspicionCheck)
      this.suspicionCheck = 0
    }
    const guard = this.protection.populationGuard
    const at = guard.nextCheckAt()
    if (this.started && guard.suspected && Number.isFinite(at)) {
      this.suspicionCheck = this.scheduler.schedule(at, () => {
        this.suspicionCheck = 0
        guard.check(this.protection.clock.now())
        this.armSuspicionCheck()
      })
    }
  }

  /** A recovering peer gets at most rate × rampConcurrency outbound Bitswap opens at once (≥ 1) */
  private readonly rampLimit = (peer: PeerId): number => {
    const record = this.protection.registry.find(peer)
    if (record === undefined) {
      return Infinity
    }
    const now = this.protection.clock.now()
    const recovery = this.protection.recoveryManager
    if (!recovery.recovering(record, now)) {
      return Infinity
    }
    return Math.max(1, Math.ceil(recovery.rate(record, now) * this.rampConcurrency))
  }

  start (): void {
    if (this.started) {
      return
    }
    const { registrar, connectionGater } = this.components
    const upstream = patchMiddlewarePileup(registrar)
    this.upstreamWorkaround = upstream.applied ? 'applied' : 'not-needed'
    this.undo = [
      upstream.restore,
      installMiddleware(registrar, this.protocols, this.gate.onStream),
      wrapGater(connectionGater, this.gate.denies)
    ]
    const { guard } = this.gate
    guard.start()
    this.undo.push(() => { guard.stop() })
    // outermost, so a waiting open is not yet timed by the guard: the wait is ours, not the peer's
    this.undo.push(this.ramp.wrap(this.components.connectionManager, this.protocols))
    const { events } = this.components
    events.addEventListener('peer:disconnect', this.onDisconnect)
    this.undo.push(() => { events.removeEventListener('peer:disconnect', this.onDisconnect) })
    this.releaser.start()
    this.undo.push(() => { this.releaser.stop() })
    this.started = true
    this.isolation.running = true
    this.log('started on %s, upstream middleware workaround %s', this.protocols.join(', '), this.upstreamWorkaround)
    // peers restored OPEN from `initialState` get their half-open redial like any other
    if (this.redialOnHalfOpen) {
      for (const entry of this.restored) {
        const peer = toPeerId(entry.peer)
        if (peer != null && entry.state === CircuitState.OPEN && !entry.isolated) {
          this.isolation.scheduleProbe(peer)
        }
      }
    }
  }

  stop (): void {
    if (!this.started) {
      return
    }
    // undo in reverse order of installation
    for (const undo of this.undo.reverse()) {
      undo()
    }
    this.undo = []
    this.gate.observer?.stop()
    this.scheduler.stop()
    this.suspicionCheck = 0
    this.started = false
    this.isolation.running = false
    this.isolation.clear()
    this.log('stopped')
  }

  isStarted (): boolean {
    return this.started
  }

  /** Whether the libp2p ≤ 3.3.11 middleware workaround had to be applied (see upstream.ts) */
  get upstreamMiddlewareWorkaround (): 'applied' | 'not-needed' | 'not-started' {
    return this.upstreamWorkaround
  }

  getPeerStatus (peer: PeerId | string): ServicePeerStatus {
    const status: PeerStatus = this.protection.getPeerStatus(peer)
    const id = typeof peer === 'string' ? undefined : peer
    return {
      ...status,
      openDeadline: id == null ? undefined : this.gate.guard.deadlineFor(id),
      wantDeadline: id == null || this.gate.observer == null ? undefined : this.gate.observer.deadlineFor(id),
      releasedWants: this.releaser.releasedFor(peer)
    }
  }

  /** Holds a peer's circuit OPEN (and hangs it up) until `release`; ref-counted */
  isolate (peer: PeerId): void {
    this.protection.isolate(peer)
  }

  /** Undoes one `isolate`; once the last is released the peer may redial as a half-open probe */
  release (peer: PeerId): void {
    this.protection.release(peer)
    if (this.started) {
      this.isolation.scheduleDwellCheck(peer)
      if (this.redialOnHalfOpen) {
        this.isolation.scheduleProbe(peer)
      }
    }
  }

  /** What to pass as `initialState` after a restart so bad peers stay gated (JSON-safe) */
  snapshot (): ProtectionSnapshot {
    return this.protection.snapshot()
  }

  getOverallStatus (): ServiceStatus {
    return {
      ...this.protection.getOverallStatus(),
      streams: { ...this.gate.streams },
      eventLoop: { ...this.scheduler.lag },
      observer: this.gate.observer?.stats,
      upstreamMiddlewareWorkaround: this.upstreamWorkaround,
      releases: { status: this.releaser.status, released: this.releaser.released }
    }
  }

  /** Wants still open to a peer that went away will never be answered: not its fault, but Bitswap still waits */
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.gate.observer?.releasePeer(evt.detail, 'disconnect')
    this.gate.observer?.removePeer(evt.detail)
  }

  // -- circuit transitions --

  private readonly onTransition = (evt: TransitionEvent): void => {
    const peer = toPeerId(evt.peer)
    if (peer == null) {
      return
    }
    this.log('circuit for %p %s -> %s: %s', peer, evt.from, evt.to, evt.reason)
    const detail: CircuitEventDetail = { peer, from: evt.from, to: evt.to, reason: evt.reason }
    if (evt.to === CircuitState.OPEN) {
      if (isTrip(evt.reason)) {
        this.metrics.trip()
      }
      this.safeDispatchEvent('circuit:open', { detail })
      // side effects after the engine has finished its transition (we are inside its callback)
      queueMicrotask(() => {
        if (this.started) {
          // Bitswap would wait on the peer's unanswered wants until its caller gives up
          this.gate.observer?.releasePeer(peer, 'circuit_open')
        }
        this.isolation.isolate(peer)
      })
    } else if (evt.to === CircuitState.HALF_OPEN) {
      this.safeDispatchEvent('circuit:half-open', { detail })
    } else {
      this.safeDispatchEvent('circuit:close', { detail })
    }
  }
}

/** The engine keeps peers as they were first given: a string after a restore from a snapshot */
function toPeerId (peer: PeerLike): PeerId | undefined {
  if (typeof peer !== 'string') {
    return peer
  }
  try {
    return peerIdFromString(peer)
  } catch {
    return undefined
  }
}
