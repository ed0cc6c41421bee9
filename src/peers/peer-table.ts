import { systemClock } from '../clock.ts'
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PEERS, MAX_PEERS_LIMIT } from './config.ts'
import { checkNumber } from '../validate.ts'
import { peerKey } from './peer-key.ts'
import { FORGOTTEN, NOT_USED, PeerRecord, USED } from './peer-record.ts'
import type { PeerLike } from './peer-key.ts'
import type { Clock } from '../clock.ts'

export interface PeerTableInit {
  /**
   * The most peers tracked at once. When full, a new peer takes the place of an idle, evictable one
   * (CLOCK second-chance order); if none is evictable it is served untracked (fail open).
   *
   * @default 10000
   */
  maxPeers?: number

  /**
   * A peer not seen for this long is forgotten, if every component agrees it is evictable (a clean
   * CLOSED breaker, no recovery in progress). Checked lazily, never with a timer.
   *
   * @default 600000
   */
  idleTimeout?: number

  clock?: Clock
}

/**
 * What a component says about the records it keeps data in: whether a record may be forgotten
 * (asked mid-update, so it must be pure) and what to undo when it is.
 */
export interface RecordKeeper {
  evictable?(record: PeerRecord, now: number): boolean
  removed?(record: PeerRecord): void
}

/** How many records one insertion may inspect when looking for a victim: bounds the worst case */
const SWEEP_BUDGET = 64
/** How many records one insertion checks for idle expiry while the table is not full */
const IDLE_SWEEP_STEPS = 2

/**
 * A bounded map from peers to their `PeerRecord`, shared by every per-peer component so that a
 * peer is looked up once. No timers: idle peers are reclaimed a few at a time as new peers arrive.
 * The CLOCK hand is an iterator over the map itself (insertion order), so eviction order costs no
 * memory per peer.
 */
export class PeerTable {
  readonly clock: Clock
  readonly maxPeers: number
  readonly idleTimeout: number

  private readonly records = new Map<string, PeerRecord>()
  private readonly keepers: RecordKeeper[] = []
  private hand: Iterator<PeerRecord> | undefined

  constructor (init: PeerTableInit = {}) {
    this.clock = init.clock ?? systemClock
    this.maxPeers = checkNumber('maxPeers', init.maxPeers ?? DEFAULT_MAX_PEERS, 1, MAX_PEERS_LIMIT, { integer: true })
    this.idleTimeout = checkNumber('idleTimeout', init.idleTimeout ?? DEFAULT_IDLE_TIMEOUT, 0, Infinity, { off: true })
  }

  /** Adds a component that keeps data in the records */
  attach (keeper: RecordKeeper): void {
    this.keepers.push(keeper)
  }

  get size (): number {
    return this.records.size
  }

  /** The record of a tracked peer, or undefined. Does not create one and does not count as a use. */
  find (peer: PeerLike): PeerRecord | undefined {
    return this.records.get(peerKey(peer))
  }

  /**
   * The record of a peer, created if needed, marked as used at `now`. Undefined when the table is
   * full of peers that may not be evicted: the caller then serves the peer untracked.
   */
  get (peer: PeerLike, now: number): PeerRecord | undefined {
    const key = peerKey(peer)
    const record = this.records.get(key)
    if (record !== undefined) {
      // a caller's timestamp may be a little older than one already seen (a stream's open time)
      if (now > record.lastSeen) {
        record.lastSeen = now
      }
      record.mark = USED
      if (typeof peer !== 'string' && typeof record.peer === 'string') {
        // known by its string (e.g. restored from a snapshot): keep the PeerId from now on
        record.peer = peer
      }
      return record
    }
    return this.insert(peer, key, now)
  }

  /** A new peer's record (out of line: a lookup of a known peer stays small enough to inline) */
  private insert (peer: PeerLike, key: string, now: number): PeerRecord | undefined {
    if (!this.makeRoom(now)) {
      return undefined
    }
    const record = new PeerRecord(peer)
    // new peers start unreferenced, so a flood of one-off peers evicts itself, not the busy ones
    record.lastSeen = now
    this.records.set(key, record)
    return record
  }

  /** Marks a record as used (for idle expiry and eviction order) */
  touch (record: PeerRecord, now: number): void {
    if (now > record.lastSeen) {
      record.lastSeen = now
    }
    record.mark = USED
  }

  /** Calls `fn` for every tracked record (`fn` may remove records) */
  forEach (fn: (record: PeerRecord, key: string) => void): void {
    for (const [key, record] of this.records) {
      fn(record, key)
    }
  }

  /** Forgets a peer whatever its state (an explicit reset by the user) */
  delete (peer: PeerLike): boolean {
    const record = this.records.get(peerKey(peer))
    if (record === undefined) {
      return false
    }
    this.release(record)
    return true
  }

  /** Forgets every idle, evictable peer now. Returns how many were removed. */
  prune (now: number = this.clock.now()): number {
    let removed = 0
    for (const record of [...this.records.values()]) {
      if (this.isIdle(record, now) && this.isEvictable(record, now)) {
        this.release(record)
        removed++
      }
    }
    return removed
  }

  clear (): void {
    for (const record of [...this.records.values()]) {
      this.release(record)
    }
  }

  private isIdle (record: PeerRecord, now: number): boolean {
    return now - record.lastSeen > this.idleTimeout
  }

  private isEvictable (record: PeerRecord, now: number): boolean {
    const keepers = this.keepers
    for (let i = 0; i < keepers.length; i++) {
      const keeper = keepers[i]
      if (keeper.evictable !== undefined && !keeper.evictable(record, now)) {
        return false
      }
    }
    return true
  }

  private release (record: PeerRecord): void {
    this.records.delete(peerKey(record.peer))
    record.mark = FORGOTTEN
    const keepers = this.keepers
    for (let i = 0; i < keepers.length; i++) {
      keepers[i].removed?.(record)
    }
  }

  /** True when a new record may be added (after reclaiming one when full) */
  private makeRoom (now: number): boolean {
    if (this.records.size < this.maxPeers) {
      this.expireSome(now, IDLE_SWEEP_STEPS)
      return true
    }
    return this.evictOne(now)
  }

  /** Reclaims idle evictable peers under the clock hand, a few steps per insertion */
  private expireSome (now: number, steps: number): void {
    for (let i = 0; i < steps; i++) {
      const record = this.advanceHand()
      if (record === undefined) {
        return
      }
      if (this.isIdle(record, now) && this.isEvictable(record, now)) {
        this.release(record)
      }
    }
  }

  /** CLOCK second chance: skip recently used records (clearing their mark) and unevictable ones */
  private evictOne (now: number): boolean {
    for (let i = 0; i < SWEEP_BUDGET; i++) {
      const record = this.advanceHand()
      if (record === undefined) {
        return false
      }
      if (record.mark === USED && !this.isIdle(record, now)) {
        record.mark = NOT_USED
        continue
      }
      if (this.isEvictable(record, now)) {
        this.release(record)
        return true
      }
    }
    return false
  }

  /** The record under the hand, moving the hand on; it wraps to the oldest entry at the end */
  private advanceHand (): PeerRecord | undefined {
    if (this.records.size === 0) {
      this.hand = undefined
      return undefined
    }
    let next = this.hand?.next()
    if (next === undefined || next.done === true) {
      this.hand = this.records.values()
      next = this.hand.next()
    }
    return next.done === true ? undefined : next.value
  }
}
