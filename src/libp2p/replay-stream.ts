import { StreamCloseEvent, StreamMessageEvent, StreamStateError, TypedEventEmitter } from '@libp2p/interface'
import type { AbortOptions, EventHandler, Logger, MessageStreamEvents, MessageStreamReadStatus, MessageStreamStatus, MessageStreamTimeline, MessageStreamWriteStatus, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * An in-memory inbound Stream that carries one chunk of bytes from a remote that then closes its
 * write side, for handing a message to a protocol handler as if the remote had sent it.
 *
 * It behaves like a libp2p v3 stream whose remote wrote `data` and closed: the bytes are delivered
 * once somebody reads (the first `message` listener, or async iteration), never before, because a
 * handler may attach its listener late (@helia/bitswap first awaits `close()`), followed by
 * `remoteCloseWrite`, and `close` once both sides are closed. The remote never reads, so `send`
 * throws `StreamStateError`. `consumed` tells whether a handler actually read the bytes.
 */
export class ReplayStream extends TypedEventEmitter<MessageStreamEvents> implements Stream {
  readonly id: string
  protocol: string
  readonly direction = 'inbound' as const
  readonly log: Logger
  readonly timeline: MessageStreamTimeline
  status: MessageStreamStatus = 'open'
  readStatus: MessageStreamReadStatus = 'readable'
  writeStatus: MessageStreamWriteStatus = 'writable'
  remoteReadStatus: MessageStreamReadStatus = 'closed'
  remoteWriteStatus: MessageStreamWriteStatus = 'writable'
  maxReadBufferLength = Infinity
  maxWriteBufferLength = 0
  inactivityTimeout = 0
  writableNeedsDrain = false
  /** A reader took the bytes */
  consumed = false

  private data: Array<Uint8Array | Uint8ArrayList>
  private paused = false
  private scheduled = false
  private readonly now: () => number

  constructor (id: string, protocol: string, data: Uint8Array, log: Logger, now: () => number = Date.now) {
    super()
    this.id = id
    this.protocol = protocol
    this.log = log
    this.now = now
    this.data = [data]
    this.timeline = { open: now() }
  }

  get readableEnded (): boolean {
    return this.remoteWriteStatus === 'closed' && this.data.length === 0
  }

  get readBufferLength (): number {
    let length = 0
    for (const chunk of this.data) {
      length += chunk.byteLength
    }
    return length
  }

  get writeBufferLength (): number {
    return 0
  }

  override addEventListener (type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void {
    super.addEventListener(type as keyof MessageStreamEvents, listener as EventHandler<Event>, options)
    if (type === 'message' && listener != null) {
      this.scheduleDelivery()
    }
  }

  send (_data: Uint8Array | Uint8ArrayList): boolean {
    throw new StreamStateError('the remote end of this stream does not read')
  }

  async onDrain (_options?: AbortOptions): Promise<void> {}

  async close (options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    if (this.writeStatus === 'closed') {
      return
    }
    this.writeStatus = 'closed'
    this.maybeFinish()
  }

  async closeRead (options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    // nothing more will be read: what the remote sent is dropped, as a real stream does
    this.data = []
    this.remoteClosed()
  }

  abort (err: Error): void {
    if (this.status !== 'open') {
      return
    }
    this.data = []
    this.status = 'aborted'
    this.readStatus = this.writeStatus = 'closed'
    this.timeline.close = this.now()
    this.dispatchEvent(new StreamCloseEvent(true, err))
  }

  pause (): void {
    this.paused = true
  }

  resume (): void {
    this.paused = false
    this.scheduleDelivery()
  }

  push (data: Uint8Array | Uint8ArrayList): void {
    this.data.push(data)
    this.scheduleDelivery()
  }

  unshift (data: Uint8Array | Uint8ArrayList): void {
    this.data.unshift(data)
    this.scheduleDelivery()
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array | Uint8ArrayList> {
    while (this.status === 'open' && this.readStatus !== 'closed') {
      const chunk = this.data.shift()
      if (chunk === undefined) {
        break
      }
      this.consumed = true
      yield chunk
    }
    this.remoteClosed()
  }

  /** Later, not now: the listener being added may not be the last the handler adds */
  private scheduleDelivery (): void {
    if (this.scheduled || this.status !== 'open') {
      return
    }
    this.scheduled = true
    queueMicrotask(() => {
      this.scheduled = false
      this.deliver()
    })
  }

  private deliver (): void {
    if (this.status !== 'open' || this.paused || this.listenerCount('message') === 0) {
      return
    }
    while (this.data.length > 0 && this.readStatus !== 'closed' && !this.paused) {
      const chunk = this.data.shift() as Uint8Array | Uint8ArrayList
      this.consumed = true
      this.dispatchEvent(new StreamMessageEvent(chunk))
    }
    if (this.data.length === 0) {
      this.remoteClosed()
    }
  }

  private remoteClosed (): void {
    if (this.remoteWriteStatus === 'closed' || this.status !== 'open') {
      return
    }
    this.remoteWriteStatus = 'closed'
    this.readStatus = 'closed'
    this.safeDispatchEvent('remoteCloseWrite')
    this.maybeFinish()
  }

  /** Both sides closed: the stream is over */
  private maybeFinish (): void {
    if (this.status !== 'open' || this.writeStatus !== 'closed' || this.remoteWriteStatus !== 'closed') {
      return
    }
    this.status = 'closed'
    this.timeline.close = this.now()
    this.dispatchEvent(new StreamCloseEvent())
  }
}
