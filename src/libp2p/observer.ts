import { FrameDecoder, DEFAULT_MAX_MESSAGE_SIZE } from '../bitswap/frames.ts'
import { WantType } from '../bitswap/message.ts'
import { WantLedger } from '../bitswap/want-ledger.ts'
import { DEFAULT_LEDGER_MAX_PEERS } from '../bitswap/want-ledger-init.ts'
import { InboundLimitError } from '../errors.ts'
import { Outcome } from '../states.ts'
import { checkNumber } from '../validate.ts'
import { InboundLimits, InboundUsage } from './inbound-limits.ts'
import type { InboundLimitsInit } from './inbound-limits.ts'
import type { DeadlineScheduler } from './deadline-scheduler.ts'
import type { AnswerKind, WantOutcomeSink } from '../bitswap/verdicts.ts'
import type { WantLedgerInit } from '../bitswap/want-ledger-init.ts'
import type { Clock } from '../clock.ts'
import type { PeerId, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * Message-level observation of Bitswap streams: what we ask each peer for and what it answers,
 * read off the streams Bitswap itself uses, plus the per-peer inbound abuse guard.
 *
 * - Outbound streams: `send` also feeds our frames to a per-stream `FrameDecoder` and the wants in
 *   them to the `WantLedger`.
 * - Inbound streams: `message` listeners (and async iteration, which uses them) are wrapped, so each
 *   chunk is charged to the peer's byte budget and its frames reach the ledger before the handler
 *   sees them. No listener of our own is ever attached: a passive `message` listener would make the
 *   stream dispatch data the handler has not asked for yet (anchors-libp2p §0.4).
 * - The ledger's verdicts go to the sink: a block or HAVE is a success, a DONT_HAVE neutral (a valid
 *   answer), a want unanswered by the peer's adaptive deadline a failure (`WantDeadlineError`).
 *   One scheduler entry, armed for the ledger's next deadline, drives every miss.
 * - Garbage frames, oversized or malformed messages and byte floods abort the stream and are
 *   reported as abuse; unrequested blocks and presences are reported (once per message) without
 *   aborting, since helia drops them harmlessly.
 *
 * Wrapped streams are Proxies of the real ones (fixtures/README.md (b)): prototype methods run
 * on the real stream, own properties (`log`) are handed out as they are, and sets go to the real
 * stream. All proxies share two handlers and a few forwarders, so a stream costs one Proxy, one
 * observation object and, once data flows, one decoder.
 */

/** What message-level observation concludes about a peer */
export interface ObserverSink {
  /** An answer (SUCCESS or NEUTRAL with its latency) or a miss (FAILURE) */
  verdict(peer: PeerId, outcome: Outcome, latencyMs: number, err?: Error): void
  /** The peer broke the rules: garbage, an oversized message, unrequested data, or an inbound limit */
  abuse(peer: PeerId, reason: AbuseReason, err?: Error): void
}

export type AbuseReason = 'protocol_error' | 'unrequested' | 'inbound_streams' | 'inbound_bytes'

/** A want the peer was asked to answer either way (`sendDontHave`) got no answer before its deadline */
export class WantDeadlineError extends Error {
  static override name = 'WantDeadlineError'
  /** How long the want had waited, ms */
  readonly ageMs: number
  /** The peer's adaptive deadline it missed, ms */
  readonly deadlineMs: number

  constructor (ageMs: number, deadlineMs: number, message = `want unanswered after ${Math.round(ageMs)} ms (deadline ${Math.round(deadlineMs)} ms)`) {
    super(message)
    this.name = 'WantDeadlineError'
    this.ageMs = ageMs
    this.deadlineMs = deadlineMs
  }
}

/**
 * Adaptive want deadlines (see `WantLedgerInit`; `maxPeers` also bounds the observer's own per-peer
 * records) and inbound limits (see `InboundLimitsInit`)
 */
export interface BitswapObserverInit extends WantLedgerInit, InboundLimitsInit {
  /** The time base of every timestamp; the scheduler's clock */
  clock: Clock
  /** The service's shared timer: the observer keeps at most one entry in it */
  scheduler: DeadlineScheduler

  /**
   * Largest Bitswap message (frame body) accepted from a peer, bytes; a larger length prefix is a
   * protocol error
   *
   * @default 4194304 (4 MiB, @helia/bitswap's effective limit)
   */
  maxMessageSize?: number
}

/** Counters since construction */
export interface ObserverStats {
  /** Peers with a record (a wrapped stream, ledger state or byte debt) */
  peers: number
  /** Wants remembered by the ledger, open or ended */
  wants: number
  /** Inbound Bitswap streams open now, across peers */
  inboundStreams: number
  /** Inbound streams aborted for garbage frames, oversized or malformed messages */
  protocolErrors: number
  /** Messages carrying blocks or presences nobody asked that peer for */
  unrequested: number
  /** Inbound streams aborted because their peer was over its byte rate */
  inboundBytesRefused: number
  /** Inbound streams refused because their peer held too many */
  inboundStreamsRefused: number
}

/** A peer's record: its id (the ledger knows only its key) and its inbound usage */
class PeerEntry extends InboundUsage {
  readonly id: PeerId
  readonly key: string
  /** Forgotten (removePeer, eviction, stop): streams still holding it pass data through unobserved */
  removed = false

  constructor (id: PeerId, key: string, tokens: number, now: number) {
    super(tokens, now)
    this.id = id
    this.key = key
  }
}

type Chunk = Uint8Array | Uint8ArrayList
type Listener = EventListenerOrEventListenerObject
type ListenerOptions = boolean | AddEventListenerOptions

/** The observer's state, reached by the stream observations; not exported, so its methods stay internal */
class ObserverCore implements WantOutcomeSink {
  readonly clock: Clock
  readonly maxMessageSize: number
  readonly limits: InboundLimits
  readonly ledger: WantLedger
  readonly stats: Omit<ObserverStats, 'peers' | 'wants'> = {
    inboundStreams: 0, protocolErrors: 0, unrequested: 0, inboundBytesRefused: 0, inboundStreamsRefused: 0
  }

  /** Bumped by stop(): observations made before it pass data through untouched */
  epoch = 0
  /** Insertion order is recency: `entry()` moves a peer to the end, eviction takes from the front */
  readonly peers = new Map<string, PeerEntry>()
  private readonly maxPeers: number
  private readonly scheduler: DeadlineScheduler
  private readonly sink: ObserverSink
  private timer = 0
  private timerAt = Infinity
  private readonly onDeadline = (): void => { this.expire() }
  /** Unrequested items in the message being applied, reported once after it */
  private unrequestedItems = 0

  constructor (init: BitswapObserverInit, sink: ObserverSink) {
    this.clock = init.clock
    this.scheduler = init.scheduler
    this.sink = sink
    this.maxMessageSize = checkNumber('maxMessageSize', init.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE, 1, Infinity, { integer: true })
    this.maxPeers = checkNumber('maxPeers', init.maxPeers ?? DEFAULT_LEDGER_MAX_PEERS, 1, Infinity, { integer: true })
    this.limits = new InboundLimits(init)
    // the same peer bound: the ledger's peers are a subset of ours, so it never evicts on its own
    this.ledger = new WantLedger({ ...init, maxPeers: this.maxPeers }, this)
  }

  // -- peers --

  /** The peer's record, created if needed and marked most recent */
  entry (peer: PeerId): PeerEntry {
    const key = peer.toString()
    let entry = this.peers.get(key)
    if (entry === undefined) {
      if (this.peers.size >= this.maxPeers) {
        this.evictIdle()
      }
      entry = new PeerEntry(peer, key, this.limits.burstBytes, this.clock.now())
    } else {
      this.peers.delete(key)
    }
    this.peers.set(key, entry)
    return entry
  }

  /** Drops the least recent peer without open inbound streams (with none, the bound stretches) */
  private evictIdle (): void {
    for (const entry of this.peers.values()) {
      if (entry.streams === 0) {
        this.forget(entry)
        return
      }
    }
  }

  forget (entry: PeerEntry): void {
    entry.removed = true
    this.peers.delete(entry.key)
    this.ledger.removePeer(entry.key)
  }

  /** After an inbound stream of `entry` closed: drop the record if it holds nothing */
  inboundClosed (entry: PeerEntry): void {
    if (entry.removed || entry.streams > 0 || !this.limits.idle(entry, this.clock.now())) {
      return
    }
    const key = entry.key
    const ledger = this.ledger
    if (ledger.peerWants(key) === 0 && ledger.peerLatency(key, 'block') === undefined && ledger.peerLatency(key, 'presence') === undefined) {
      entry.removed = true
      this.peers.delete(key)
    }
  }

  // -- data --

  /** Our frames to the peer: the wants in them open (or refresh) ledger entries */
  sent (observation: OutboundObservation, data: Chunk): void {
    const entry = observation.entry
    if (observation.broken || entry.removed || observation.epoch !== this.epoch) {
      return
    }
    const decoder = observation.decoder ??= new FrameDecoder({ maxMessageSize: Infinity })
    const now = this.clock.now()
    try {
      decoder.push(data)
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        this.ledger.sentMessage(entry.key, frame, now)
      }
    } catch {
      // our own Bitswap wrote it, so the peer is not to blame: stop reading this stream
      observation.broken = true
      decoder.reset()
    }
    this.arm()
  }

  /** A chunk from the peer; false when the stream was aborted for it and must not be delivered */
  received (observation: InboundObservation, data: Chunk): boolean {
    const entry = observation.entry
    if (entry.removed || observation.epoch !== this.epoch) {
      return true
    }
    const now = this.clock.now()
    if (!this.limits.take(entry, data.byteLength, now)) {
      this.stats.inboundBytesRefused++
      this.refuse(observation, 'inbound_bytes', new InboundLimitError(`over ${this.limits.bytesPerSecond} inbound Bitswap bytes per second`))
      return false
    }
    const decoder = observation.decoder ??= new FrameDecoder({ maxMessageSize: this.maxMessageSize })
    let error: Error | undefined
    this.unrequestedItems = 0
    try {
      decoder.push(data)
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        this.ledger.receivedMessage(entry.key, frame, now)
      }
    } catch (err) {
      error = err as Error
    }
    // a message with unrequested parts counts once, however many it carried
    if (this.unrequestedItems > 0) {
      this.unrequestedItems = 0
      this.stats.unrequested++
      this.report(entry, 'unrequested')
    }
    this.arm()
    if (error !== undefined) {
      this.stats.protocolErrors++
      this.refuse(observation, 'protocol_error', error)
      return false
    }
    return true
  }

  /** Aborts the stream (the handler would drop it anyway) and reports the peer */
  private refuse (observation: InboundObservation, reason: AbuseReason, err: Error): void {
    observation.failed = true
    observation.decoder?.reset()
    observation.stream.abort(err)
    this.report(observation.entry, reason, err)
  }

  private report (entry: PeerEntry, reason: AbuseReason, err?: Error): void {
    try {
      this.sink.abuse(entry.id, reason, err)
    } catch {
      // the sink's failure is its own; the stream's fate is decided
    }
  }

  // -- WantOutcomeSink: the ledger's verdicts --

  answered (peerKey: string, kind: AnswerKind, latencyMs: number): void {
    const entry = this.peers.get(peerKey)
    if (entry !== undefined) {
      // a DONT_HAVE is a valid answer: NEUTRAL counts neither way
      this.sink.verdict(entry.id, kind === 'dont-have' ? Outcome.NEUTRAL : Outcome.SUCCESS, latencyMs)
    }
  }

  missed (peerKey: string, ageMs: number, deadlineMs: number): void {
    const entry = this.peers.get(peerKey)
    if (entry !== undefined) {
      this.sink.verdict(entry.id, Outcome.FAILURE, ageMs, new WantDeadlineError(ageMs, deadlineMs))
    }
  }

  unrequested (): void {
    this.unrequestedItems++
  }

  // -- the one deadline timer --

  /** Arms the scheduler for the ledger's next deadline when it is earlier than the armed one */
  arm (): void {
    const next = this.ledger.nextDeadline
    if (next >= this.timerAt) {
      // later (or none): the armed entry fires early, finds nothing due and re-arms
      return
    }
    if (this.timer !== 0) {
      this.scheduler.cancel(this.timer)
    }
    this.timerAt = next
    this.timer = this.scheduler.schedule(next, this.onDeadline)
  }

  private expire (): void {
    this.timer = 0
    this.timerAt = Infinity
    this.ledger.expire(this.clock.now())
    this.arm()
  }

  stop (): void {
    this.epoch++
    if (this.timer !== 0) {
      this.scheduler.cancel(this.timer)
      this.timer = 0
    }
    this.timerAt = Infinity
    for (const entry of this.peers.values()) {
      entry.removed = true
    }
    this.peers.clear()
    this.ledger.clear()
  }
}

// -- wrapped streams --

/** proxy -> its observation; how the shared handlers and forwarders find the real stream */
const OBSERVED = new WeakMap<object, InboundObservation | OutboundObservation>()

class OutboundObservation {
  readonly stream: Stream
  readonly core: ObserverCore
  readonly entry: PeerEntry
  readonly epoch: number
  decoder: FrameDecoder | undefined
  /** Our own frames did not parse: stop reading them */
  broken = false

  constructor (stream: Stream, core: ObserverCore, entry: PeerEntry) {
    this.stream = stream
    this.core = core
    this.entry = entry
    this.epoch = core.epoch
  }
}

class InboundObservation {
  readonly stream: Stream
  readonly core: ObserverCore
  readonly entry: PeerEntry
  readonly epoch: number
  decoder: FrameDecoder | undefined
  /** We aborted the stream: nothing more is delivered */
  failed = false
  /** Counted in the peer's open streams */
  private open = true
  /** The first `message` listener: this object stands in for it on the real stream (no closure) */
  private first: Listener | undefined
  /** Further `message` listeners and their hooks */
  private hooks: Map<Listener, EventListener> | undefined
  /** The event last observed: every listener of one dispatch gets the same event, observed once */
  private lastEvent: Event | undefined

  constructor (stream: Stream, core: ObserverCore, entry: PeerEntry) {
    this.stream = stream
    this.core = core
    this.entry = entry
    this.epoch = core.epoch
    entry.streams++
    core.stats.inboundStreams++
    stream.addEventListener('close', this, { once: true })
  }

  addListener (type: string, listener: Listener | null, options?: ListenerOptions): void {
    const stream = this.stream as unknown as EventTarget
    if (type !== 'message' || listener == null) {
      stream.addEventListener(type, listener, options)
      return
    }
    if (this.first === undefined || this.first === listener) {
      this.first = listener
      stream.addEventListener('message', this, options)
      return
    }
    let hook = this.hooks?.get(listener)
    if (hook === undefined) {
      hook = (evt: Event): void => {
        if (this.observe(evt)) {
          deliver(listener, stream, evt)
        }
      }
      this.hooks ??= new Map()
      this.hooks.set(listener, hook)
    }
    stream.addEventListener('message', hook, options)
  }

  removeListener (type: string, listener: Listener | null, options?: ListenerOptions): void {
    const stream = this.stream as unknown as EventTarget
    if (type === 'message' && listener != null) {
      if (listener === this.first) {
        stream.removeEventListener('message', this, options)
        return
      }
      const hook = this.hooks?.get(listener)
      if (hook !== undefined) {
        stream.removeEventListener('message', hook, options)
        return
      }
    }
    stream.removeEventListener(type, listener, options)
  }

  /** The real stream's `message` (standing in for the first listener) and `close` events */
  handleEvent (evt: Event): void {
    if (evt.type === 'message') {
      const first = this.first
      if (first !== undefined && this.observe(evt)) {
        deliver(first, this.stream as unknown as EventTarget, evt)
      }
      return
    }
    if (evt.type === 'close' && this.open) {
      this.closed(evt as StreamCloseEvent)
    }
  }

  /** Observes a dispatch once; false when it must not reach the handler (the stream was aborted) */
  private observe (evt: Event): boolean {
    if (evt !== this.lastEvent) {
      this.lastEvent = evt
      if (!this.failed) {
        return this.core.received(this, (evt as StreamMessageEvent).data)
      }
    }
    return !this.failed
  }

  /**
   * A stream ending inside a frame is not reported: nothing of that frame reached the ledger, and a
   * reset is the service's to count
   */
  private closed (_evt: StreamCloseEvent): void {
    this.open = false
    this.entry.streams--
    this.core.stats.inboundStreams--
    this.decoder = undefined
    this.lastEvent = undefined
    this.core.inboundClosed(this.entry)
  }
}

function deliver (listener: Listener, target: EventTarget, evt: Event): void {
  if (typeof listener === 'function') {
    listener.call(target, evt)
  } else {
    listener.handleEvent(evt)
  }
}

function observed (proxy: unknown): InboundObservation | OutboundObservation {
  const observation = OBSERVED.get(proxy as object)
  if (observation === undefined) {
    throw new TypeError('Illegal invocation')
  }
  return observation
}

// The overriding methods, shared by every proxy: `this` is the proxy the method was called on

function outboundSend (this: unknown, data: Chunk): boolean {
  const observation = observed(this) as OutboundObservation
  // send first: if it throws (stream closed) nothing was asked
  const accepted = observation.stream.send(data)
  observation.core.sent(observation, data)
  return accepted
}

function inboundAddEventListener (this: unknown, type: string, listener: Listener | null, options?: ListenerOptions): void {
  (observed(this) as InboundObservation).addListener(type, listener, options)
}

function inboundRemoveEventListener (this: unknown, type: string, listener: Listener | null, options?: ListenerOptions): void {
  (observed(this) as InboundObservation).removeListener(type, listener, options)
}

/**
 * Runs the real stream's iterator on the proxy, so its `message` listener goes through ours.
 * libp2p's `AbstractMessageStream` iterator uses only public members, which the proxy forwards.
 */
function inboundIterator (this: unknown): AsyncIterator<Chunk> {
  const observation = observed(this)
  return Reflect.apply(observation.stream[Symbol.asyncIterator], this, []) as AsyncIterator<Chunk>
}

/**
 * Prototype methods must run on the real stream (its `#private` fields reject a Proxy as `this`).
 * One forwarder per distinct method, shared by every proxy, instead of a bound copy per stream;
 * weakly held, so even a getter that made a new function per read could not grow it.
 */
const forwarders = new WeakMap<(...args: unknown[]) => unknown, (...args: unknown[]) => unknown>()

function forwarder (fn: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
  let forward = forwarders.get(fn)
  if (forward === undefined) {
    forward = function (this: unknown, ...args: unknown[]): unknown {
      const observation = OBSERVED.get(this as object)
      return Reflect.apply(fn, observation === undefined ? this : observation.stream, args)
    }
    forwarders.set(fn, forward)
  }
  return forward
}

function forwardGet (target: Stream, prop: string | symbol): unknown {
  const value: unknown = Reflect.get(target, prop, target)
  // own function-valued properties (the callable `log` with .trace/.error) are handed out as they are
  return typeof value === 'function' && !Object.hasOwn(target, prop) ? forwarder(value as (...args: unknown[]) => unknown) : value
}

/** Setters run on the real stream */
function setOnTarget (target: Stream, prop: string | symbol, value: unknown): boolean {
  return Reflect.set(target, prop, value)
}

const outboundHandler: ProxyHandler<Stream> = {
  get (target, prop) {
    return prop === 'send' ? outboundSend : forwardGet(target, prop)
  },
  set: setOnTarget
}

const inboundHandler: ProxyHandler<Stream> = {
  get (target, prop) {
    switch (prop) {
      case 'addEventListener':
        return inboundAddEventListener
      case 'removeEventListener':
        return inboundRemoveEventListener
      case Symbol.asyncIterator:
        return inboundIterator
      default:
        return forwardGet(target, prop)
    }
  },
  set: setOnTarget
}

/**
 * Message-level observation of Bitswap streams and the inbound abuse guard, for one libp2p node.
 */
export class BitswapObserver {
  private readonly core: ObserverCore

  constructor (init: BitswapObserverInit, sink: ObserverSink) {
    this.core = new ObserverCore(init, sink)
  }

  /**
   * May this peer open another inbound Bitswap stream? False when it already holds
   * `maxInboundStreamsPerPeer` (the caller refuses the stream and reports it).
   */
  admitInbound (peer: PeerId): boolean {
    const entry = this.core.peers.get(peer.toString())
    if (entry === undefined || this.core.limits.canOpen(entry)) {
      return true
    }
    this.core.stats.inboundStreamsRefused++
    return false
  }

  /**
   * The stream to hand to the Bitswap handler in place of `stream`: its chunks are checked and
   * observed before the handler's `message` listeners see them. Counts against the peer's open
   * inbound streams until it closes. A stream already over is returned as it is.
   */
  wrapInbound (stream: Stream, peer: PeerId): Stream {
    if (stream.status !== 'open') {
      return stream
    }
    const core = this.core
    const proxy = new Proxy(stream, inboundHandler)
    OBSERVED.set(proxy, new InboundObservation(stream, core, core.entry(peer)))
    return proxy
  }

  /** The stream to hand to Bitswap in place of `stream`: the wants it sends are recorded */
  wrapOutbound (stream: Stream, peer: PeerId): Stream {
    const core = this.core
    const proxy = new Proxy(stream, outboundHandler)
    OBSERVED.set(proxy, new OutboundObservation(stream, core, core.entry(peer)))
    return proxy
  }

  /** The peer's current want-block deadline (ms): adaptive once it has answered, cautious before */
  deadlineFor (peer: PeerId): number {
    return this.core.ledger.peerDeadline(peer.toString(), WantType.Block)
  }

  /** The peer's want-to-block latency EWMA (ms), or undefined before its first block */
  latencyFor (peer: PeerId): number | undefined {
    return this.core.ledger.peerLatency(peer.toString(), 'block')
  }

  /** Inbound Bitswap streams the peer holds open now */
  inboundStreams (peer: PeerId): number {
    return this.core.peers.get(peer.toString())?.streams ?? 0
  }

  /** Counters and sizes, for status and metrics */
  get stats (): ObserverStats {
    const core = this.core
    return { ...core.stats, peers: core.peers.size, wants: core.ledger.size }
  }

  /**
   * Forgets a peer (it disconnected): its wants end without verdict, its latency history and byte
   * debt are dropped, and streams still open from it pass through unobserved
   */
  removePeer (peer: PeerId): void {
    const core = this.core
    const key = peer.toString()
    const entry = core.peers.get(key)
    if (entry !== undefined) {
      core.forget(entry)
    } else {
      core.ledger.removePeer(key)
    }
  }

  /** Cancels the deadline timer and forgets everything; streams wrapped so far pass through */
  stop (): void {
    this.core.stop()
  }
}
