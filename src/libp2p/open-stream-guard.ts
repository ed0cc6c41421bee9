import { AbortError, isPeerId } from '@libp2p/interface'
import { Rejection } from '../breaker/permit.ts'
import { ClosedError, InvalidConfigError } from '../errors.ts'
import { Outcome } from '../states.ts'
import { DEFAULT_BITSWAP_PROTOCOLS, DEFAULT_NEUTRAL_OPEN_ERRORS, resolveOpenStreamConfig } from './config.ts'
import { DeadlineScheduler } from './deadline-scheduler.ts'
import { OpenDeadlines } from './open-deadline.ts'
import { ABORTED, deferOpen, expireOpen, PeerOpens, PENDING, PendingOpen, SETTLED } from './pending-open.ts'
import { DeferredStream } from './deferred-stream.ts'
import { patchMethod } from './patch.ts'
import type { Permit } from '../breaker/permit.ts'
import type { MethodPatch } from './patch.ts'
import type { OpenStreamGate, OpenStreamGuardComponents, OpenStreamGuardInit } from './open-stream-init.ts'
import type { OpenSettler } from './pending-open.ts'
import type { Clock } from '../clock.ts'
import type { Connection, DialTarget, Logger, NewStreamOptions, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager, OpenConnectionOptions } from '@libp2p/interface-internal'

/**
 * Times outbound Bitswap stream opens from the moment they are requested.
 *
 * A connection that is open but drops every byte never gets a Bitswap stream as far as stream
 * middleware: the open hangs in multistream negotiation for 10–15 s while holding a slot of
 * Bitswap's shared send queue (concurrency 50), which stalls sends to every other peer. So the
 * guard wraps `connectionManager.openStream` (what `libp2p.dialProtocol` calls, read on every call)
 * and gives each Bitswap open a per-peer deadline, reports how it ended to a gate (the service's
 * circuit breaker), and lets the service cancel a peer's opens when its circuit opens.
 * Why these numbers: docs/design.md, "Open-stream deadlines".
 *
 * Scope: a call is guarded when ANY of its protocols is in `protocols` (Bitswap asks for exactly
 * one; a mixed list that may end up speaking Bitswap would hold the same queue slot) and its
 * target is a PeerId, or a multiaddr whose `/p2p/` peer we are connected to. Anything else goes
 * straight to the original `openStream`.
 *
 * Outcomes reported to the gate:
 * - success: `opened(token, peer, stream, openMs)`;
 * - deadline missed: FAILURE with an `OpenStreamDeadlineError`;
 * - the caller's signal aborted: NEUTRAL (the caller gave up, nothing is known about the peer);
 * - `cancelPeer`: NEUTRAL, because the circuit that asked for it has already counted the trip;
 * - `stop()`: NEUTRAL with a `ClosedError`;
 * - any other error from the inner open: FAILURE, unless its `name` is in `neutralErrors` (by
 *   default errors that are ours or say nothing about the peer's health, such as
 *   `UnsupportedProtocolError` from a peer that simply is not a Bitswap peer, or our own gater's
 *   `DialDeniedError`).
 */

type OpenStreamOptions = OpenConnectionOptions & NewStreamOptions
type OpenStreamFn = ConnectionManager['openStream']

const CODE_P2P = 421

export class OpenStreamGuard<T = Permit> {
  private readonly components: OpenStreamGuardComponents
  private readonly gate: OpenStreamGate<T>
  private readonly log: Logger
  private readonly protocols: Set<string>
  private readonly neutral: Set<string>
  private readonly clock: Clock
  private readonly scheduler: DeadlineScheduler
  private readonly ownsScheduler: boolean
  private readonly deadlines: OpenDeadlines
  private readonly firstOpenHold: number
  private readonly peers = new Map<string, PeerOpens>()
  /** Connections whose identify time was taken (identify push dispatches `peer:identify` again) */
  private measured = new WeakSet<Connection>()
  private readonly settler: OpenSettler
  private patch: MethodPatch<OpenStreamFn> | undefined

  constructor (components: OpenStreamGuardComponents, gate: OpenStreamGate<T>, init: OpenStreamGuardInit = {}) {
    this.components = components
    this.gate = gate
    this.log = components.logger.forComponent('libp2p:bitswap-circuit-breaker:open-stream-guard')

    const protocols = init.protocols ?? DEFAULT_BITSWAP_PROTOCOLS
    if (!Array.isArray(protocols) || protocols.length === 0 || protocols.some(p => typeof p !== 'string')) {
      throw new InvalidConfigError('openStream.protocols must be a non-empty array of protocol ids')
    }
    this.protocols = new Set(protocols)
    const config = resolveOpenStreamConfig(init)
    this.neutral = new Set(config.neutralErrors ?? DEFAULT_NEUTRAL_OPEN_ERRORS)
    this.deadlines = new OpenDeadlines(config)
    this.firstOpenHold = config.firstOpenHold
    this.ownsScheduler = init.scheduler == null
    this.scheduler = init.scheduler ?? new DeadlineScheduler({ clock: init.clock })
    // deadlines are absolute times in the scheduler's time base
    this.clock = this.scheduler.clock
    this.settler = {
      abortOpen: (open, reason, outcome) => this.abortOpen(open, reason, outcome),
      defer: (open) => { this.defer(open) }
    }
  }

  /** Wraps `connectionManager.openStream` (as an own property) and starts listening for identify */
  start (): void {
    if (this.patch != null) {
      return
    }
    const cm = this.components.connectionManager
    // a wrapper per start: a stale one left inside someone else's chain stays a pass-through
    this.patch = patchMethod(cm, 'openStream', (original: OpenStreamFn): OpenStreamFn => (target, protocols, options) => {
      if (!this.inScope(protocols)) {
        return original.call(cm, target, protocols, options)
      }
      const peer = this.peerOf(target)
      if (peer == null) {
        return original.call(cm, target, protocols, options)
      }
      return this.guarded(original, cm, target, peer, protocols, options)
    })
    this.components.events.addEventListener('peer:identify', this.onIdentify)
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
  }

  /**
   * Puts back exactly what was there before `start()` (or, if someone wrapped `openStream` on top
   * of ours, turns ours into a pass-through), aborts our in-flight opens (NEUTRAL, `ClosedError`)
   * and removes our listeners. A scheduler passed in `init` is left running.
   */
  stop (): void {
    const patch = this.patch
    if (patch == null) {
      return
    }
    this.patch = undefined
    patch.restore()
    const closed = new ClosedError('the open-stream guard was stopped')
    for (const state of [...this.peers.values()]) {
      this.abortAll(state, closed)
    }
    this.components.events.removeEventListener('peer:identify', this.onIdentify)
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
    this.peers.clear()
    this.measured = new WeakSet()
    if (this.ownsScheduler) {
      this.scheduler.stop()
    }
  }

  /**
   * Aborts every in-flight guarded open to the peer with `reason` (its circuit just opened); they
   * reject at once. Reported to the gate as NEUTRAL: the circuit has already counted the trip.
   * Returns how many were aborted.
   */
  cancelPeer (peer: PeerId, reason: Error): number {
    const state = this.peers.get(peer.toString())
    return state == null ? 0 : this.abortAll(state, reason)
  }

  /** Guarded opens in flight to the peer */
  inFlight (peer: PeerId): number {
    return this.peers.get(peer.toString())?.inFlight.size ?? 0
  }

  /** Whether an open to this peer has completed on its current connection (a timing sample exists) */
  hasOpened (peer: PeerId): boolean {
    return (this.peers.get(peer.toString())?.count ?? 0) > 0
  }

  /** The deadline (ms) an open to this peer would get now */
  deadlineFor (peer: PeerId): number {
    return this.computeDeadline(peer, this.peers.get(peer.toString()), this.components.connectionManager.getConnections(peer).length > 0)
  }

  private inScope (protocols: string | string[]): boolean {
    if (typeof protocols === 'string') {
      return this.protocols.has(protocols)
    }
    for (let i = 0; i < protocols.length; i++) {
      if (this.protocols.has(protocols[i])) {
        return true
      }
    }
    return false
  }

  /**
   * The peer a target names. A multiaddr is only resolved to a peer we are connected to: a PeerId
   * cannot be built from its `/p2p/` string without @libp2p/peer-id (not a runtime dependency).
   */
  private peerOf (target: DialTarget): PeerId | undefined {
    if (isPeerId(target)) {
      return target
    }
    const ma = Array.isArray(target) ? target[0] : target
    if (ma == null || typeof ma.getComponents !== 'function') {
      return undefined
    }
    const p2p = ma.getComponents().findLast(c => c.code === CODE_P2P)?.value
    if (p2p == null) {
      return undefined
    }
    const connections = this.components.connectionManager.getConnections()
    for (let i = 0; i < connections.length; i++) {
      const remote = connections[i].remotePeer
      if (remote.toString() === p2p) {
        return remote
      }
    }
    return undefined
  }

  private guarded (original: OpenStreamFn, cm: ConnectionManager, target: DialTarget, peer: PeerId, protocols: string | string[], options: OpenStreamOptions | undefined): Promise<Stream> {
    const callerSignal = options?.signal
    if (callerSignal?.aborted === true) {
      // nothing to admit: the caller has already given up
      return Promise.reject(callerSignal.reason)
    }
    const token = this.gate.admit(peer)
    if (token instanceof Rejection) {
      return Promise.reject(this.gate.rejection(token))
    }

    const start = this.clock.now()
    const key = peer.toString()
    let state = this.peers.get(key)
    const connected = cm.getConnections(peer).length > 0
    const deadline = this.computeDeadline(peer, state, connected)
    if (state == null) {
      state = new PeerOpens()
      this.peers.set(key, state)
    }
    const open = new PendingOpen(this.settler, peer, key, state, token, start, deadline, connected, callerSignal)
    open.protocol = typeof protocols === 'string' ? protocols : protocols[0] ?? ''
    state.inFlight.push(open.node)

    const promise = new Promise<Stream>((resolve, reject) => {
      open.resolve = resolve
      open.reject = reject
    })
    // a listener removed when the open settles: AbortSignal.any() with Bitswap's long-lived
    // session signal would tie our signal to it for the session's lifetime
    callerSignal?.addEventListener('abort', open)
    open.handle = this.scheduler.schedule(start + deadline, expireOpen, open)
    // an unproven peer holds its first caller (a whole wantlist round) at most firstOpenHold ms
    // per connection, and no later caller at all, while the real open keeps its deadline
    const unproven = connected && state.count === 0 && this.firstOpenHold < deadline
    const holdNone = unproven && state.held
    if (unproven && !state.held) {
      state.held = true
      open.holdHandle = this.scheduler.schedule(start + this.firstOpenHold, deferOpen, open)
    }

    let inner: Promise<Stream>
    try {
      inner = original.call(cm, target, protocols, { ...options, signal: open.controller.signal })
    } catch (err) {
      this.onInnerError(open, err)
      return promise
    }
    // Settled by whichever comes first: the inner open, or our abort (which rejects the caller
    // even if the inner open ignores the signal; measured, mss.select honours it within ~10 ms)
    inner.then((stream) => { this.onInnerStream(open, stream) }, (err) => { this.onInnerError(open, err) })
    if (holdNone) {
      this.defer(open)
    }
    return promise
  }

  private deferredIds = 0

  /** The caller gets a DeferredStream now; it is attached to the real one when the open completes */
  private defer (open: PendingOpen): void {
    if (open.state !== PENDING || open.deferred !== undefined) {
      return
    }
    const deferred = new DeferredStream(`deferred-${++this.deferredIds}`, open.protocol, this.log, this.clock.now(), (err) => {
      this.abortOpen(open, err, Outcome.NEUTRAL)
    })
    open.deferred = deferred
    let handed: Stream = deferred
    try {
      handed = this.gate.deferred?.(open.token as T, open.peer, deferred) ?? deferred
    } catch (err) {
      this.log.error('gate.deferred threw - %e', err)
    }
    this.log.trace('open to %p not done in %d ms: its caller goes on with a deferred stream', open.peer, this.clock.now() - open.start)
    open.resolve(handed)
  }

  private onInnerStream (open: PendingOpen, stream: Stream): void {
    if (open.state !== PENDING) {
      // the caller was released by an abort; nobody will use this stream
      try {
        stream.abort(open.reason ?? new AbortError())
      } catch {
        // already closed: nothing left to clean up
      }
      return
    }
    open.state = SETTLED
    const openMs = this.clock.now() - open.start
    if (open.connected && !open.peerState.detached) {
      // an open that had to dial first says nothing about the connection's open time
      this.deadlines.addSample(open.peerState, openMs)
    }
    this.release(open)
    try {
      this.gate.opened(open.token as T, open.peer, stream, openMs)
    } catch (err) {
      this.log.error('gate.opened threw - %e', err)
    }
    if (open.deferred !== undefined) {
      open.deferred.attach(stream)
    } else {
      open.resolve(stream)
    }
  }

  private onInnerError (open: PendingOpen, err: unknown): void {
    if (open.state !== PENDING) {
      // the echo of our own abort, after the caller was released
      return
    }
    open.state = SETTLED
    const error = err instanceof Error ? err : new Error(String(err))
    const openMs = this.clock.now() - open.start
    this.release(open)
    this.report(open, this.neutral.has(error.name) ? Outcome.NEUTRAL : Outcome.FAILURE, openMs, error)
    open.deferred?.fail(error)
    open.reject(error)
  }

  private abortOpen (open: PendingOpen, reason: Error, outcome: Outcome): boolean {
    if (open.state !== PENDING) {
      return false
    }
    open.state = ABORTED
    open.reason = reason
    const openMs = this.clock.now() - open.start
    this.release(open)
    if (outcome === Outcome.FAILURE) {
      this.log('open to %p missed its %d ms deadline', open.peer, open.deadline)
    }
    // the inner open rejects with `reason` and libp2p aborts the half-negotiated stream
    open.controller.abort(reason)
    this.report(open, outcome, openMs, reason)
    open.deferred?.fail(reason)
    open.reject(reason)
    return true
  }

  private abortAll (state: PeerOpens, reason: Error): number {
    let aborted = 0
    for (const open of state.inFlight) {
      if (this.abortOpen(open, reason, Outcome.NEUTRAL)) {
        aborted++
      }
    }
    return aborted
  }

  private report (open: PendingOpen, outcome: Outcome, openMs: number, err: Error): void {
    try {
      this.gate.failed(open.token as T, open.peer, outcome, openMs, err)
    } catch (e) {
      this.log.error('gate.failed threw - %e', e)
    }
  }

  /** Ends the open's bookkeeping: deadline, caller listener, in-flight list */
  private release (open: PendingOpen): void {
    if (open.handle !== 0) {
      this.scheduler.cancel(open.handle)
      open.handle = 0
    }
    if (open.holdHandle !== 0) {
      this.scheduler.cancel(open.holdHandle)
      open.holdHandle = 0
    }
    open.callerSignal?.removeEventListener('abort', open)
    const state = open.peerState
    state.inFlight.remove(open.node)
    // keep timing, and a spent hold, only for connected peers (dropped on disconnect)
    if (state.inFlight.size === 0 && (state.detached || (!state.known && !state.held)) &&
      this.peers.get(open.key) === state) {
      this.peers.delete(open.key)
    }
  }

  private computeDeadline (peer: PeerId, state: PeerOpens | undefined, connected: boolean): number {
    return this.deadlines.deadline(this.components.connectionManager, peer, state, connected)
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId, connection?: Connection }>): void => {
    const { peerId, connection } = evt.detail
    if (connection == null || this.measured.has(connection)) {
      return
    }
    this.measured.add(connection)
    const opened = connection.timeline?.open
    if (opened == null || !(opened > 0)) {
      return
    }
    const ms = this.clock.now() - opened
    if (ms < 0) {
      return
    }
    const key = peerId.toString()
    let state = this.peers.get(key)
    if (state == null) {
      state = new PeerOpens()
      this.peers.set(key, state)
    }
    state.identifyMs = Math.max(ms, 1)
    state.detached = false
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const key = evt.detail.toString()
    const state = this.peers.get(key)
    if (state == null) {
      return
    }
    if (state.inFlight.size === 0) {
      this.peers.delete(key)
      return
    }
    // opens still in flight keep the entry; it goes when they settle
    state.forget()
    state.detached = true
    state.held = false
  }
}
