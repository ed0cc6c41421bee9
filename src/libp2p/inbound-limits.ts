import { checkNumber } from '../validate.ts'
import { DEFAULT_MAX_INBOUND_BYTES_PER_SECOND, DEFAULT_MAX_INBOUND_STREAMS_PER_PEER } from './config.ts'

/**
 * Per-peer caps on what a peer may push at us over inbound Bitswap streams: how many streams it
 * holds open at once, and how many bytes per second it sends. Pure bookkeeping on a small usage
 * record per peer; time is passed in and the byte budget is refilled lazily from timestamps, so
 * no timer runs per peer.
 */

export interface InboundLimitsInit {
  /**
   * Concurrent inbound Bitswap streams per peer; the next one is refused
   *
   * @default 32
   */
  maxInboundStreamsPerPeer?: number

  /**
   * Sustained inbound Bitswap bytes per second per peer; a stream carrying data beyond it is aborted
   *
   * @default 67108864 (64 MiB/s)
   */
  maxInboundBytesPerSecond?: number

  /**
   * Bytes a peer may send at once above the sustained rate (the token bucket's size)
   *
   * @default maxInboundBytesPerSecond (one second's worth)
   */
  maxInboundBurstBytes?: number
}

/** One peer's inbound usage. Mutable, owned by the caller (the observer keeps one per peer). */
export class InboundUsage {
  /** Inbound Bitswap streams open now */
  streams = 0
  /** Byte budget at `refilledAt`; may be negative after a large chunk (a debt paid by waiting) */
  tokens: number
  refilledAt: number

  constructor (tokens: number, now: number) {
    this.tokens = tokens
    this.refilledAt = now
  }
}

export class InboundLimits {
  readonly maxStreams: number
  readonly bytesPerSecond: number
  readonly burstBytes: number

  constructor (init: InboundLimitsInit = {}) {
    this.maxStreams = checkNumber('maxInboundStreamsPerPeer', init.maxInboundStreamsPerPeer ?? DEFAULT_MAX_INBOUND_STREAMS_PER_PEER, 1, Infinity, { integer: true })
    this.bytesPerSecond = checkNumber('maxInboundBytesPerSecond', init.maxInboundBytesPerSecond ?? DEFAULT_MAX_INBOUND_BYTES_PER_SECOND, 0, Infinity, { minExclusive: true })
    this.burstBytes = checkNumber('maxInboundBurstBytes', init.maxInboundBurstBytes ?? this.bytesPerSecond, 1, Infinity)
  }

  /** A fresh record with a full byte budget */
  usage (now: number): InboundUsage {
    return new InboundUsage(this.burstBytes, now)
  }

  /** May the peer open one more inbound stream? */
  canOpen (usage: InboundUsage): boolean {
    return usage.streams < this.maxStreams
  }

  /**
   * Charges `bytes` to the peer's budget; false (and nothing charged) when the budget is already
   * spent. A chunk is admitted whenever any budget is left, even one larger than the bucket: chunk
   * sizes are the transport's choice, and the debt it leaves still holds the long-run rate.
   */
  take (usage: InboundUsage, bytes: number, now: number): boolean {
    this.refill(usage, now)
    if (usage.tokens <= 0) {
      return false
    }
    usage.tokens -= bytes
    return true
  }

  /** No stream open and the budget full again: the record holds nothing worth keeping */
  idle (usage: InboundUsage, now: number): boolean {
    if (usage.streams > 0) {
      return false
    }
    this.refill(usage, now)
    return usage.tokens >= this.burstBytes
  }

  private refill (usage: InboundUsage, now: number): void {
    const elapsed = now - usage.refilledAt
    if (elapsed > 0) {
      usage.tokens = Math.min(this.burstBytes, usage.tokens + elapsed * this.bytesPerSecond / 1000)
      usage.refilledAt = now
    }
  }
}
