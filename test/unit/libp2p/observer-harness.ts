import { Uint8ArrayList } from 'uint8arraylist'
import type { Outcome } from '../../../src/states.ts'
import type { AbuseReason, ObserverSink } from '../../../src/libp2p/observer.ts'
import type { PeerId, Stream } from '@libp2p/interface'

/** What the observer and observed-stream specs share: a recording sink, a fake stream, chunk helpers */

export type Chunk = Uint8Array | Uint8ArrayList

export interface Verdict { peer: string, outcome: Outcome, latency: number, err?: Error }
export interface Abuse { peer: string, reason: AbuseReason, err?: Error }

export class RecordingSink implements ObserverSink {
  readonly verdicts: Verdict[] = []
  readonly abuses: Abuse[] = []

  verdict (peer: PeerId, outcome: Outcome, latency: number, err?: Error): void {
    this.verdicts.push({ peer: peer.toString(), outcome, latency, err })
  }

  abuse (peer: PeerId, reason: AbuseReason, err?: Error): void {
    this.abuses.push({ peer: peer.toString(), reason, err })
  }

  /** Set by a test: whether a peer's circuit is OPEN */
  blocked?: (peer: PeerId) => boolean

  outcomes (): Outcome[] {
    return this.verdicts.map(v => v.outcome)
  }
}

/**
 * A synchronous stand-in for a libp2p v3 stream: an EventTarget whose methods touch a `#private`
 * field (as AbstractMessageStream's do), so a Proxy that forgets to bind them fails here too.
 */
export class FakeStream extends EventTarget {
  #alive = true
  status: 'open' | 'closed' | 'aborted' = 'open'
  readonly direction: 'inbound' | 'outbound'
  readonly sent: Chunk[] = []
  /** A callable with properties, like libp2p's stream logger: must not be bound */
  readonly log = Object.assign((..._args: unknown[]) => {}, { trace: (..._args: unknown[]) => {}, error: (..._args: unknown[]) => {} })
  custom = 'a'

  constructor (direction: 'inbound' | 'outbound') {
    super()
    this.direction = direction
  }

  send (data: Chunk): boolean {
    if (!this.#alive || this.status !== 'open') {
      throw new Error('stream is closed')
    }
    this.sent.push(data)
    return true
  }

  abort (err: Error): void {
    if (!this.#alive) {
      return
    }
    this.#alive = false
    this.status = 'aborted'
    this.dispatchEvent(Object.assign(new Event('close'), { error: err, local: true }))
  }

  /** Both sides closed cleanly */
  end (): void {
    this.#alive = false
    this.status = 'closed'
    this.dispatchEvent(Object.assign(new Event('close'), { error: undefined, local: undefined }))
  }

  /** Bytes from the remote */
  deliver (data: Chunk): void {
    this.dispatchEvent(Object.assign(new Event('message'), { data }))
  }

  get private (): boolean {
    return this.#alive
  }
}

export function asStream (fake: FakeStream): Stream {
  return fake as unknown as Stream
}

/** Splits bytes into chunks at the given offsets */
export function split (bytes: Uint8Array, ...at: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = []
  let start = 0
  for (const end of [...at, bytes.byteLength]) {
    chunks.push(bytes.subarray(start, end))
    start = end
  }
  return chunks
}

export function concat (chunks: Chunk[]): Uint8Array {
  const list = new Uint8ArrayList()
  for (const chunk of chunks) {
    list.append(chunk)
  }
  return list.subarray()
}
