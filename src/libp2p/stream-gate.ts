import { systemClock } from '../clock.ts'
import { InboundLimitError } from '../errors.ts'
import { TransitionReason } from '../breaker/core.ts'
import { UNTRACKED_PERMIT } from '../breaker/permit.ts'
import { CircuitState, Outcome } from '../states.ts'
import { BitswapObserver } from './observer.ts'
import { OpenStreamGuard } from './open-stream-guard.ts'
import { watchStream } from './stream-watch.ts'
import { ConnectionDrops, isConnectionError } from './connection-drops.ts'
import type { ResolvedServiceConfig } from './config.ts'
import type { DeadlineScheduler } from './deadline-scheduler.ts'
import type { RejectionReason, ServiceMetrics } from './metrics.ts'
import type { AbuseReason, ObserverSink } from './observer.ts'
import type { OpenStreamGate, OpenStreamGuardComponents } from './open-stream-init.ts'
import type { StreamOutcomeSink } from './stream-watch.ts'
import type { WantReleaser } from './release.ts'
import type { ReleaseReason } from '../bitswap/want-release.ts'
import type { BitswapProtectionManager } from '../protection/protection-manager.ts'
import type { Admission, Permit, Rejection } from '../breaker/permit.ts'
import type { Connection, Logger, PeerId, Stream } from '@libp2p/interface'

/**
 * The per-stream decisions, where evidence about a peer turns into admissions and outcomes:
 *
 * - stream middleware (`onStream`) admits or refuses every Bitswap stream in both directions and
 *   watches how it ends (stream-watch.ts);
 * - outbound opens are admitted when Bitswap asks for them and timed by the open-stream guard, which
 *   reports how they ended (`OpenStreamGate`);
 * - the observer's verdicts on wants and its abuse reports (`ObserverSink`) go to the engine;
 * - the gater rule (`denies`) refuses dials to and from a peer whose circuit is OPEN.
 *
 * Allowlisted peers pass everywhere without touching the engine.
 */
export class StreamGate implements OpenStreamGate, StreamOutcomeSink, ObserverSink {
  readonly guard: OpenStreamGuard
  readonly observer: BitswapObserver | undefined
  /** Bitswap streams seen and refused, for `getOverallStatus` */
  readonly streams = { inbound: 0, outbound: 0, refusedInbound: 0, refusedOutbound: 0 }
  private readonly protection: BitswapProtectionManager
  private readonly scheduler: DeadlineScheduler
  private readonly metrics: ServiceMetrics
  private readonly log: Logger
  private readonly allowlist: Set<string>
  private readonly minResponseDeadline: number
  /** With message observation a clean close is no evidence: answers are (see observer.ts) */
  private readonly cleanClose: Outcome
  private readonly connections: OpenStreamGuardComponents['connectionManager']
  private readonly drops = new ConnectionDrops()
  private readonly releaser: WantReleaser | undefined
  /** On the system clock a stream's own `timeline.open` (libp2p's Date.now()) is the admission time */
  private readonly streamTime: boolean

  constructor (components: OpenStreamGuardComponents, config: ResolvedServiceConfig, protection: BitswapProtectionManager, scheduler: DeadlineScheduler, metrics: ServiceMetrics, log: Logger, releaser?: WantReleaser) {
    this.protection = protection
    this.scheduler = scheduler
    this.metrics = metrics
    this.log = log
    this.allowlist = config.allowlist
    this.minResponseDeadline = config.responseDeadline
    this.guard = new OpenStreamGuard(components, this, {
      ...config.openStream,
      protocols: config.protocols,
      scheduler
    })
    this.observer = config.observeMessages
      ? new BitswapObserver({ ...config.observe, clock: protection.clock, scheduler }, this)
      : undefined
    this.cleanClose = this.observer == null ? Outcome.SUCCESS : Outcome.NEUTRAL
    this.connections = components.connectionManager
    this.releaser = releaser
    this.streamTime = protection.clock === systemClock
  }

  /**
   * Stream middleware, run for every Bitswap stream in both directions after protocol negotiation.
   * Throwing refuses the stream: outbound, `dialProtocol` rejects with our error; inbound, libp2p
   * aborts the stream before the handler runs. Never return without calling `next` or throwing: an
   * outbound `dialProtocol` would hang forever.
   */
  readonly onStream = (stream: Stream, connection: Connection, next: (stream: Stream, connection: Connection) => void): void => {
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
    if (!outbound && this.observer != null && this.observer.awaitingAnswers(peer) && this.protection.circuitState(peer) === CircuitState.HALF_OPEN) {
      // answers to our probes (wants we sent it are open): these streams carry the evidence, so
      // they are exempt from the quota. Checked before admission on purpose: an admitted inbound
      // stream holds a probe permit until it closes, and the verdicts it carries would then find
      // the quota used up. Any other inbound stream of a HALF_OPEN peer takes a probe permit below.
      next(this.observer.wrapInbound(stream, peer), connection)
      return
    }
    // the recovery ramp limits concurrent opens (ramp-limiter.ts) instead of refusing streams
    // no clock read of our own: libp2p stamped the stream when it made it, before negotiation
    const opened = this.streamTime ? stream.timeline?.open : undefined
    const now = typeof opened === 'number' ? opened : this.protection.clock.now()
    const admission = this.protection.admit(peer, false, now)
    if (!admission.admitted) {
      this.countRefusal(outbound, admission)
      throw admission.error
    }
    if (admission.tracked) {
      if (outbound) {
        watchStream(stream, admission, now, this.protection.clock, this, this.cleanClose, this.scheduler, now + this.responseDeadline(peer))
      } else {
        watchStream(stream, admission, now, this.protection.clock, this, this.cleanClose)
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
  allowed (peer: PeerId): boolean {
    return this.allowlist.size > 0 && this.allowlist.has(peer.toString())
  }

  /** Gater decision: an OPEN circuit denies dials and new inbound connections */
  readonly denies = (peer: PeerId): boolean => {
    if (this.protection.circuitState(peer) !== CircuitState.OPEN || this.allowed(peer)) {
      return false
    }
    this.metrics.rejection('dial', 'open')
    return true
  }

  private countRefusal (outbound: boolean, rejection: Rejection): void {
    if (outbound) {
      this.streams.refusedOutbound++
    } else {
      this.streams.refusedInbound++
    }
    this.metrics.rejection(outbound ? 'outbound' : 'inbound', REJECTION_LABELS[rejection.reason])
  }

  // -- OpenStreamGate: outbound opens timed by the guard --

  admit (peer: PeerId): Admission {
    if (this.allowed(peer)) {
      return UNTRACKED_PERMIT
    }
    return this.protection.admit(peer, false)
  }

  rejection (rejection: Rejection): Error {
    this.countRefusal(true, rejection)
    return rejection.error
  }

  opened (permit: Permit, peer: PeerId, stream: Stream, openMs: number): void {
    this.streams.outbound++
    if (permit.tracked) {
      const now = this.protection.clock.now()
      watchStream(stream, permit, now - openMs, this.protection.clock, this, this.cleanClose, this.scheduler, now + this.responseDeadline(peer))
    }
  }

  /** An unproven peer's caller goes on with a deferred stream: its wants are recorded (and released if the open fails) */
  deferred (_permit: Permit, peer: PeerId, stream: Stream): Stream {
    return this.observer?.wrapOutbound(stream, peer) ?? stream
  }

  failed (permit: Permit, peer: PeerId, outcome: Outcome, openMs: number, err: Error): void {
    if (!permit.tracked) {
      return
    }
    permit.settle(this.dropped(peer, outcome, err), openMs, err)
    if (err.name === 'OpenStreamDeadlineError' && !this.guard.hasOpened(peer)) {
      // A peer that never completed a Bitswap open on this connection and now misses a deadline
      // derived from its own identify time is blackholing: waiting for two more misses costs every
      // want one deadline each (Helia's wantlist rounds wait for every peer's send)
      this.protection.trip(peer, TransitionReason.OPEN_DEADLINE)
    }
  }

  // -- StreamOutcomeSink --

  settleStream (permit: Permit, outcome: Outcome, latencyMs: number, err: Error | undefined, now: number): void {
    const peer = permit.record?.peer
    if (outcome === Outcome.FAILURE && peer !== undefined && typeof peer !== 'string') {
      outcome = this.dropped(peer, outcome, err, now)
    }
    permit.settle(outcome, latencyMs, err, now)
  }

  /**
   * A failure that came with its connection going away (a connection error, or no open connection
   * left) counts once per drop; the streams and opens that died with it are neutral
   */
  private dropped (peer: PeerId, outcome: Outcome, err: Error | undefined, now: number = this.protection.clock.now()): Outcome {
    if (outcome !== Outcome.FAILURE) {
      return outcome
    }
    if (!isConnectionError(err) && this.connections.getConnections(peer).some(c => c.status === 'open')) {
      return outcome
    }
    return this.drops.first(peer.toString(), now) ? Outcome.FAILURE : Outcome.NEUTRAL
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

  /** The peer will not answer this want: a DONT_HAVE on its behalf (trusted peers are never judged) */
  releaseWant (peer: PeerId, cid: Uint8Array, reason: ReleaseReason): void {
    if (!this.allowed(peer)) {
      this.releaser?.release(peer, cid, reason)
    }
  }

  abuse (peer: PeerId, reason: AbuseReason, err?: Error): void {
    this.metrics.rejection('inbound', ABUSE_LABELS[reason])
    this.log('%p broke the rules: %s', peer, reason)
    if (this.allowed(peer)) {
      return
    }
    this.protection.observe(peer, Outcome.FAILURE, 0, err ?? new InboundLimitError(reason))
    if (PUNISHED.has(reason)) {
      // a flood is no detector's guess: open it whatever the population guard says
      this.protection.punish(peer)
    }
  }

  /** An OPEN peer's admitted streams are aborted on their next chunk (see observer-core.ts) */
  blocked (peer: PeerId): boolean {
    return this.protection.circuitState(peer) === CircuitState.OPEN && !this.allowed(peer)
  }
}

const REJECTION_LABELS: Record<Rejection['reason'], RejectionReason> = {
  open: 'open',
  'half-open-full': 'half_open',
  recovery: 'recovery'
}

const ABUSE_LABELS: Record<AbuseReason, RejectionReason> = {
  protocol_error: 'protocol_error',
  unrequested: 'unrequested',
  inbound_streams: 'stream_limit',
  inbound_bytes: 'byte_limit',
  wantlist_budget: 'wantlist_limit',
  inbound_memory: 'memory_limit'
}

/** Abuse that opens the circuit at once: each costs us work or memory a useful peer never asks for */
const PUNISHED: ReadonlySet<AbuseReason> = new Set<AbuseReason>(['inbound_bytes', 'wantlist_budget', 'inbound_memory'])
