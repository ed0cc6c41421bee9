import { systemClock } from '../clock.ts'
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PEERS } from './config.ts'
import { checkNumber } from '../validate.ts'
import { growColumn } from './columns.ts'
import { peerKey } from './peer-key.ts'
import type { SlotColumns } from './columns.ts'
import type { PeerLike } from './peer-key.ts'
import type { Clock } from '../clock.ts'

export interface PeerRegistryInit {
  /**
   * The most peers tracked at once. When full, a new peer takes the slot of an idle, evictable one
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

const INITIAL_CAPACITY = 64
/** How many slots one insertion may inspect when looking for a victim: bounds the worst case */
const SWEEP_BUDGET = 64
/** How many slots one insertion checks for idle expiry while the registry is not full */
const IDLE_SWEEP_STEPS = 2

/**
 * A bounded map from peers to small integer slots, shared by the breaker, health and recovery
 * components so that a peer is looked up once and costs one map entry however many components
 * track it. No timers: idle peers are reclaimed a few at a time as new peers arrive.
 */
export class PeerRegistry {
  readonly clock: Clock
  readonly maxPeers: number
  readonly idleTimeout: number
  /** Last time each slot was used, in `clock` milliseconds */
  lastSeen: Float64Array

  private readonly index = new Map<string, number>()
  private readonly peers: Array<PeerLike | undefined> = []
  private referenced: Uint8Array
  private readonly freeSlots: number[] = []
  private readonly columns: SlotColumns[] = []
  private capacity: number
  private highWater = 0
  private hand = 0

  constructor (init: PeerRegistryInit = {}) {
    this.clock = init.clock ?? systemClock
    this.maxPeers = checkNumber('maxPeers', init.maxPeers ?? DEFAULT_MAX_PEERS, 1, 2 ** 24, { integer: true })
    this.idleTimeout = checkNumber('idleTimeout', init.idleTimeout ?? DEFAULT_IDLE_TIMEOUT, 0, Infinity, { off: true })
    this.capacity = Math.min(INITIAL_CAPACITY, this.maxPeers)
    this.lastSeen = new Float64Array(this.capacity)
    this.referenced = new Uint8Array(this.capacity)
  }

  /** Adds a component's columns; they are grown to the current capacity at once */
  attach (columns: SlotColumns): void {
    columns.grow(this.capacity)
    this.columns.push(columns)
  }

  get size (): number {
    return this.index.size
  }

  /** The slot of a tracked peer, or -1. Does not create one and does not count as a use. */
  find (peer: PeerLike): number {
    return this.index.get(peerKey(peer)) ?? -1
  }

  /**
   * The slot of a peer, created if needed, marked as used at `now`. Returns -1 when the registry is
   * full of peers that may not be evicted: the caller then serves the peer untracked.
   */
  slot (peer: PeerLike, now: number): number {
    const key = peerKey(peer)
    let slot = this.index.get(key)
    if (slot !== undefined) {
      this.lastSeen[slot] = now
      this.referenced[slot] = 1
      if (typeof peer !== 'string' && typeof this.peers[slot] === 'string') {
        // known by its string (e.g. restored from a snapshot): keep the PeerId from now on
        this.peers[slot] = peer
      }
      return slot
    }
    slot = this.allocate(now)
    if (slot === -1) {
      return -1
    }
    this.index.set(key, slot)
    this.peers[slot] = peer
    this.lastSeen[slot] = now
    // new peers start unreferenced, so a flood of one-off peers evicts itself, not the busy ones
    this.referenced[slot] = 0
    for (let i = 0; i < this.columns.length; i++) {
      this.columns[i].reset(slot)
    }
    return slot
  }

  /** Marks a slot as used (for idle expiry and eviction order) */
  touch (slot: number, now: number): void {
    this.lastSeen[slot] = now
    this.referenced[slot] = 1
  }

  key (slot: number): string {
    const peer = this.peers[slot]
    // no array of keys: a PeerId caches its string, so this allocates nothing
    return peer === undefined ? '' : peerKey(peer)
  }

  /** The peer as it was first given (a `PeerId` when the caller had one) */
  peer (slot: number): PeerLike {
    return this.peers[slot] ?? ''
  }

  /** Calls `fn` for every tracked slot */
  forEach (fn: (slot: number, key: string) => void): void {
    for (const [key, slot] of this.index) {
      fn(slot, key)
    }
  }

  /** Forgets a peer whatever its state (an explicit reset by the user) */
  delete (peer: PeerLike): boolean {
    const slot = this.index.get(peerKey(peer))
    if (slot === undefined) {
      return false
    }
    this.release(slot)
    return true
  }

  /** Forgets every idle, evictable peer now. Returns how many were removed. */
  prune (now: number = this.clock.now()): number {
    let removed = 0
    for (const [, slot] of this.index) {
      if (this.isIdle(slot, now) && this.isEvictable(slot, now)) {
        this.release(slot)
        removed++
      }
    }
    return removed
  }

  clear (): void {
    for (const [, slot] of this.index) {
      this.release(slot)
    }
  }

  private isIdle (slot: number, now: number): boolean {
    return now - this.lastSeen[slot] > this.idleTimeout
  }

  private isEvictable (slot: number, now: number): boolean {
    for (let i = 0; i < this.columns.length; i++) {
      if (!this.columns[i].evictable(slot, now)) {
        return false
      }
    }
    return true
  }

  private release (slot: number): void {
    const peer = this.peers[slot]
    const key = peer === undefined ? undefined : peerKey(peer)
    if (key !== undefined) {
      this.index.delete(key)
    }
    this.peers[slot] = undefined
    this.referenced[slot] = 0
    for (let i = 0; i < this.columns.length; i++) {
      this.columns[i].reset(slot)
    }
    this.freeSlots.push(slot)
  }

  private allocate (now: number): number {
    if (this.index.size < this.maxPeers) {
      this.expireSome(now, IDLE_SWEEP_STEPS)
      const free = this.freeSlots.pop()
      if (free !== undefined) {
        return free
      }
      if (this.highWater === this.capacity) {
        this.grow()
      }
      return this.highWater++
    }
    return this.evictOne(now)
  }

  /** Reclaims idle evictable peers under the clock hand, a few steps per insertion */
  private expireSome (now: number, steps: number): void {
    if (this.highWater === 0) {
      return
    }
    for (let i = 0; i < steps; i++) {
      const slot = this.advanceHand()
      if (this.peers[slot] !== undefined && this.isIdle(slot, now) && this.isEvictable(slot, now)) {
        this.release(slot)
      }
    }
  }

  /** CLOCK second chance: skip recently used slots (clearing their mark) and unevictable ones */
  private evictOne (now: number): number {
    for (let i = 0; i < SWEEP_BUDGET; i++) {
      const slot = this.advanceHand()
      if (this.peers[slot] === undefined) {
        continue
      }
      if (this.referenced[slot] === 1 && !this.isIdle(slot, now)) {
        this.referenced[slot] = 0
        continue
      }
      if (this.isEvictable(slot, now)) {
        this.release(slot)
        return this.freeSlots.pop() ?? -1
      }
    }
    return -1
  }

  private advanceHand (): number {
    const slot = this.hand
    this.hand = slot + 1 >= this.highWater ? 0 : slot + 1
    return slot
  }

  private grow (): void {
    const capacity = Math.min(this.capacity * 2, this.maxPeers)
    this.lastSeen = growColumn(this.lastSeen, capacity)
    this.referenced = growColumn(this.referenced, capacity)
    for (let i = 0; i < this.columns.length; i++) {
      this.columns[i].grow(capacity)
    }
    this.capacity = capacity
  }
}
