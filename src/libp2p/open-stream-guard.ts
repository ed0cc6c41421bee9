import { AbortError, isPeerId } from '@libp2p/interface'
import { ClosedError, InvalidConfigError, OpenStreamDeadlineError } from '../errors.ts'
import { Outcome } from '../states.ts'
import { resolveOpenStreamConfig } from './config.ts'
import { DEFAULT_BITSWAP_PROTOCOLS } from './constants.ts'
import { DeadlineScheduler } from './deadline-scheduler.ts'
import { patchMethod } from './patch.ts'
import type { MethodPatch } from './patch.ts'
import type { Clock } from '../clock.ts'
import type { ComponentLogger, Connection, DialTarget, Libp2pEvents, Logger, NewStreamOptions, PeerId, Stream, TypedEventTarget } from '@libp2p/interface'
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
 * The design and its numbers: research/openstream-deadline.md ("adaptive+identify").
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

export interface OpenStreamGate {
  /** token > 0: admitted; 0 (UNTRACKED): let it through, still timed; < 0: rejected (REJECT_*) */
  admit(peer: PeerId): number
  /** The error to throw for a rejection code */
  rejection(code: number): Error
  /** The open succeeded; the gate tracks the stream's life from here */
  opened(token: number, peer: PeerId, stream: Stream, openMs: number): void
  /** The open failed or was aborted */
  failed(token: number, peer: PeerId, outcome: Outcome, openMs: number, err: Error): void
}

export interface OpenStreamGuardComponents {
  connectionManager: ConnectionManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/** Error names from the inner open that do not count against the peer */
export const DEFAULT_NEUTRAL_OPEN_ERRORS: readonly string[] = [
  // someone else's abort (shutdown, a signal inside libp2p)
  'AbortError',
  // the peer does not speak Bitswap: not a health problem
  'UnsupportedProtocolError',
  // our own decisions and limits
  'DialDeniedError',
  'CircuitOpenError',
  'TooManyRequestsError',
  'RecoveryThrottledError',
  'TooManyOutboundProtocolStreamsError',
  'LimitedConnectionError',
  'NotStartedError',
  'InvalidParametersError',
  // we know no address for the peer: a routing problem, not the peer's
  'NoValidAddressesError'
]

export interface OpenStreamGuardInit {
  /**
   * Protocols whose opens are guarded
   *
   * @default ['/ipfs/bitswap/1.2.0', '/ipfs/bitswap/1.1.0', '/ipfs/bitswap/1.0.0', '/ipfs/bitswap']
   */
  protocols?: readonly string[]

  /**
   * Deadline (ms) for a peer with no samples, no identify time and no RTT
   *
   * @default 1000
   */
  coldDeadline?: number

  /**
   * Before any sample, the deadline is this × the time identify took on the peer's connection
   * (identify finished − `connection.timeline.open`: transport, security, muxer and one identify
   * round trip), or else × `connection.rtt`
   *
   * @default 4
   */
  coldMultiplier?: number

  /**
   * Once the peer has `minSamples` successful opens, the deadline is this × their median
   *
   * @default 4
   */
  sampleMultiplier?: number

  /**
   * Successful opens needed before the samples decide the deadline
   *
   * @default 3
   */
  minSamples?: number

  /**
   * How many recent open times are kept per connected peer (the median is taken over them); at
   * least `minSamples`
   *
   * @default max(8, minSamples)
   */
  sampleWindow?: number

  /**
   * Lower clamp (ms). Open times measured in-process include event-loop lag; 250 ms left a healthy
   * peer ≥ 2.3× headroom under load in the experiment, 100 ms only ~1.5×.
   *
   * @default 250
   */
  minDeadline?: number

  /**
   * Upper clamp (ms); at least `minDeadline`
   *
   * @default max(2000, minDeadline)
   */
  maxDeadline?: number

  /**
   * A peer with no open connection must be dialled first: its deadline is at least this (ms),
   * applied after the clamp
   *
   * @default 2000
   */
  unconnectedFloor?: number

  /**
   * Names of inner-open errors that are reported as NEUTRAL rather than FAILURE
   *
   * @default DEFAULT_NEUTRAL_OPEN_ERRORS
   */
  neutralErrors?: readonly string[]

  /**
   * Share one timer with other deadline users. The guard never stops a scheduler it was given.
   *
   * @default a scheduler of its own
   */
  scheduler?: DeadlineScheduler

  /**
   * Time source for open times and deadlines, used only when no `scheduler` is given (a given
   * scheduler's clock is used). Identify time is measured against `connection.timeline.open`,
   * which libp2p takes from `Date.now()`.
   *
   * @default `Date.now`
   */
  clock?: Clock
}

type OpenStreamOptions = OpenConnectionOptions & NewStreamOptions
type OpenStreamFn = ConnectionManager['openStream']

const CODE_P2P = 421
const PENDING = 0
const SETTLED = 1
/** The caller has been released by an abort; whatever the inner open does now is cleaned up */
const ABORTED = 2

/** What a connected peer's timing looks like, plus its in-flight guarded opens */
class PeerState {
  /** identify finished − connection open, ms (0: unknown) */
  identifyMs = 0
  samples: Float64Array | undefined
  count = 0
  next = 0
  /** sampleMultiplier × median, unclamped (0: not enough samples) */
  sampleDeadline = 0
  head: PendingOpen | undefined
  pending = 0
  /** The peer disconnected while opens were in flight: forget it once they settle */
  detached = false
}

interface OpenSettler {
  abortOpen(open: PendingOpen, reason: Error, outcome: Outcome): boolean
}

/** One guarded open. It is also the listener on the caller's signal (no closure per open). */
class PendingOpen {
  readonly controller = new AbortController()
  state = PENDING
  handle = 0
  reason: Error | undefined
  resolve!: (stream: Stream) => void
  reject!: (err: Error) => void
  prev: PendingOpen | undefined
  next: PendingOpen | undefined

  constructor (
    readonly settler: OpenSettler,
    readonly peer: PeerId,
    readonly key: string,
    readonly peerState: PeerState,
    readonly token: number,
    readonly start: number,
    readonly deadline: number,
    readonly connected: boolean,
    readonly callerSignal: AbortSignal | undefined
  ) {}

  /** The caller's signal fired */
  handleEvent (): void {
    const reason = this.callerSignal?.reason
    this.settler.abortOpen(this, reason instanceof Error ? reason : new AbortError(), Outcome.NEUTRAL)
  }
}

function expireOpen (open: PendingOpen): void {
  open.handle = 0
  open.settler.abortOpen(open, new OpenStreamDeadlineError(`opening a stream to ${open.key} took longer than ${open.deadline} ms`), Outcome.FAILURE)
}

export class OpenStreamGuard {
  private readonly components: OpenStreamGuardComponents
  private readonly gate: OpenStreamGate
  private readonly log: Logger
  private readonly protocols: Set<string>
  private readonly neutral: Set<string>
  private readonly clock: Clock
  private readonly scheduler: DeadlineScheduler
  private readonly ownsScheduler: boolean
  private readonly coldDeadline: number
  private readonly coldMultiplier: number
  private readonly sampleMultiplier: number
  private readonly minSamples: number
  private readonly window: number
  private readonly minDeadline: number
  private readonly maxDeadline: number
  private readonly unconnectedFloor: number
  private readonly peers = new Map<string, PeerState>()
  /** Connections whose identify time was taken (identify push dispatches `peer:identify` again) */
  private measured = new WeakSet<Connection>()
  /** Scratch space for the median */
  private readonly scratch: Float64Array
  private readonly settler: OpenSettler
  private patch: MethodPatch<OpenStreamFn> | undefined

  constructor (components: OpenStreamGuardComponents, gate: OpenStreamGate, init: OpenStreamGuardInit = {}) {
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
    this.coldDeadline = config.coldDeadline
    this.coldMultiplier = config.coldMultiplier
    this.sampleMultiplier = config.sampleMultiplier
    this.window = config.sampleWindow
    this.minSamples = config.minSamples
    this.minDeadline = config.minDeadline
    this.maxDeadline = config.maxDeadline
    this.unconnectedFloor = config.unconnectedFloor
    this.ownsScheduler = init.scheduler == null
    this.scheduler = init.scheduler ?? new DeadlineScheduler({ clock: init.clock })
    // deadlines are absolute times in the scheduler's time base
    this.clock = this.scheduler.clock
    this.scratch = new Float64Array(this.window)
    this.settler = { abortOpen: (open, reason, outcome) => this.abortOpen(open, reason, outcome) }
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
    return this.peers.get(peer.toString())?.pending ?? 0
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
    if (token < 0) {
      return Promise.reject(this.gate.rejection(token))
    }

    const start = this.clock.now()
    const key = peer.toString()
    let state = this.peers.get(key)
    const connected = cm.getConnections(peer).length > 0
    const deadline = this.computeDeadline(peer, state, connected)
    if (state == null) {
      state = new PeerState()
      this.peers.set(key, state)
    }
    const open = new PendingOpen(this.settler, peer, key, state, token, start, deadline, connected, callerSignal)
    open.next = state.head
    if (state.head != null) {
      state.head.prev = open
    }
    state.head = open
    state.pending++

    const promise = new Promise<Stream>((resolve, reject) => {
      open.resolve = resolve
      open.reject = reject
    })
    // a listener removed when the open settles: AbortSignal.any() with Bitswap's long-lived
    // session signal would tie our signal to it for the session's lifetime
    callerSignal?.addEventListener('abort', open)
    open.handle = this.scheduler.schedule(start + deadline, expireOpen, open)

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
    return promise
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
      this.addSample(open.peerState, openMs)
    }
    this.release(open)
    try {
      this.gate.opened(open.token, open.peer, stream, openMs)
    } catch (err) {
      this.log.error('gate.opened threw - %e', err)
    }
    open.resolve(stream)
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
    open.reject(reason)
    return true
  }

  private abortAll (state: PeerState, reason: Error): number {
    let aborted = 0
    let open = state.head
    while (open != null) {
      const next = open.next
      if (this.abortOpen(open, reason, Outcome.NEUTRAL)) {
        aborted++
      }
      open = next
    }
    return aborted
  }

  private report (open: PendingOpen, outcome: Outcome, openMs: number, err: Error): void {
    try {
      this.gate.failed(open.token, open.peer, outcome, openMs, err)
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
    open.callerSignal?.removeEventListener('abort', open)
    const state = open.peerState
    if (open.prev != null) {
      open.prev.next = open.next
    } else {
      state.head = open.next
    }
    if (open.next != null) {
      open.next.prev = open.prev
    }
    open.prev = open.next = undefined
    state.pending--
    // keep timing only for connected peers (dropped on disconnect)
    if (state.pending === 0 && (state.detached || (state.identifyMs === 0 && state.count === 0)) &&
      this.peers.get(open.key) === state) {
      this.peers.delete(open.key)
    }
  }

  private computeDeadline (peer: PeerId, state: PeerState | undefined, connected: boolean): number {
    let deadline: number
    if (state != null && state.sampleDeadline > 0) {
      deadline = state.sampleDeadline
    } else if (state != null && state.identifyMs > 0) {
      deadline = this.coldMultiplier * state.identifyMs
    } else {
      deadline = this.coldDeadline
      const connections = this.components.connectionManager.getConnections(peer)
      for (let i = 0; i < connections.length; i++) {
        const rtt = connections[i].rtt
        if (rtt != null && rtt > 0) {
          deadline = this.coldMultiplier * rtt
          break
        }
      }
    }
    deadline = Math.min(Math.max(deadline, this.minDeadline), this.maxDeadline)
    return connected ? deadline : Math.max(deadline, this.unconnectedFloor)
  }

  private addSample (state: PeerState, ms: number): void {
    const window = this.window
    if (state.samples == null) {
      state.samples = new Float64Array(window)
    }
    state.samples[state.next] = ms
    state.next = (state.next + 1) % window
    if (state.count < window) {
      state.count++
    }
    if (state.count >= this.minSamples) {
      state.sampleDeadline = this.sampleMultiplier * this.median(state.samples, state.count)
    }
  }

  /** Median of the first n values, by insertion sort into scratch space (n is small) */
  private median (values: Float64Array, n: number): number {
    const s = this.scratch
    for (let i = 0; i < n; i++) {
      const v = values[i]
      let j = i - 1
      while (j >= 0 && s[j] > v) {
        s[j + 1] = s[j]
        j--
      }
      s[j + 1] = v
    }
    return (n & 1) === 1 ? s[n >> 1] : (s[(n >> 1) - 1] + s[n >> 1]) / 2
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
      state = new PeerState()
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
    if (state.pending === 0) {
      this.peers.delete(key)
      return
    }
    // opens still in flight keep the entry; it goes when they settle
    state.identifyMs = 0
    state.samples = undefined
    state.count = 0
    state.next = 0
    state.sampleDeadline = 0
    state.detached = true
  }
}
