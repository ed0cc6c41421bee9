import { SHARE_EPSILON } from './open-cap.ts'
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

/**
 * The peers failing now, oldest failure first: an intrusive list through the records
 * (`failPrev` / `failNext`, ordered by `lastFailure`), so that expiring failures is O(1) per
 * expired failure and the hot path allocates nothing.
 */
export class FailingList {
  head: PeerRecord | undefined = undefined
  tail: PeerRecord | undefined = undefined

  get empty (): boolean {
    return this.head === undefined
  }

  /** Links the record at the tail as failing at `now` (kept in order if the clock stepped back) */
  append (record: PeerRecord, now: number): void {
    const tail = this.tail
    record.lastFailure = tail !== undefined && tail.lastFailure > now ? tail.lastFailure : now
    record.failPrev = tail
    record.failNext = undefined
    if (tail === undefined) {
      this.head = record
    } else {
      tail.failNext = record
    }
    this.tail = record
  }

  unlink (record: PeerRecord): void {
    const prev = record.failPrev
    const next = record.failNext
    if (prev === undefined) {
      this.head = next
    } else {
      prev.failNext = next
    }
    if (next === undefined) {
      this.tail = prev
    } else {
      next.failPrev = prev
    }
    record.failPrev = undefined
    record.failNext = undefined
  }

  /**
   * When the `steps`-th oldest failure expires (`window` after it), or undefined when fewer than
   * that many are listed
   */
  expiryOf (steps: number, window: number): number | undefined {
    let record = this.head
    while (steps > 1 && record !== undefined) {
      record = record.failNext
      steps--
    }
    return record === undefined || steps < 1 ? undefined : record.lastFailure + window
  }
}
