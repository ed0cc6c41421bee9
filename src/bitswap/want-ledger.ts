import { multihashKey, prefixKey, prefixOfCid } from './cid-key.ts'
import { PresenceType, readMessage, WantType } from './message.ts'
import { ReceivedMessage } from './received-message.ts'
import { VerdictQueue } from './verdicts.ts'
import { resolveWantLedgerConfig } from './want-ledger-init.ts'
import { releasable, releasableWants, releaseVerdict } from './want-release.ts'
import { WantStore } from './want-store.ts'
import type { MessageVisitor } from './message.ts'
import type { AnswerKind, WantOutcomeSink } from './verdicts.ts'
import type { WantLedgerConfig, WantLedgerInit } from './want-ledger-init.ts'
import type { LinkedList } from '../util/linked-list.ts'
import type { ReleaseReason } from './want-release.ts'
import type { PeerWants, Want } from './wants.ts'

/**
 * Per-peer correlation of the wants we send with the answers that come back: the breaker's
 * evidence of whether a peer serves Bitswap. Pure logic: no libp2p, no timers, time passed in.
 *
 * Verdicts (to the `WantOutcomeSink`), one at most per want sent:
 * - answered: a block (success), a HAVE to a want-have (success), or a DONT_HAVE (neutral: a valid
 *   answer, never a failure). Each also gives a latency sample.
 * - missed: a want sent with `sendDontHave: true` got no answer before the peer's adaptive
 *   deadline, counted from when it was (last) sent. Only such wants can miss: helia sends its full
 *   wantlist on connect with `sendDontHave: false`, and a peer rightly stays silent on those.
 * - unrequested: a block or presence matching nothing we asked that peer for.
 * - none: the want ends neutral when the block arrives from another peer (or `settle()`), when we
 *   cancel it, or when a full wantlist leaves it out.
 * - released: the peer will not answer a want Bitswap waits on (it missed, or `release()`): the
 *   integrator ends that wait with a DONT_HAVE; the rules are in want-release.ts.
 *
 * Decisions (see the spec for each):
 * - A HAVE to a want-block is not its answer: it gives a presence latency sample but no verdict,
 *   and the want stays open, so a peer that says HAVE and never sends the block misses.
 * - Blocks are matched by CID prefix, because their CID is known only after hashing: a block
 *   answers the OLDEST open want-block to that peer with the same prefix (else the oldest open
 *   want-have, which a server may answer with a small block instead of HAVE). Exact when the peer
 *   answers in order, as boxo and helia servers mostly do; `receivedMessage` applies a message's
 *   presences (exact, by CID) before its blocks so a mixed reply does not skew the guess.
 * - Two latency EWMAs per peer, blocks and presences: DONT_HAVEs come back in one round trip while
 *   blocks also pay disk and transfer time, so one shared average (as boxo keeps) would let fast
 *   DONT_HAVEs shrink the deadline below the peer's honest block latency (boxo #701's false
 *   timeouts). want-block deadline = clamp(multiplier x max(block, presence EWMA)); before the
 *   first block sample it is `coldDeadline`. want-have deadline uses the presence EWMA (else the
 *   block one, else cold). Deadlines follow the current EWMA, as boxo re-checks when it shrinks.
 * - EWMA: the first sample sets it, then `ewma += alpha x (sample - ewma)`, alpha 0.5 = boxo's
 *   1/n clamped to 0.5 from the second sample on.
 * - Helia 4.0.19 never sends cancels, so a peer keeps our wants: an answer after the verdict (a
 *   late block, a block after the want was met elsewhere, a duplicate) is not `unrequested` while
 *   the ended want is remembered (`settledRetention`, within the per-peer cap). A block arriving
 *   for an ended want uses it up, so a peer cannot pass off more blocks than it had wants. A late
 *   answer to a missed want feeds the EWMA (so a peer that truly slowed down gets a longer
 *   deadline) and `late`, but no second verdict.
 * - Re-sending a want (same peer and CID) refreshes it: sent time = now, `sendDontHave` = latest,
 *   want type only upgrades (have -> block), an ended want opens again.
 * - Memory: at most `maxWantsPerPeer` per peer (evicting ended, then silent, then missable wants,
 *   oldest first, all without verdict) and `maxPeers` peers (least recently active evicted).
 */

export class WantLedger {
  /** The settings, defaults filled in */
  readonly config: WantLedgerConfig
  private readonly verdicts: VerdictQueue
  private readonly store: WantStore
  private generation = 0

  private readonly received = new ReceivedMessage()

  // context for sentMessage's visitor
  private outPeer = ''
  private outNow = 0
  private outFull = false
  private outRtt = 0
  private readonly outbound: MessageVisitor

  constructor (init: WantLedgerInit, sink: WantOutcomeSink) {
    const config = this.config = resolveWantLedgerConfig(init)
    this.store = new WantStore(config.maxPeers)
    this.verdicts = new VerdictQueue(sink)

    this.outbound = {
      wantlistEntry: (cid, wantType, cancel, sendDontHave) => {
        this.recordSent(this.outPeer, cid, wantType, sendDontHave, cancel, this.outNow)
      },
      wantlistFull: (full) => {
        this.outFull = full
      }
    }
  }

  /** Wants remembered, open or ended, across all peers */
  get size (): number {
    return this.store.size
  }

  /** Peers remembered */
  get peerCount (): number {
    return this.store.peerCount
  }

  /** When the next want misses (ms, same clock as `now`), or Infinity: arm one timer for it */
  get nextDeadline (): number {
    return this.store.nextDue?.heapKey ?? Infinity
  }

  /** One wantlist entry we sent to `peerKey`; a cancel ends the want neutral */
  sent (peerKey: string, cid: Uint8Array, wantType: WantType, sendDontHave: boolean, cancel: boolean, now: number): void {
    this.recordSent(peerKey, cid, wantType, sendDontHave, cancel, now)
    this.verdicts.flush()
  }

  /**
   * A whole message (frame body) we sent to `peerKey`: records its wantlist entries; a full
   * wantlist also ends, neutral, the peer's wants it leaves out (the peer replaced its list).
   * `rttMs` (> 0): the connection's RTT, for the cold deadline. Returns the message's generation
   * (for `release`). Throws `InvalidMessageError` for malformed bytes.
   */
  sentMessage (peerKey: string, message: Uint8Array, now: number, rttMs = 0): number {
    this.outPeer = peerKey
    this.outNow = now
    this.outFull = false
    this.outRtt = rttMs
    this.generation++
    try {
      readMessage(message, this.outbound)
      if (this.outFull) {
        const peer = this.store.peer(peerKey)
        if (peer !== undefined) {
          this.settleStale(peer, now)
        }
      }
    } finally {
      this.verdicts.flush()
    }
    return this.generation
  }

  /**
   * Releases Bitswap's waits on the peer (rules: want-release.ts), all or those last sent in
   * generations [from, to] (a failed stream's messages); they also end neutral. Returns how many.
   */
  release (peerKey: string, reason: Exclude<ReleaseReason, 'deadline'>, now: number, from = 0, to = Infinity): number {
    const peer = this.store.peer(peerKey)
    if (peer === undefined) {
      return 0
    }
    const wants = releasableWants(peer, from, to)
    for (const want of wants) {
      // a want already overdue misses, and is released, as such
      this.missIfOverdue(want, now)
      this.pushRelease(want, reason)
      this.settleWant(want, now)
    }
    this.reschedule(peer)
    this.verdicts.flush()
    return wants.length
  }

  /**
   * A whole message (frame body) received from `peerKey`. It counts all or nothing, as helia drops
   * a message it cannot decode: a malformed one throws `InvalidMessageError` and changes nothing.
   * Presences are applied before blocks (see the block matching heuristic).
   */
  receivedMessage (peerKey: string, message: Uint8Array, now: number): void {
    const items = this.received
    items.read(message)
    try {
      for (let i = 0; i < items.presences; i++) {
        this.applyPresence(peerKey, items.presenceKeys[i], items.presenceTypes[i], now)
      }
      for (let i = 0; i < items.blocks; i++) {
        this.applyBlock(peerKey, items.blockKeys[i], now)
      }
    } finally {
      items.reset()
    }
    this.verdicts.flush()
  }

  /** A block received from `peerKey`, known by its CID prefix only (see `receivedMessage` for order) */
  blockReceived (peerKey: string, prefix: Uint8Array, now: number): void {
    this.applyBlock(peerKey, prefixKey(prefix), now)
    this.verdicts.flush()
  }

  /** A HAVE or DONT_HAVE received from `peerKey` */
  presenceReceived (peerKey: string, cid: Uint8Array, type: PresenceType, now: number): void {
    this.applyPresence(peerKey, multihashKey(cid), type, now)
    this.verdicts.flush()
  }

  /**
   * The block for `cid` arrived by some means the ledger did not see (another protocol, or the
   * integrator learned the exact CID): every peer's open want for it ends neutral.
   */
  settle (cid: Uint8Array, now: number): void {
    const key = multihashKey(cid)
    if (key !== undefined) {
      this.neutralise(key, null, now)
    }
    this.verdicts.flush()
  }

  /**
   * Misses every want whose deadline has passed (`sink.missed`), and returns when the next one
   * falls due (Infinity if none), for the caller's single timer. Answers check their own deadline
   * too, so a late timer never turns a late answer into a timely one.
   */
  expire (now: number): number {
    for (let peer = this.store.nextDue; peer !== undefined && peer.heapKey <= now; peer = this.store.nextDue) {
      this.missOverdue(peer.dueBlock, now)
      this.missOverdue(peer.dueHave, now)
      this.reschedule(peer)
    }
    this.verdicts.flush()
    return this.nextDeadline
  }

  /** The peer's current deadline for a want of this type, ms */
  peerDeadline (peerKey: string, wantType: WantType = WantType.Block): number {
    const peer = this.store.peer(peerKey)
    return peer === undefined ? this.config.coldDeadline : peer.deadline(wantType, this.config)
  }

  /** The peer's latency EWMA for blocks or presences, ms, or undefined before a sample */
  peerLatency (peerKey: string, kind: 'block' | 'presence' = 'block'): number | undefined {
    return this.store.peer(peerKey)?.latency(kind)
  }

  /** Wants remembered for one peer, open or ended (`openOnly`: only those unanswered and not missed) */
  peerWants (peerKey: string, openOnly = false): number {
    const peer = this.store.peer(peerKey)
    return peer === undefined ? 0 : peer.wants.size - (openOnly ? peer.ended.size : 0)
  }

  /** Forgets a peer (disconnected): its wants end without verdict, its EWMAs are dropped */
  removePeer (peerKey: string): void {
    const peer = this.store.peer(peerKey)
    if (peer !== undefined) {
      this.store.dropPeer(peer)
    }
  }

  /** Forgets everything. Queued verdicts are still delivered. */
  clear (): void {
    this.store.clear()
  }

  // -- recording what we send --

  private recordSent (peerKey: string, cid: Uint8Array, wantType: WantType, sendDontHave: boolean, cancel: boolean, now: number): void {
    const key = multihashKey(cid)
    if (key === undefined) {
      return // not a CID: no peer could answer it
    }
    let peer = this.store.peer(peerKey)
    if (peer === undefined) {
      if (cancel) {
        return
      }
      peer = this.store.addPeer(peerKey)
    }
    peer.rttMs = this.outRtt > 0 ? this.outRtt : peer.rttMs
    this.store.touch(peer)
    this.purgeEnded(peer, now)
    let want = peer.wants.get(key)
    if (cancel) {
      if (want !== undefined && want.state !== 'settled') {
        this.missIfOverdue(want, now)
        this.settleWant(want, now)
        this.reschedule(peer)
      }
      return
    }
    if (want !== undefined) {
      this.missIfOverdue(want, now)
      want.detach()
      if (want.wantType !== WantType.Block) {
        want.wantType = wantType
      }
      if (want.state !== 'open') {
        want.released = want.haveSeen = false // asked again after it ended: a new want
      }
      want.sendDontHave = sendDontHave
      want.sentAt = now
      want.state = 'open'
    } else {
      if (peer.wants.size >= this.config.maxWantsPerPeer) {
        this.evictOne(peer)
      }
      want = this.store.addWant(peer, key, prefixOfCid(cid) ?? '', wantType, sendDontHave, now)
    }
    want.generation = this.generation
    peer.attachOpen(want)
    this.reschedule(peer)
  }

  /** After a full wantlist: the peer dropped every want the message did not list */
  private settleStale (peer: PeerWants, now: number): void {
    for (const want of peer.wants.values()) {
      if (want.state !== 'settled' && want.generation !== this.generation) {
        this.missIfOverdue(want, now)
        this.settleWant(want, now)
      }
    }
    this.reschedule(peer)
  }

  // -- answers --

  private applyPresence (peerKey: string, key: string | undefined, type: number, now: number): void {
    const peer = this.store.peer(peerKey)
    if (peer !== undefined) {
      this.purgeEnded(peer, now)
    }
    const want = key === undefined ? undefined : peer?.wants.get(key)
    if (peer === undefined || want === undefined) {
      this.verdicts.push({ type: 'unrequested', peerKey, what: 'presence' })
      return
    }
    this.store.touch(peer)
    if (want.state === 'settled') {
      return // a duplicate, or an answer after the want was met elsewhere: neutral
    }
    this.missIfOverdue(want, now)
    const latencyMs = Math.max(0, now - want.sentAt)
    const kind: AnswerKind = type === PresenceType.DontHave ? 'dont-have' : 'have'
    // Bitswap's wait on this peer ends with its HAVE, even when the want stays open for the block
    want.haveSeen ||= kind === 'have'
    peer.sample(false, latencyMs, this.config.ewmaAlpha)
    // a HAVE to a want-block is not its answer: the block still has to come
    const ends = type === PresenceType.DontHave || want.wantType === WantType.Have
    if (want.state === 'open') {
      if (ends) {
        this.settleWant(want, now)
        this.verdicts.push({ type: 'answered', peerKey, kind, latencyMs })
      }
    } else {
      if (ends) {
        this.settleWant(want, now)
      }
      this.verdicts.push({ type: 'late', peerKey, kind, latencyMs })
    }
    this.reschedule(peer)
  }

  private applyBlock (peerKey: string, prefix: string | undefined, now: number): void {
    const peer = this.store.peer(peerKey)
    if (peer !== undefined) {
      this.purgeEnded(peer, now)
    }
    const want = prefix === undefined ? undefined : peer?.buckets.get(prefix)?.match()
    if (peer === undefined || want === undefined) {
      this.verdicts.push({ type: 'unrequested', peerKey, what: 'block' })
      return
    }
    this.store.touch(peer)
    this.missIfOverdue(want, now)
    if (want.state === 'settled') {
      // a duplicate or an answer after the want ended: neutral, and it uses up the want, so a
      // peer cannot pass off more blocks than it had wants
      this.store.removeWant(want)
      return
    }
    const latencyMs = Math.max(0, now - want.sentAt)
    peer.sample(true, latencyMs, this.config.ewmaAlpha)
    this.verdicts.push({ type: want.state === 'open' ? 'answered' : 'late', peerKey, kind: 'block', latencyMs })
    // the content arrived: everyone else's want for it is moot
    this.neutralise(want.key, want, now)
    // kept while retained, so a duplicate of this block is not unrequested
    this.settleWant(want, now)
    this.reschedule(peer)
  }

  /** Ends, neutral, every open or late want for `key` except `except` */
  private neutralise (key: string, except: Want | null, now: number): void {
    // by node, not by iterator: this runs for every block received
    for (let node = this.store.wantsFor(key)?.head ?? null; node !== null;) {
      const want = node.value
      node = node.next
      if (want !== except && want.state !== 'settled') {
        this.missIfOverdue(want, now)
        this.settleWant(want, now)
        this.reschedule(want.peer)
      }
    }
  }

  // -- misses --

  private missOverdue (list: LinkedList<Want>, now: number): void {
    for (let want = list.first; want !== undefined; want = list.first) {
      if (!this.missIfOverdue(want, now)) {
        return
      }
    }
  }

  /** Misses an open, missable want whose deadline has passed; returns whether it did */
  private missIfOverdue (want: Want, now: number): boolean {
    if (want.state !== 'open' || !want.sendDontHave) {
      return false
    }
    const deadlineMs = want.peer.deadline(want.wantType, this.config)
    if (now < want.sentAt + deadlineMs) {
      return false
    }
    want.state = 'late'
    want.endedAt = now
    want.peer.attachEnded(want)
    this.verdicts.push({ type: 'missed', peerKey: want.peer.key, ageMs: now - want.sentAt, deadlineMs })
    this.pushRelease(want, 'deadline')
    return true
  }

  private pushRelease (want: Want, reason: ReleaseReason): void {
    const verdict = releasable(want) ? releaseVerdict(want, reason) : undefined
    if (verdict !== undefined) {
      this.verdicts.push(verdict)
    }
  }

  // -- wants --

  private settleWant (want: Want, now: number): void {
    want.state = 'settled'
    want.endedAt = now
    want.peer.attachEnded(want)
  }

  /** Forgets wants that ended more than `settledRetention` ago */
  private purgeEnded (peer: PeerWants, now: number): void {
    this.store.purgeEnded(peer, now - this.config.settledRetention)
  }

  /** Makes room for one want, without verdict */
  private evictOne (peer: PeerWants): void {
    const victim = peer.evictionVictim()
    if (victim !== undefined) {
      this.store.removeWant(victim)
      this.reschedule(peer)
    }
  }

  /** Recomputes when the peer's next want misses */
  private reschedule (peer: PeerWants): void {
    this.store.setDue(peer, peer.nextMiss(this.config))
  }
}
