import { unpinned } from '../bitswap/frames.ts'
import type { FrameDecoder } from '../bitswap/frames.ts'
import type { ObserverCore, PeerEntry } from './observer-core.ts'
import type { Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * The streams Bitswap is handed in place of the real ones: Proxies whose chunks reach the observer
 * core before the handler, or whose sends it reads. Prototype methods run on the real stream (its
 * `#private` fields reject a Proxy as `this`), own properties (`log`) are handed out as they are,
 * and sets go to the real stream. All proxies share two handlers and a few forwarders, so a stream
 * costs one Proxy, one observation object and, once data flows, one decoder.
 */

export type Chunk = Uint8Array | Uint8ArrayList
type Listener = EventListenerOrEventListenerObject
type ListenerOptions = boolean | AddEventListenerOptions

/** proxy -> its observation; how the shared handlers and forwarders find the real stream */
const OBSERVED = new WeakMap<object, InboundObservation | OutboundObservation>()

export class OutboundObservation {
  readonly stream: Stream
  readonly core: ObserverCore
  readonly entry: PeerEntry
  readonly epoch: number
  /** The connection's RTT when the stream opened, ms (0: unknown), for the peer's cold deadline */
  readonly rttMs: number
  decoder: FrameDecoder | undefined
  /** Our own frames did not parse: stop reading them */
  broken = false
  /** The ledger generations of the messages it carried (0: none yet), to release them if it fails */
  firstGeneration = 0
  lastGeneration = 0

  constructor (stream: Stream, core: ObserverCore, entry: PeerEntry, rttMs: number) {
    this.stream = stream
    this.core = core
    this.entry = entry
    this.epoch = core.epoch
    this.rttMs = rttMs
  }

  /** Its first message was recorded: from now on its failure matters (this object is the listener) */
  carried (generation: number): void {
    if (this.firstGeneration === 0) {
      this.firstGeneration = generation
      this.stream.addEventListener('close', this, { once: true })
    }
    this.lastGeneration = generation
  }

  /** The stream ended: reset or aborted, the peer may never have read the wants it carried */
  handleEvent (evt: Event): void {
    if ((evt as StreamCloseEvent).error != null) {
      this.core.outboundFailed(this)
    }
  }
}

export class InboundObservation {
  readonly stream: Stream
  readonly core: ObserverCore
  readonly entry: PeerEntry
  readonly epoch: number
  decoder: FrameDecoder | undefined
  /** Bytes of its partial frame counted in the shared budget */
  held = 0
  /** Bytes that frame will take once whole, counted in its peer's share */
  announced = 0
  /** We aborted the stream: nothing more is delivered */
  failed = false
  /** Counted in the peer's open streams */
  private open = true
  /** The first `message` listener: this object stands in for it on the real stream (no closure) */
  private first: Listener | undefined
  /** Further `message` listeners and their hooks */
  private hooks: Map<Listener, EventListener> | undefined
  /** `remoteCloseWrite` listeners and the hooks that hold the event back until buffered data is read */
  private closeHooks: Map<Listener, EventListener> | undefined
  /** The event last observed: every listener of one dispatch gets the same event, observed once */
  private lastEvent: Event | undefined

  constructor (stream: Stream, core: ObserverCore, entry: PeerEntry) {
    this.stream = stream
    this.core = core
    this.entry = entry
    this.epoch = core.epoch
    core.inboundOpened(entry)
    stream.addEventListener('close', this, { once: true })
  }

  addListener (type: string, listener: Listener | null, options?: ListenerOptions): void {
    const stream = this.stream as unknown as EventTarget
    if (type === 'remoteCloseWrite' && listener != null) {
      stream.addEventListener(type, this.afterBufferedData(listener), options)
      return
    }
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

  /**
   * libp2p 3.3.11 dispatches `remoteCloseWrite` while bytes the remote sent before closing still sit
   * in the read buffer (they go out in a microtask once a `message` listener is added). Bitswap
   * ends its input on that event, so the last message was lost whenever the remote's FIN landed in
   * between: a session's first block never arrived once any middleware delayed its handler. The
   * event reaches the listener after the buffered data instead, on the stream's `end`.
   */
  private afterBufferedData (listener: Listener): EventListener {
    let hook = this.closeHooks?.get(listener)
    if (hook === undefined) {
      const stream = this.stream
      hook = (evt: Event): void => {
        if (stream.readBufferLength > 0 && stream.status !== 'aborted' && stream.status !== 'reset') {
          stream.addEventListener('end', () => { deliver(listener, stream as unknown as EventTarget, evt) }, { once: true })
        } else {
          deliver(listener, stream as unknown as EventTarget, evt)
        }
      }
      this.closeHooks ??= new Map()
      this.closeHooks.set(listener, hook)
    }
    return hook
  }

  removeListener (type: string, listener: Listener | null, options?: ListenerOptions): void {
    const stream = this.stream as unknown as EventTarget
    if (type === 'remoteCloseWrite' && listener != null) {
      stream.removeEventListener(type, this.closeHooks?.get(listener) ?? listener, options)
      return
    }
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
        const message = evt as StreamMessageEvent
        // before Bitswap's decoder and ours keep it: a partial frame must not pin more than it counts
        message.data = unpinned(message.data)
        return this.core.received(this, message.data)
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
    this.core.release(this)
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
  let accepted: boolean
  try {
    accepted = observation.stream.send(data)
  } catch (err) {
    // nothing was asked, yet Bitswap carries on as if it had been (it only aborts the stream)
    observation.core.sent(observation, data, true)
    throw err
  }
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

/** The stream to hand to Bitswap in place of an inbound `stream`: its chunks go through `core` first */
export function observeInbound (stream: Stream, core: ObserverCore, entry: PeerEntry): Stream {
  const proxy = new Proxy(stream, inboundHandler)
  OBSERVED.set(proxy, new InboundObservation(stream, core, entry))
  return proxy
}

/** The stream to hand to Bitswap in place of an outbound `stream`: what it sends is read by `core` */
export function observeOutbound (stream: Stream, core: ObserverCore, entry: PeerEntry, rttMs: number): Stream {
  const proxy = new Proxy(stream, outboundHandler)
  OBSERVED.set(proxy, new OutboundObservation(stream, core, entry, rttMs))
  return proxy
}
