import { StreamCloseEvent, StreamMessageEvent, StreamStateError, TypedEventEmitter } from '@libp2p/interface'
import type { AbortOptions, EventHandler, Logger, MessageStreamEvents, MessageStreamReadStatus, MessageStreamStatus, MessageStreamTimeline, MessageStreamWriteStatus, Stream, StreamCloseEvent as CloseEvent } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

type Chunk = Uint8Array | Uint8ArrayList

/**
 * The stream an unproven peer's caller gets while the real open is still under way
 * (open-stream-guard.ts): Helia's wantlist round awaits every peer's send, so a peer whose opens
 * hang (blackholed) would hold every want of the round until its open deadline.
 *
 * Until `attach(real)` it buffers what the caller does the way Bitswap's sender uses a stream:
 * `closeRead`, `send` (accepted, never backpressured), `close` (resolves at once). On `attach` it
 * replays them on the real stream, in order, and from then on forwards everything and re-dispatches
 * the real stream's `close` and `message` events. `fail(err)` (the open missed its deadline or was
 * refused) ends it with a `close` event carrying `err`, which tells the observer that the wants it
 * carried never reached the peer.
 */
export class DeferredStream extends TypedEventEmitter<MessageStreamEvents> implements Stream {
  readonly id: string
  readonly protocol: string
  readonly direction = 'outbound' as const
  readonly log: Logger
  readonly timeline: MessageStreamTimeline
  maxReadBufferLength = Infinity
  maxWriteBufferLength?: number
  inactivityTimeout = 0

  private real: Stream | undefined
  private queued: Chunk[] = []
  private queuedBytes = 0
  private readRequested = false
  private closeRequested = false
  private ended: MessageStreamStatus | undefined
  private readonly onAbort: (err: Error) => void
  private readonly forward = (evt: Event): void => {
    if (evt.type === 'close') {
      const { local, error } = evt as CloseEvent
      this.dispatchEvent(new StreamCloseEvent(local, error))
    } else {
      this.dispatchEvent(new StreamMessageEvent((evt as StreamMessageEvent).data))
    }
  }

  /** `onAbort`: the caller aborted before the real stream came: the guard cancels the open */
  constructor (id: string, protocol: string, log: Logger, now: number, onAbort: (err: Error) => void) {
    super()
    this.id = id
    this.protocol = protocol
    this.log = log
    this.timeline = { open: now }
    this.onAbort = onAbort
  }

  /** The real stream is open: replay what was asked of us, then forward */
  attach (real: Stream): void {
    if (this.real !== undefined || this.ended !== undefined) {
      return
    }
    this.real = real
    real.addEventListener('close', this.forward, { once: true })
    real.addEventListener('message', this.forward)
    if (this.readRequested) {
      real.closeRead().catch(() => {})
    }
    try {
      for (const chunk of this.queued) {
        real.send(chunk)
      }
    } catch (err) {
      real.abort(err as Error)
    }
    this.queued = []
    this.queuedBytes = 0
    if (this.closeRequested) {
      real.close().catch((err: Error) => { real.abort(err) })
    }
    if (real.status !== 'open' && real.status !== 'closing') {
      // it ended before we listened: no close event will come
      this.dispatchEvent(new StreamCloseEvent(false, real.status === 'closed' ? undefined : new StreamStateError(`the stream was ${real.status}`)))
    }
  }

  /** The open failed: the stream ends with `err`, its writes never sent */
  fail (err: Error, local = false): void {
    if (this.real !== undefined || this.ended !== undefined) {
      return
    }
    this.ended = local ? 'aborted' : 'reset'
    this.queued = []
    this.queuedBytes = 0
    this.timeline.close = Date.now()
    this.dispatchEvent(new StreamCloseEvent(local, err))
  }

  get status (): MessageStreamStatus {
    return this.real?.status ?? this.ended ?? 'open'
  }

  get readStatus (): MessageStreamReadStatus {
    return this.real?.readStatus ?? (this.readRequested || this.ended !== undefined ? 'closed' : 'readable')
  }

  get writeStatus (): MessageStreamWriteStatus {
    return this.real?.writeStatus ?? (this.closeRequested || this.ended !== undefined ? 'closed' : 'writable')
  }

  get remoteReadStatus (): MessageStreamReadStatus {
    return this.real?.remoteReadStatus ?? 'readable'
  }

  get remoteWriteStatus (): MessageStreamWriteStatus {
    return this.real?.remoteWriteStatus ?? 'writable'
  }

  get writableNeedsDrain (): boolean {
    return this.real?.writableNeedsDrain ?? false
  }

  get readableEnded (): boolean {
    return this.real?.readableEnded ?? this.ended !== undefined
  }

  get readBufferLength (): number {
    return this.real?.readBufferLength ?? 0
  }

  get writeBufferLength (): number {
    return this.real?.writeBufferLength ?? this.queuedBytes
  }

  override addEventListener (type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void {
    super.addEventListener(type as keyof MessageStreamEvents, listener as EventHandler<Event>, options)
  }

  send (data: Chunk): boolean {
    if (this.real !== undefined) {
      return this.real.send(data)
    }
    if (this.ended !== undefined || this.closeRequested) {
      throw new StreamStateError(`cannot write to a stream that is ${this.ended ?? 'closed for writing'}`)
    }
    this.queued.push(data)
    this.queuedBytes += data.byteLength
    return true
  }

  async onDrain (options?: AbortOptions): Promise<void> {
    await this.real?.onDrain(options)
  }

  /** Before the real stream: resolves at once (the round must not wait for the peer) */
  async close (options?: AbortOptions): Promise<void> {
    if (this.real !== undefined) {
      await this.real.close(options)
      return
    }
    this.closeRequested = true
  }

  async closeRead (options?: AbortOptions): Promise<void> {
    if (this.real !== undefined) {
      await this.real.closeRead(options)
      return
    }
    this.readRequested = true
  }

  abort (err: Error): void {
    if (this.real !== undefined) {
      this.real.abort(err)
      return
    }
    if (this.ended === undefined) {
      this.fail(err, true)
      this.onAbort(err)
    }
  }

  pause (): void {
    this.real?.pause()
  }

  resume (): void {
    this.real?.resume()
  }

  push (data: Chunk): void {
    this.real?.push(data)
  }

  unshift (data: Chunk): void {
    this.real?.unshift(data)
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Chunk> {
    if (this.real !== undefined) {
      yield * this.real
    }
  }
}
