import { SHARE_EPSILON } from './open-cap.ts'
import { LinkedList, ListNode } from '../util/linked-list.ts'
import type { PeerRecord } from '../peers/peer-record.ts'

/**
 * The least number of failing peers that makes local suspicion: more than `share × population`
 * (so the floor of that plus one) and at least `minPeers`. At the defaults: 3 peers → 3, 4 → 3,
 * 5 → 3, 6 → 4, 10 → 6.
 */
export function localSuspicionThreshold (population: number, share: number, minPeers: number): number {
  const more = Math.floor(share * population + SHARE_EPSILON) + 1
  return more > minPeers ? more : minPeers
}

/** A record's place in the failing list, made at its first failure and reused after */
export class FailingNode extends ListNode<PeerRecord> {
  /** When the peer last failed */
  at = 0
}

/**
 * The peers failing now, oldest failure first (the shared intrusive list), so that expiring
 * failures is O(1) per expired failure and the hot path allocates nothing.
 */
export class FailingList {
  private readonly list = new LinkedList<PeerRecord>()

  get empty (): boolean {
    return this.list.head === null
  }

  /** The record whose failure is oldest */
  get head (): PeerRecord | undefined {
    return this.list.first
  }

  /** Links the record at the tail as failing at `now` (kept in order if the clock stepped back) */
  append (record: PeerRecord, now: number): void {
    let node = record.failing
    if (node === undefined) {
      node = record.failing = new FailingNode(record)
    }
    const tail = this.list.tail as FailingNode | null
    node.at = tail !== null && tail !== node && tail.at > now ? tail.at : now
    this.list.push(node)
  }

  unlink (record: PeerRecord): void {
    record.failing?.unlink()
  }

  /** When the `n`-th newest failure happened, or undefined when fewer than that many are listed */
  newest (n: number): number | undefined {
    let node = this.list.tail as FailingNode | null
    while (n > 1 && node !== null) {
      node = node.prev as FailingNode | null
      n--
    }
    return node === null || n < 1 ? undefined : node.at
  }

  /**
   * When the `steps`-th oldest failure expires (`window` after it), or undefined when fewer than
   * that many are listed
   */
  expiryOf (steps: number, window: number): number | undefined {
    let node = this.list.head as FailingNode | null
    while (steps > 1 && node !== null) {
      node = node.next as FailingNode | null
      steps--
    }
    return node === null || steps < 1 ? undefined : node.at + window
  }
}

/** When the record last failed (0: never) */
export function lastFailure (record: PeerRecord): number {
  return record.failing?.at ?? 0
}
