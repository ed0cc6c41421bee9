import { checkNumber } from '../validate.ts'
import {
  DEFAULT_MAX_INBOUND_BUFFERED_BYTES, DEFAULT_MAX_INBOUND_BYTES_PER_SECOND, DEFAULT_MAX_INBOUND_STREAMS_PER_PEER, DEFAULT_MAX_WANTLIST_ENTRIES,
  DEFAULT_MAX_WANTLIST_ENTRIES_PER_SECOND
} from './config.ts'

/**
 * Caps on what peers may push at us over inbound Bitswap streams: per peer, how many streams it
 * holds open at once, how many bytes per second it sends and how many wantlist entries per second
 * it asks for; across all peers together, how many bytes of partly received frames we hold. Pure
 * bookkeeping on a small usage record per peer; time is passed in and the budgets are refilled
 * lazily from timestamps, so no timer runs per peer.
 */

/**
 * No one peer may announce partial frames over this share of the partial-frame budget (16 MiB at the
 * default, four of helia's largest messages): a single identity pinning frames just under the shared
 * limit would otherwise sit there until helia's 10 s receive timeout
 */
export const PEER_SHARE_OF_BUFFERED = 0.25

export interface InboundLimitsInit {
  /**
   * Concurrent inbound Bitswap streams per peer; the next one is refused
   *
   * @default 32
   */
  maxInboundStreamsPerPeer?: number

  /**
   * Sustained inbound Bitswap bytes per second per peer; a stream carrying data beyond it is aborted
   * and its peer's circuit opened
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

  /**
   * Bytes of partly received frames held for all peers together. Past it, every peer we never asked
   * for anything and that never answered, then the peer holding the most, has its streams with
   * partial frames aborted and its circuit opened, until the total fits again.
   * A peer whose partial frames announce (by their length prefixes) more than a quarter of it goes
   * the same way, before their bodies arrive.
   *
   * @default 67108864 (64 MiB)
   */
  maxInboundBufferedBytes?: number

  /**
   * Wantlist entries one message may carry (a message with more is a protocol violation, refused
   * before Bitswap reads it), and the burst of a peer's entry budget
   *
   * @default 1024
   */
  maxWantlistEntries?: number

  /**
   * Sustained wantlist entries per second per peer; more is a protocol violation
   *
   * @default 8192
   */
  maxWantlistEntriesPerSecond?: number
}

/** One peer's inbound usage. Mutable, owned by the caller (the observer keeps one per peer). */
export class InboundUsage {
  /** Inbound Bitswap streams open now */
  streams = 0
  /** Byte budget at `refilledAt`; may be negative after an oversized chunk into a full bucket */
  tokens: number
  /** Wantlist entry budget at `refilledAt` */
  entries: number
  refilledAt: number
  /** Bytes of this peer's partly received frames we hold now (counted in the shared budget) */
  buffered = 0
  /** Bytes those frames will take once whole, by their length prefixes (counted in its share) */
  announced = 0

  constructor (tokens: number, entries: number, now: number) {
    this.tokens = tokens
    this.entries = entries
    this.refilledAt = now
  }
}

export class InboundLimits {
  readonly maxStreams: number
  readonly bytesPerSecond: number
  readonly burstBytes: number
  readonly maxBuffered: number
  readonly maxBufferedPerPeer: number
  readonly maxEntries: number
  readonly entriesPerSecond: number
  /** Bytes of partial frames held across all peers now */
  buffered = 0

  constructor (init: InboundLimitsInit = {}) {
    this.maxStreams = checkNumber('maxInboundStreamsPerPeer', init.maxInboundStreamsPerPeer ?? DEFAULT_MAX_INBOUND_STREAMS_PER_PEER, 1, Infinity, { integer: true })
    this.bytesPerSecond = checkNumber('maxInboundBytesPerSecond', init.maxInboundBytesPerSecond ?? DEFAULT_MAX_INBOUND_BYTES_PER_SECOND, 0, Infinity, { minExclusive: true })
    this.burstBytes = checkNumber('maxInboundBurstBytes', init.maxInboundBurstBytes ?? this.bytesPerSecond, 1, Infinity)
    this.maxBuffered = checkNumber('maxInboundBufferedBytes', init.maxInboundBufferedBytes ?? DEFAULT_MAX_INBOUND_BUFFERED_BYTES, 1, Infinity)
    this.maxBufferedPerPeer = this.maxBuffered * PEER_SHARE_OF_BUFFERED
    this.maxEntries = checkNumber('maxWantlistEntries', init.maxWantlistEntries ?? DEFAULT_MAX_WANTLIST_ENTRIES, 1, Infinity, { integer: true })
    this.entriesPerSecond = checkNumber('maxWantlistEntriesPerSecond', init.maxWantlistEntriesPerSecond ?? DEFAULT_MAX_WANTLIST_ENTRIES_PER_SECOND, 0, Infinity, { minExclusive: true })
  }

  /** A fresh record with full budgets */
  usage (now: number): InboundUsage {
    return new InboundUsage(this.burstBytes, this.maxEntries, now)
  }

  /** May the peer open one more inbound stream? */
  canOpen (usage: InboundUsage): boolean {
    return usage.streams < this.maxStreams
  }

  /**
   * Charges `bytes` to the peer's budget; false (and nothing charged) when they do not fit: bytes
   * past the bucket never reach the handler. A chunk larger than the whole bucket (a transport's
   * choice, only possible with a tiny burst) passes into a full bucket and leaves a debt, which
   * still holds the long-run rate.
   */
  take (usage: InboundUsage, bytes: number, now: number): boolean {
    this.refill(usage, now)
    if (bytes > usage.tokens && usage.tokens < this.burstBytes) {
      return false
    }
    usage.tokens -= bytes
    return true
  }

  /** Charges a message's wantlist entries; false (nothing charged) when over the message or rate budget */
  takeEntries (usage: InboundUsage, entries: number, now: number): boolean {
    if (entries === 0) {
      return true
    }
    this.refill(usage, now)
    if (entries > usage.entries) {
      return false
    }
    usage.entries -= entries
    return true
  }

  /**
   * The peer now holds `delta` more (or fewer) bytes of partial frames, which announce `announced`
   * more (or fewer) once whole; true while its share and the total fit. The share counts what the
   * sender announced, which costs only the sender; the total counts real bytes, so that no one can
   * push another peer's frames out with prefixes alone.
   */
  hold (usage: InboundUsage, delta: number, announced = delta): boolean {
    usage.buffered += delta
    usage.announced += announced
    this.buffered += delta
    return this.buffered <= this.maxBuffered && usage.announced <= this.maxBufferedPerPeer
  }

  /** Whether the peer's partial frames announce more than its share */
  overShare (usage: InboundUsage): boolean {
    return usage.announced > this.maxBufferedPerPeer
  }

  /** Whether the partial frames of every peer together fit the shared budget */
  get withinBuffered (): boolean {
    return this.buffered <= this.maxBuffered
  }

  /** No stream open and the budgets full again: the record holds nothing worth keeping */
  idle (usage: InboundUsage, now: number): boolean {
    if (usage.streams > 0 || usage.buffered > 0 || usage.announced > 0) {
      return false
    }
    this.refill(usage, now)
    return usage.tokens >= this.burstBytes && usage.entries >= this.maxEntries
  }

  private refill (usage: InboundUsage, now: number): void {
    const elapsed = now - usage.refilledAt
    if (elapsed > 0) {
      usage.tokens = Math.min(this.burstBytes, usage.tokens + elapsed * this.bytesPerSecond / 1000)
      usage.entries = Math.min(this.maxEntries, usage.entries + elapsed * this.entriesPerSecond / 1000)
      usage.refilledAt = now
    }
  }
}
