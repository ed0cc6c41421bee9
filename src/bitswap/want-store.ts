import { LinkedList } from '../util/linked-list.ts'
import { MinHeap } from '../util/min-heap.ts'
import { PeerWants, Want } from './wants.ts'
import type { WantType } from './message.ts'

/**
 * The ledger's indexes: peers by key and by recency (bounded, least recently active evicted),
 * every peer's wants by CID, and the peers with a want that can miss by when it does.
 */
export class WantStore {
  private readonly maxPeers: number
  private readonly peers = new Map<string, PeerWants>()
  private readonly byKey = new Map<string, LinkedList<Want>>()
  /** Peers with a want that can miss, by when it does: one timer serves all */
  private readonly due = new MinHeap<PeerWants>()
  /** Least recently active first */
  private readonly recency = new LinkedList<PeerWants>()
  private wantCount = 0

  constructor (maxPeers: number) {
    this.maxPeers = maxPeers
  }

  /** Wants remembered, open or ended, across all peers */
  get size (): number {
    return this.wantCount
  }

  get peerCount (): number {
    return this.peers.size
  }

  /** The peer whose want misses first, if any can */
  get nextDue (): PeerWants | undefined {
    return this.due.peek()
  }

  peer (key: string): PeerWants | undefined {
    return this.peers.get(key)
  }

  /** A new peer record; at the cap, the least recently active peer is dropped first */
  addPeer (key: string): PeerWants {
    const oldest = this.recency.first
    if (this.peers.size >= this.maxPeers && oldest !== undefined) {
      this.dropPeer(oldest)
    }
    const peer = new PeerWants(key)
    this.peers.set(key, peer)
    this.recency.push(peer.recency)
    return peer
  }

  /** The peer was active: last in line for eviction */
  touch (peer: PeerWants): void {
    this.recency.moveToEnd(peer.recency)
  }

  /** Forgets the peer and its wants, without verdict */
  dropPeer (peer: PeerWants): void {
    for (const want of peer.wants.values()) {
      this.removeWant(want)
    }
    this.due.remove(peer)
    peer.heapKey = Infinity
    this.recency.remove(peer.recency)
    peer.removed = true
    this.peers.delete(peer.key)
  }

  /** A new want of the peer (not yet in any of its lists) */
  addWant (peer: PeerWants, key: string, prefix: string, wantType: WantType, sendDontHave: boolean, now: number): Want {
    const want = new Want(key, prefix, peer, wantType, sendDontHave, now)
    peer.wants.set(key, want)
    this.wantCount++
    let same = this.byKey.get(key)
    if (same === undefined) {
      same = new LinkedList<Want>()
      this.byKey.set(key, same)
    }
    same.push(want.sameCid)
    return want
  }

  removeWant (want: Want): void {
    want.detach()
    want.peer.wants.delete(want.key)
    this.wantCount--
    const same = want.sameCid.list
    if (same !== null) {
      same.remove(want.sameCid)
      if (same.size === 0) {
        this.byKey.delete(want.key)
      }
    }
  }

  /** Every peer's wants for a CID, oldest first */
  wantsFor (key: string): LinkedList<Want> | undefined {
    return this.byKey.get(key)
  }

  /** Forgets the peer's wants that ended at or before `cutoff` */
  purgeEnded (peer: PeerWants, cutoff: number): void {
    for (let want = peer.ended.first; want !== undefined && want.endedAt <= cutoff; want = peer.ended.first) {
      this.removeWant(want)
    }
  }

  /** When the peer's next want misses (Infinity: none can); moves it in the deadline heap */
  setDue (peer: PeerWants, dueAt: number): void {
    if (peer.removed) {
      return
    }
    const queued = this.due.has(peer)
    if (dueAt === peer.heapKey && queued === (dueAt !== Infinity)) {
      return
    }
    peer.heapKey = dueAt
    if (dueAt === Infinity) {
      this.due.remove(peer)
    } else if (queued) {
      this.due.update(peer)
    } else {
      this.due.push(peer)
    }
  }

  /** Forgets everything */
  clear (): void {
    for (const peer of this.peers.values()) {
      peer.removed = true
    }
    this.peers.clear()
    this.byKey.clear()
    this.due.clear()
    this.recency.clear()
    this.wantCount = 0
  }
}
