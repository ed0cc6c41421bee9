import { serviceCapabilities, TypedEventEmitter } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { BitswapProtectionManager } from '../protection/protection-manager.ts'
import { CircuitState, Outcome, REJECT_HALF_OPEN_FULL, REJECT_OPEN, UNTRACKED } from '../states.ts'
import { SERVICE_NAME } from './constants.ts'
import { DeadlineScheduler } from './deadline-scheduler.ts'
import { ServiceMetrics } from './metrics.ts'
import { BitswapObserver } from './observer.ts'
import { wrapGater } from './gater.ts'
import { installMiddleware } from './middleware.ts'
import { OpenStreamGuard } from './open-stream-guard.ts'
import { watchStream } from './stream-watch.ts'
import { RampLimiter } from './ramp-limiter.ts'
import { WantReleaser } from './release.ts'
import { patchMiddlewarePileup } from './upstream.ts'
import { InboundLimitError } from '../errors.ts'
import { resolveServiceConfig } from './config.ts'
import type { BitswapCircuitBreakerComponents, BitswapCircuitBreakerEvents, BitswapCircuitBreakerInit, BitswapCircuitBreakerService, CircuitEventDetail, ServicePeerStatus, ServiceStatus } from '../index.ts'
import { isTrip } from '../protection/protection-manager.ts'
import type { PeerSnapshot, PeerStatus, ProtectionSnapshot, TransitionEvent } from '../protection/protection-manager.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { AbuseReason, ObserverSink } from './observer.ts'
import type { RejectionReason } from './metrics.ts'
import type { LocalSuspicionChange } from '../protection/population-guard.ts'
import type { OpenStreamGate } from './open-stream-guard.ts'
import type { StreamOutcomeSink } from './stream-watch.ts'
import type { ReleaseReason } from '../bitswap/want-release.ts'
import type { Connection, Logger, PeerId, Startable, Stream } from '@libp2p/interface'

/**
 * The libp2p service: sits between the network and the real Bitswap handler and decides, per peer,
 * whether each Bitswap stream (both directions) and each dial may proceed.
 *
 * - Inbound and outbound Bitswap streams pass through our stream middleware, which admits or refuses
 *   them and watches how they end (see stream-watch.ts).
 * - Outbound opens are also timed from the moment Bitswap asks for them (open-stream-guard.ts):
 *   a peer that blackholes bytes never gets as far as middleware.
 * - Dials to a peer whose circuit is OPEN are denied through the node's own gater (gater.ts), and
 *   opening a circuit hangs up the peer, because the gater is not consulted while a connection exists.
 */
export class CircuitBreakerService extends TypedEventEmitter<BitswapCircuitBreakerEvents> implements Startable, BitswapCircuitBreakerService, OpenStreamGate, StreamOutcomeSink, ObserverSink {
  readonly [Symbol.toStringTag] = SERVICE_NAME
  readonly [serviceCapabilities]: string[] = ['@ipfs/bitswap-circuit-breaker']

  readonly protection: BitswapProtectionManager
  private readonly components: BitswapCircuitBreakerComponents
  private readonly log: Logger
  private readonly protocols: readonly string[]
  private readonly disconnectOnOpen: boolean
  private readonly redialOnHalfOpen: boolean
  private readonly minResponseDeadline: number
  private readonly streams = { inbound: 0, outbound: 0, refusedInbound: 0, refusedOutbound: 0 }
  private readonly allowlist: Set<string>
  private readonly scheduler: DeadlineScheduler
  private readonly guard: OpenStreamGuard
  private readonly ramp: RampLimiter
  private readonly rampConcurrency: number
  private readonly observer: BitswapObserver | undefined
  /** Ends Bitswap's waits on peers that will not answer (release.ts) */
  private readonly releaser: WantReleaser
  private readonly metrics: ServiceMetrics
  /** With message observation a clean close is no evidence: answers are (see observer.ts) */
  private readonly cleanClose: Outcome
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
    this.disconnectOnOpen = config.disconnectOnOpen
    this.redialOnHalfOpen = config.redialOnHalfOpen
    this.minResponseDeadline = config.responseDeadline
    this.allowlist = config.allowlist
    this.protection = new BitswapProtectionManager(config.protection, { clock: config.clock, random: config.random })
    this.scheduler = new DeadlineScheduler({ clock: this.protection.clock })
    this.guard = new OpenStreamGuard(components, this, {
      ...config.openStream,
      protocols: this.protocols,
      scheduler: this.scheduler
    })
    this.rampConcurrency = config.rampConcurrency
    this.ramp = new RampLimiter(this.rampLimit)
    this.observer = config.observeMessages
      ? new BitswapObserver({ ...config.observe, clock: this.protection.clock, scheduler: this.scheduler }, this)
      : undefined
    this.cleanClose = this.observer == null ? Outcome.SUCCESS : Outcome.NEUTRAL
    this.releaser = new WantReleaser(components, {
      protocols: this.protocols,
      // only message observation knows which wants a peer left unanswered
      enabled: config.releaseWaits && this.observer != null,
      scheduler: this.scheduler,
      maxPeers: config.protection.maxPeers,
      onRelease: (reason) => { this.metrics.released(reason) }
    })
    this.metrics = new ServiceMetrics(components.metrics, {
      circuitStates: () => this.protection.getOverallStatus().circuitStates,
      healthStates: () => {
        const h = this.protection.healthMonitor.getHealthStats()
        return { healthy: h.healthyPeers, degraded: h.degradedPeers, unhealthy: h.unhealthyPeers, unknown: h.unknownPeers }
      },
      localNetworkSuspected: () => this.protection.populationGuard.check(this.protection.clock.now()) ? 1 : 0
    })
    this.bridgeEngineEvents()
    if (init.initialState != null) {
      this.protection.restore(init.initialState)
      this.restored = init.initialState.peers
    }
  }

  /** Re-dispatches the engine's events as the service's typed libp2p-style events */
  private bridgeEngineEvents (): void {
    const { protection } = this
    protection.onTransition(this.onTransition)
    protection.healthMonitor.onStatusChange((evt) => {
      const { from, to } = evt
      const peer = toPeerId(evt.peer)
      if (peer != null) {
        this.log.trace('health of %p %s -> %s', peer, from, to)
        this.safeDispatchEvent('health:change', { detail: { peer, from, to } })
      }
    })
    protection.recoveryManager.onRecoveryStart((evt) => {
      this.metrics.recovery('started')
      const peer = toPeerId(evt.peer)
      if (peer != null) {
        this.log('recovery of %p started', peer)
        // the ramp starts inside the close: recovery events go out after `circuit:close`, in order
        queueMicrotask(() => { this.safeDispatchEvent('recovery:start', { detail: { peer } }) })
      }
    })
    protection.recoveryManager.onRecoveryComplete((evt) => {
      this.metrics.recovery('completed')
      const peer = toPeerId(evt.peer)
      if (peer != null) {
        this.log('recovery of %p completed', peer)
        queueMicrotask(() => { this.safeDispatchEvent('recovery:complete', { detail: { peer } }) })
      }
    })
    protection.recoveryManager.onRecoveryFailed((evt) => {
      this.metrics.recovery('failed')
      const { reason } = evt
      const peer = toPeerId(evt.peer)
      if (peer != null) {
        this.log('recovery of %p failed: %s', peer, reason)
        queueMicrotask(() => { this.safeDispatchEvent('recovery:fail', { detail: { peer, reason } }) })
      }
    })
    protection.onPopulationChange(this.onPopulationChange)
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
    const slot = this.protection.registry.find(peer)
    if (slot === -1) {
      return Infinity
    }
    const now = this.protection.clock.now()
    const recovery = this.protection.recoveryManager
    if (!recovery.recovering(slot, now)) {
      return Infinity
    }
    return Math.max(1, Math.ceil(recovery.rate(slot, now) * this.rampConcurrency))
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
      installMiddleware(registrar, this.protocols, this.onStream),
      wrapGater(connectionGater, this.denies)
    ]
    this.guard.start()
    this.undo.push(() => { this.guard.stop() })
    // outermost, so a waiting open is not yet timed by the guard: the wait is ours, not the peer's
    this.undo.push(this.ramp.wrap(this.components.connectionManager, this.protocols))
    const { events } = this.components
    events.addEventListener('peer:disconnect', this.onDisconnect)
    this.undo.push(() => { events.removeEventListener('peer:disconnect', this.onDisconnect) })
    this.releaser.start()
    this.undo.push(() => { this.releaser.stop() })
    this.started = true
    this.log('started on %s, upstream middleware workaround %s', this.protocols.join(', '), this.upstreamWorkaround)
    // peers restored OPEN from `initialState` get their half-open redial like any other
    if (this.redialOnHalfOpen) {
      for (const entry of this.restored) {
        const peer = toPeerId(entry.peer)
        if (peer != null && entry.state === CircuitState.OPEN && !entry.isolated) {
          this.scheduleProbe(peer)
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
    this.observer?.stop()
    this.scheduler.stop()
    this.suspicionCheck = 0
    this.started = false
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
      openDeadline: id == null ? undefined : this.guard.deadlineFor(id),
      wantDeadline: id == null || this.observer == null ? undefined : this.observer.deadlineFor(id),
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
    if (this.started && this.redialOnHalfOpen) {
      this.scheduleProbe(peer)
    }
  }

  /** What to pass as `initialState` after a restart so bad peers stay gated (JSON-safe) */
  snapshot (): ProtectionSnapshot {
    return this.protection.snapshot()
  }

  getOverallStatus (): ServiceStatus {
    return {
      ...this.protection.getOverallStatus(),
      streams: { ...this.streams },
      upstreamMiddlewareWorkaround: this.upstreamWorkaround,
      releases: { status: this.releaser.status, released: this.releaser.released }
    }
  }

  private countRefusal (outbound: boolean, code: number): void {
    if (outbound) {
      this.streams.refusedOutbound++
    } else {
      this.streams.refusedInbound++
    }
    this.metrics.rejection(outbound ? 'outbound' : 'inbound', rejectionReason(code))
  }

  /**
   * Stream middleware, run for every Bitswap stream in both directions after protocol negotiation.
   * Throwing refuses the stream: outbound, `dialProtocol` rejects with our error; inbound, libp2p
   * aborts the stream before the handler runs. Never return without calling `next` or throwing: an
   * outbound `dialProtocol` would hang forever.
   */
  private readonly onStream = (stream: Stream, connection: Connection, next: (stream: Stream, connection: Connection) => void): void => {
    const peer = connection.remotePeer
    const outbound = stream.direction === 'outbound'
    // outbound opens that went through `openStream` were admitted (and are watched) by the guard
    if (outbound && this.guard.inFlight(peer) > 0) {
      next(this.observer?.wrapOutbound(stream, peer, connection.rtt) ?? stream, connection)
      return
    }
    if (outbound) {
      this.streams.outbound++
    } else {
      this.streams.inbound++
    }
    if (this.allowed(peer)) {
      next(stream, connection)
      return
    }
    if (!outbound && this.observer != null && !this.observer.admitInbound(peer)) {
      this.streams.refusedInbound++
      this.abuse(peer, 'inbound_streams')
      throw new InboundLimitError('too many concurrent inbound Bitswap streams from this peer')
    }
    if (!outbound && this.observer != null && this.protection.circuitState(peer) === CircuitState.HALF_OPEN) {
      // answers to our probes: the quota is for what we ask, and these streams carry the evidence.
      // Checked before admission on purpose: an admitted inbound stream would hold a probe permit
      // until it closes, and the answer verdicts it carries would then find the quota used up.
      next(this.observer.wrapInbound(stream, peer), connection)
      return
    }
    // the recovery ramp limits concurrent opens (ramp-limiter.ts) instead of refusing streams
    const now = this.protection.clock.now()
    const token = this.protection.admit(peer, false, now)
    if (token < 0) {
      this.countRefusal(outbound, token)
      throw this.protection.rejectionError(token)
    }
    if (token !== UNTRACKED) {
      if (outbound) {
        watchStream(stream, token, now, this.protection.clock, this, this.cleanClose, this.scheduler, now + this.responseDeadline(peer))
      } else {
        watchStream(stream, token, now, this.protection.clock, this, this.cleanClose)
      }
    }
    if (this.observer == null) {
      next(stream, connection)
    } else {
      next(outbound ? this.observer.wrapOutbound(stream, peer, connection.rtt) : this.observer.wrapInbound(stream, peer), connection)
    }
  }

  /** How long a peer may take to finish an outbound stream: generous, never below `responseDeadline` */
  private responseDeadline (peer: PeerId): number {
    return Math.max(this.minResponseDeadline, 2 * this.guard.deadlineFor(peer))
  }

  /** Trusted peers are never gated (the common case, an empty allowlist, costs one size check) */
  private allowed (peer: PeerId): boolean {
    return this.allowlist.size > 0 && this.allowlist.has(peer.toString())
  }

  /** Wants still open to a peer that went away will never be answered: not its fault, but Bitswap still waits */
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.observer?.releasePeer(evt.detail, 'disconnect')
    this.observer?.removePeer(evt.detail)
  }

  /** Gater decision: an OPEN circuit denies dials and new inbound connections */
  private readonly denies = (peer: PeerId): boolean => {
    if (this.protection.circuitState(peer) !== CircuitState.OPEN || this.allowed(peer)) {
      return false
    }
    this.metrics.rejection('dial', 'open')
    return true
  }

  // -- OpenStreamGate: outbound opens timed by the guard --

  admit (peer: PeerId): number {
    if (this.allowed(peer)) {
      return UNTRACKED
    }
    return this.protection.admit(peer, false)
  }

  rejection (code: number): Error {
    this.countRefusal(true, code)
    return this.protection.rejectionError(code)
  }

  opened (token: number, peer: PeerId, stream: Stream, openMs: number): void {
    this.streams.outbound++
    if (token !== UNTRACKED) {
      const now = this.protection.clock.now()
      watchStream(stream, token, now - openMs, this.protection.clock, this, this.cleanClose, this.scheduler, now + this.responseDeadline(peer))
    }
  }

  failed (token: number, peer: PeerId, outcome: Outcome, openMs: number, err: Error): void {
    if (token === UNTRACKED) {
      return
    }
    this.protection.settle(token, outcome, openMs, err)
    if (err.name === 'OpenStreamDeadlineError' && !this.guard.hasOpened(peer)) {
      // A peer that never completed a Bitswap open on this connection and now misses a deadline
      // derived from its own identify time is blackholing: waiting for two more misses costs every
      // want one deadline each (Helia's wantlist rounds wait for every peer's send)
      this.protection.trip(peer, 'open deadline missed before any open')
    }
  }

  // -- StreamOutcomeSink --

  settleStream (token: number, outcome: Outcome, latencyMs: number, err: Error | undefined, now: number): void {
    this.protection.settle(token, outcome, latencyMs, err, now)
  }

  // -- ObserverSink: message-level verdicts --

  verdict (peer: PeerId, outcome: Outcome, latencyMs: number, err?: Error): void {
    if (outcome === Outcome.FAILURE) {
      this.metrics.miss()
    } else {
      this.metrics.answer(latencyMs)
    }
    if (!this.allowed(peer)) {
      this.protection.observe(peer, outcome, latencyMs, err)
    }
  }

  releaseWant (peer: PeerId, cid: Uint8Array, reason: ReleaseReason): void {
    if (!this.allowed(peer)) {
      this.releaser.release(peer, cid, reason)
    }
  }

  abuse (peer: PeerId, reason: AbuseReason, err?: Error): void {
    this.metrics.rejection('inbound', ABUSE_LABELS[reason])
    this.log('%p broke the rules: %s', peer, reason)
    if (!this.allowed(peer)) {
      this.protection.observe(peer, Outcome.FAILURE, 0, err ?? new InboundLimitError(reason))
    }
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
      queueMicrotask(() => { this.isolatePeer(peer) })
    } else if (evt.to === CircuitState.HALF_OPEN) {
      this.safeDispatchEvent('circuit:half-open', { detail })
    } else {
      this.safeDispatchEvent('circuit:close', { detail })
    }
  }

  /**
   * A circuit just opened: cancel the peer's in-flight opens (they hold slots of Bitswap's shared
   * send queue and would stall sends to every other peer), and hang up so the gater decides when it
   * may come back. Helia re-sends its whole wantlist on reconnect, so the redial is the probe.
   */
  private isolatePeer (peer: PeerId): void {
    if (!this.started) {
      return
    }
    // Bitswap would wait on the peer's unanswered wants until its caller gives up
    this.observer?.releasePeer(peer, 'circuit_open')
    const cancelled = this.guard.cancelPeer(peer, this.protection.rejectionError(REJECT_OPEN))
    if (cancelled > 0) {
      this.log.trace('cancelled %d in-flight opens to %p', cancelled, peer)
    }
    if (!this.disconnectOnOpen) {
      return
    }
    const connections = this.components.connectionManager.getConnections(peer)
    if (connections.length === 0) {
      return
    }
    for (const connection of connections) {
      connection.abort(this.protection.rejectionError(REJECT_OPEN))
    }
    if (this.redialOnHalfOpen) {
      this.scheduleProbe(peer)
    }
  }

  /** Redial when the open duration ends (an isolated circuit has none: `release` schedules it) */
  private scheduleProbe (peer: PeerId): void {
    const at = this.protection.openUntil(peer)
    if (Number.isFinite(at)) {
      this.scheduler.schedule(at, () => { this.probe(peer) })
    }
  }

  /** The open duration has passed: redial once, as the half-open probe */
  private probe (peer: PeerId): void {
    if (!this.started) {
      return
    }
    const state = this.protection.circuitState(peer)
    if (state === CircuitState.OPEN) {
      // tripped again meanwhile: try when the new open duration ends
      this.scheduleProbe(peer)
      return
    }
    if (state !== CircuitState.HALF_OPEN) {
      return
    }
    if (this.components.connectionManager.getConnections(peer).length > 0) {
      return
    }
    const token = this.protection.admit(peer, false)
    if (token <= 0) {
      return
    }
    const startedAt = this.protection.clock.now()
    this.components.connectionManager.openConnection(peer)
      .then(() => {
        this.protection.settle(token, Outcome.SUCCESS, this.protection.clock.now() - startedAt)
      }, (err: Error) => {
        this.log('half-open redial of %p failed - %e', peer, err)
        this.protection.settle(token, Outcome.FAILURE, this.protection.clock.now() - startedAt, err)
      })
  }
}

function rejectionReason (code: number): RejectionReason {
  if (code === REJECT_OPEN) {
    return 'open'
  }
  return code === REJECT_HALF_OPEN_FULL ? 'half_open' : 'recovery'
}

const ABUSE_LABELS: Record<AbuseReason, RejectionReason> = {
  protocol_error: 'protocol_error',
  unrequested: 'unrequested',
  inbound_streams: 'stream_limit',
  inbound_bytes: 'byte_limit'
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
