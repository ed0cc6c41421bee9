import { checkNumber } from '../validate.ts'
import { multihashKey, prefixKey, prefixOfCid } from './cid-key.ts'
import { PresenceType, readMessage, WantType } from './message.ts'
import type { MessageVisitor } from './message.ts'

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

export interface WantLedgerInit {
  /** Shortest adaptive deadline, ms (default 50, boxo's MinTimeout) */
  minDeadline?: number
  /** Longest adaptive deadline, ms (default 7000, boxo's MaxTimeout) */
  maxDeadline?: number
  /** Deadline before a peer's first latency sample, ms (default 5000, boxo's DontHaveTimeout) */
  coldDeadline?: number
  /** Deadline = this x the latency EWMA (default 2, as boxo) */
  deadlineMultiplier?: number
  /** EWMA weight of a new sample, in (0, 1] (default 0.5, boxo's floor for 1/n) */
  ewmaAlpha?: number
  /** Wants remembered per peer (default 1024, helia's and boxo's wantlist limit) */
  maxWantsPerPeer?: number
  /** Peers remembered (default 10000, the registry's default) */
  maxPeers?: number
  /** How long an ended want is remembered so a late or duplicate answer is not unrequested, ms (default 60000) */
  settledRetention?: number
}

/**
 * boxo uses 50 ms, but a JS node shares one event loop with everything else: answers from a
 * healthy peer jitter by tens of ms under load, and a 50 ms floor tripped the only healthy
 * provider in our demo. A second is still far below the 10 s Bitswap send timeout.
 */
export const DEFAULT_MIN_DEADLINE = 1_000
export const DEFAULT_MAX_DEADLINE = 7_000
export const DEFAULT_COLD_DEADLINE = 5_000
export const DEFAULT_DEADLINE_MULTIPLIER = 2
export const DEFAULT_EWMA_ALPHA = 0.5
export const DEFAULT_MAX_WANTS_PER_PEER = 1024
export const DEFAULT_LEDGER_MAX_PEERS = 10_000
export const DEFAULT_SETTLED_RETENTION = 60_000

export type AnswerKind = 'block' | 'have' | 'dont-have'

/** Where verdicts go; the integrator plugs the breaker in here. Calls never overlap a mutation. */
export interface WantOutcomeSink {
  /** A timely answer: 'block' and 'have' are successes, 'dont-have' is neutral */
  answered(peerKey: string, kind: AnswerKind, latencyMs: number): void
  /** No answer before the deadline: a failure */
  missed(peerKey: string, ageMs: number, deadlineMs: number): void
  /** A block or presence we never asked this peer for: counts against the sender */
  unrequested(peerKey: string, what: 'block' | 'presence'): void
  /** An answer to a want that had already missed: informative only, the miss stands */
  late?(peerKey: string, kind: AnswerKind, latencyMs: number): void
}

const OPEN = 0
const LATE = 1
const SETTLED = 2

/** An intrusive FIFO: wants carry their own links, so lists allocate nothing per entry */
class WantList {
  head: Want | null = null
  tail: Want | null = null
}

class Want {
  readonly key: string
  readonly prefix: string
  readonly peer: PeerState
  wantType: WantType
  sendDontHave: boolean
  sentAt: number
  state = OPEN
  /** When it missed or settled, for retention */
  endedAt = 0
  /** `sentMessage` call that last sent it, to find wants a full wantlist left out */
  generation = 0
  // the peer-level list it is in (due, quiet or done) and its links there
  list: WantList | null = null
  prev: Want | null = null
  next: Want | null = null
  // the prefix-bucket list it is in, for block matching
  matchList: WantList | null = null
  matchPrev: Want | null = null
  matchNext: Want | null = null
  // the other peers' wants for the same CID
  samePrev: Want | null = null
  sameNext: Want | null = null

  constructor (key: string, prefix: string, peer: PeerState, wantType: WantType, sendDontHave: boolean, sentAt: number) {
    this.key = key
    this.prefix = prefix
    this.peer = peer
    this.wantType = wantType
    this.sendDontHave = sendDontHave
    this.sentAt = sentAt
  }
}

/** One peer's wants sharing a CID prefix, in sent order */
class PrefixBucket {
  readonly openBlock = new WantList()
  readonly openHave = new WantList()
  readonly late = new WantList()
  readonly settled = new WantList()
}

class PeerState {
  readonly key: string
  readonly wants = new Map<string, Want>()
  /** OPEN, sendDontHave, want-block: the FIFO that can miss, by sent time */
  readonly dueBlock = new WantList()
  /** OPEN, sendDontHave, want-have */
  readonly dueHave = new WantList()
  /** OPEN, not missable */
  readonly quiet = new WantList()
  /** LATE or SETTLED, in the order they ended */
  readonly ended = new WantList()
  readonly buckets = new Map<string, PrefixBucket>()
  blockEwma = 0
  blockSamples = 0
  presenceEwma = 0
  presenceSamples = 0
  /** Earliest time one of its wants misses, or Infinity; its heap key */
  dueAt = Infinity
  heapIndex = -1
  lruPrev: PeerState | null = null
  lruNext: PeerState | null = null
  removed = false

  constructor (key: string) {
    this.key = key
  }
}

function append (list: WantList, want: Want): void {
  want.list = list
  want.prev = list.tail
  want.next = null
  if (list.tail === null) {
    list.head = want
  } else {
    list.tail.next = want
  }
  list.tail = want
}

function unlink (want: Want): void {
  const list = want.list
  if (list === null) {
    return
  }
  if (want.prev === null) {
    list.head = want.next
  } else {
    want.prev.next = want.next
  }
  if (want.next === null) {
    list.tail = want.prev
  } else {
    want.next.prev = want.prev
  }
  want.list = want.prev = want.next = null
}

function matchAppend (list: WantList, want: Want): void {
  want.matchList = list
  want.matchPrev = list.tail
  want.matchNext = null
  if (list.tail === null) {
    list.head = want
  } else {
    list.tail.matchNext = want
  }
  list.tail = want
}

function matchUnlink (want: Want): void {
  const list = want.matchList
  if (list === null) {
    return
  }
  if (want.matchPrev === null) {
    list.head = want.matchNext
  } else {
    want.matchPrev.matchNext = want.matchNext
  }
  if (want.matchNext === null) {
    list.tail = want.matchPrev
  } else {
    want.matchNext.matchPrev = want.matchPrev
  }
  want.matchList = want.matchPrev = want.matchNext = null
}

const EVENT_ANSWERED = 0
const EVENT_MISSED = 1
const EVENT_UNREQUESTED = 2
const EVENT_LATE = 3

export class WantLedger {
  readonly minDeadline: number
  readonly maxDeadline: number
  readonly coldDeadline: number
  readonly deadlineMultiplier: number
  readonly ewmaAlpha: number
  readonly maxWantsPerPeer: number
  readonly maxPeers: number
  readonly settledRetention: number

  private readonly sink: WantOutcomeSink
  private readonly peers = new Map<string, PeerState>()
  /** The first of every peer's wants for a CID; the rest hang off `sameNext` */
  private readonly byKey = new Map<string, Want>()
  /** Peers with a want that can miss, as a binary min-heap on `dueAt`: one timer serves all */
  private readonly heap: PeerState[] = []
  private lruHead: PeerState | null = null
  private lruTail: PeerState | null = null
  private wantCount = 0
  private generation = 0

  // Verdicts are queued while state changes and delivered after, so a sink may call back in
  // (e.g. removePeer when a breaker trips) without seeing or corrupting a half-made change.
  private readonly eventType: number[] = []
  private readonly eventPeer: string[] = []
  private readonly eventKind: string[] = []
  private readonly eventA: number[] = []
  private readonly eventB: number[] = []
  private eventCount = 0
  private flushing = false

  // scratch for receivedMessage: the message is parsed whole before any of it counts
  private readonly inPresenceKeys: Array<string | undefined> = []
  private readonly inPresenceTypes: number[] = []
  private inPresenceCount = 0
  private readonly inBlockKeys: Array<string | undefined> = []
  private inBlockCount = 0
  private readonly inbound: MessageVisitor

  // context for sentMessage's visitor
  private outPeer = ''
  private outNow = 0
  private outFull = false
  private readonly outbound: MessageVisitor

  constructor (init: WantLedgerInit, sink: WantOutcomeSink) {
    this.minDeadline = checkNumber('wantLedger.minDeadline', init.minDeadline ?? DEFAULT_MIN_DEADLINE, 0, Infinity, { minExclusive: true })
    this.maxDeadline = checkNumber('wantLedger.maxDeadline', init.maxDeadline ?? DEFAULT_MAX_DEADLINE, this.minDeadline, Infinity)
    this.coldDeadline = checkNumber('wantLedger.coldDeadline', init.coldDeadline ?? DEFAULT_COLD_DEADLINE, 0, Infinity, { minExclusive: true })
    this.deadlineMultiplier = checkNumber('wantLedger.deadlineMultiplier', init.deadlineMultiplier ?? DEFAULT_DEADLINE_MULTIPLIER, 0, Infinity, { minExclusive: true })
    this.ewmaAlpha = checkNumber('wantLedger.ewmaAlpha', init.ewmaAlpha ?? DEFAULT_EWMA_ALPHA, 0, 1, { minExclusive: true })
    this.maxWantsPerPeer = checkNumber('wantLedger.maxWantsPerPeer', init.maxWantsPerPeer ?? DEFAULT_MAX_WANTS_PER_PEER, 1, Infinity, { integer: true })
    this.maxPeers = checkNumber('wantLedger.maxPeers', init.maxPeers ?? DEFAULT_LEDGER_MAX_PEERS, 1, Infinity, { integer: true })
    this.settledRetention = checkNumber('wantLedger.settledRetention', init.settledRetention ?? DEFAULT_SETTLED_RETENTION, 0, Infinity)
    this.sink = sink

    this.inbound = {
      presence: (cid, type) => {
        this.inPresenceKeys[this.inPresenceCount] = multihashKey(cid)
        this.inPresenceTypes[this.inPresenceCount] = type
        this.inPresenceCount++
      },
      block: (prefix) => {
        this.inBlockKeys[this.inBlockCount++] = prefixKey(prefix)
      },
      legacyBlock: () => {
        // helia 4.0.19 ignores bitswap 1.0.0 blocks: nothing we asked for arrived
        this.inBlockKeys[this.inBlockCount++] = undefined
      }
    }
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
    return this.wantCount
  }

  /** Peers remembered */
  get peerCount (): number {
    return this.peers.size
  }

  /** When the next want misses (ms, same clock as `now`), or Infinity: arm one timer for it */
  get nextDeadline (): number {
    return this.heap.length > 0 ? this.heap[0].dueAt : Infinity
  }

  /** One wantlist entry we sent to `peerKey`. A cancel ends the want neutral. */
  sent (peerKey: string, cid: Uint8Array, wantType: WantType, sendDontHave: boolean, cancel: boolean, now: number): void {
    this.recordSent(peerKey, cid, wantType, sendDontHave, cancel, now)
    this.flush()
  }

  /**
   * A whole message (frame body) we sent to `peerKey`: records its wantlist entries; a full
   * wantlist also ends, neutral, the peer's wants it leaves out (the peer replaced its list).
   * Throws `InvalidMessageError` for malformed bytes.
   */
  sentMessage (peerKey: string, message: Uint8Array, now: number): void {
    this.outPeer = peerKey
    this.outNow = now
    this.outFull = false
    this.generation++
    try {
      readMessage(message, this.outbound)
      if (this.outFull) {
        const peer = this.peers.get(peerKey)
        if (peer !== undefined) {
          this.settleStale(peer, now)
        }
      }
    } finally {
      this.flush()
    }
  }

  /**
   * A whole message (frame body) received from `peerKey`. It counts all or nothing, as helia drops
   * a message it cannot decode: a malformed one throws `InvalidMessageError` and changes nothing.
   * Presences are applied before blocks (see the block matching heuristic).
   */
  receivedMessage (peerKey: string, message: Uint8Array, now: number): void {
    this.inPresenceCount = 0
    this.inBlockCount = 0
    try {
      readMessage(message, this.inbound)
    } catch (err) {
      this.inPresenceCount = 0
      this.inBlockCount = 0
      throw err
    }
    const presences = this.inPresenceCount
    const blocks = this.inBlockCount
    this.inPresenceCount = 0
    this.inBlockCount = 0
    for (let i = 0; i < presences; i++) {
      this.applyPresence(peerKey, this.inPresenceKeys[i], this.inPresenceTypes[i], now)
    }
    for (let i = 0; i < blocks; i++) {
      this.applyBlock(peerKey, this.inBlockKeys[i], now)
    }
    // don't pin a huge message's keys until the next one
    if (presences > 1024) {
      this.inPresenceKeys.length = 0
      this.inPresenceTypes.length = 0
    }
    if (blocks > 1024) {
      this.inBlockKeys.length = 0
    }
    this.flush()
  }

  /** A block received from `peerKey`, known by its CID prefix only (see `receivedMessage` for order) */
  blockReceived (peerKey: string, prefix: Uint8Array, now: number): void {
    this.applyBlock(peerKey, prefixKey(prefix), now)
    this.flush()
  }

  /** A HAVE or DONT_HAVE received from `peerKey` */
  presenceReceived (peerKey: string, cid: Uint8Array, type: PresenceType, now: number): void {
    this.applyPresence(peerKey, multihashKey(cid), type, now)
    this.flush()
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
    this.flush()
  }

  /**
   * Misses every want whose deadline has passed (`sink.missed`), and returns when the next one
   * falls due (Infinity if none), for the caller's single timer. Answers check their own deadline
   * too, so a late timer never turns a late answer into a timely one.
   */
  expire (now: number): number {
    const heap = this.heap
    while (heap.length > 0 && heap[0].dueAt <= now) {
      const peer = heap[0]
      this.missOverdue(peer.dueBlock, now)
      this.missOverdue(peer.dueHave, now)
      this.reschedule(peer)
    }
    this.flush()
    return this.nextDeadline
  }

  /** The peer's current deadline for a want of this type, ms */
  peerDeadline (peerKey: string, wantType: WantType = WantType.Block): number {
    const peer = this.peers.get(peerKey)
    return peer === undefined ? this.coldDeadline : this.deadline(peer, wantType)
  }

  /** The peer's latency EWMA for blocks or presences, ms, or undefined before a sample */
  peerLatency (peerKey: string, kind: 'block' | 'presence' = 'block'): number | undefined {
    const peer = this.peers.get(peerKey)
    if (peer === undefined) {
      return undefined
    }
    if (kind === 'block') {
      return peer.blockSamples > 0 ? peer.blockEwma : undefined
    }
    return peer.presenceSamples > 0 ? peer.presenceEwma : undefined
  }

  /** Wants remembered for one peer (open or ended) */
  peerWants (peerKey: string): number {
    return this.peers.get(peerKey)?.wants.size ?? 0
  }

  /** Forgets a peer (disconnected): its wants end without verdict, its EWMAs are dropped */
  removePeer (peerKey: string): void {
    const peer = this.peers.get(peerKey)
    if (peer !== undefined) {
      this.dropPeer(peer)
    }
  }

  /** Forgets everything. Queued verdicts are still delivered. */
  clear (): void {
    for (const peer of this.peers.values()) {
      peer.removed = true
      peer.heapIndex = -1
    }
    this.peers.clear()
    this.byKey.clear()
    this.heap.length = 0
    this.lruHead = this.lruTail = null
    this.wantCount = 0
  }

  // -- recording what we send --

  private recordSent (peerKey: string, cid: Uint8Array, wantType: WantType, sendDontHave: boolean, cancel: boolean, now: number): void {
    const key = multihashKey(cid)
    if (key === undefined) {
      return // not a CID: no peer could answer it
    }
    let peer = this.peers.get(peerKey)
    if (peer === undefined) {
      if (cancel) {
        return
      }
      peer = this.addPeer(peerKey)
    }
    this.touch(peer)
    this.purgeEnded(peer, now)
    let want = peer.wants.get(key)
    if (cancel) {
      if (want !== undefined && want.state !== SETTLED) {
        this.missIfOverdue(want, now)
        this.settleWant(want, now)
        this.reschedule(peer)
      }
      return
    }
    if (want !== undefined) {
      this.missIfOverdue(want, now)
      this.detach(want)
      if (want.wantType !== WantType.Block) {
        want.wantType = wantType
      }
      want.sendDontHave = sendDontHave
      want.sentAt = now
      want.state = OPEN
    } else {
      if (peer.wants.size >= this.maxWantsPerPeer) {
        this.evictOne(peer)
      }
      want = new Want(key, prefixOfCid(cid) ?? '', peer, wantType, sendDontHave, now)
      peer.wants.set(key, want)
      this.wantCount++
      const first = this.byKey.get(key)
      if (first === undefined) {
        this.byKey.set(key, want)
      } else {
        want.sameNext = first.sameNext
        want.samePrev = first
        if (first.sameNext !== null) {
          first.sameNext.samePrev = want
        }
        first.sameNext = want
      }
    }
    want.generation = this.generation
    this.attachOpen(want)
    this.reschedule(peer)
  }

  /** After a full wantlist: the peer dropped every want the message did not list */
  private settleStale (peer: PeerState, now: number): void {
    for (const want of peer.wants.values()) {
      if (want.state !== SETTLED && want.generation !== this.generation) {
        this.missIfOverdue(want, now)
        this.settleWant(want, now)
      }
    }
    this.reschedule(peer)
  }

  // -- answers --

  private applyPresence (peerKey: string, key: string | undefined, type: number, now: number): void {
    const peer = this.peers.get(peerKey)
    if (peer !== undefined) {
      this.purgeEnded(peer, now)
    }
    const want = key === undefined ? undefined : peer?.wants.get(key)
    if (peer === undefined || want === undefined) {
      this.emit(EVENT_UNREQUESTED, peerKey, 'presence', 0, 0)
      return
    }
    this.touch(peer)
    if (want.state === SETTLED) {
      return // a duplicate, or an answer after the want was met elsewhere: neutral
    }
    this.missIfOverdue(want, now)
    const latency = Math.max(0, now - want.sentAt)
    const kind: AnswerKind = type === PresenceType.DontHave ? 'dont-have' : 'have'
    this.sample(peer, false, latency)
    // a HAVE to a want-block is not its answer: the block still has to come
    const ends = type === PresenceType.DontHave || want.wantType === WantType.Have
    if (want.state === OPEN) {
      if (ends) {
        this.settleWant(want, now)
        this.emit(EVENT_ANSWERED, peerKey, kind, latency, 0)
      }
    } else {
      if (ends) {
        this.settleWant(want, now)
      }
      this.emit(EVENT_LATE, peerKey, kind, latency, 0)
    }
    this.reschedule(peer)
  }

  private applyBlock (peerKey: string, prefix: string | undefined, now: number): void {
    const peer = this.peers.get(peerKey)
    if (peer !== undefined) {
      this.purgeEnded(peer, now)
    }
    const bucket = prefix === undefined ? undefined : peer?.buckets.get(prefix)
    // open wants first; then a missed one (a late answer); then an ended one (a duplicate)
    const want = bucket === undefined ? null : (bucket.openBlock.head ?? bucket.openHave.head ?? bucket.late.head ?? bucket.settled.head)
    if (peer === undefined || want === null) {
      this.emit(EVENT_UNREQUESTED, peerKey, 'block', 0, 0)
      return
    }
    this.touch(peer)
    this.missIfOverdue(want, now)
    if (want.state === SETTLED) {
      // a duplicate or an answer after the want ended: neutral, and it uses up the want, so a
      // peer cannot pass off more blocks than it had wants
      this.removeWant(want)
      return
    }
    const latency = Math.max(0, now - want.sentAt)
    this.sample(peer, true, latency)
    this.emit(want.state === OPEN ? EVENT_ANSWERED : EVENT_LATE, peerKey, 'block', latency, 0)
    // the content arrived: everyone else's want for it is moot
    this.neutralise(want.key, want, now)
    // kept while retained, so a duplicate of this block is not unrequested
    this.settleWant(want, now)
    this.reschedule(peer)
  }

  /** Ends, neutral, every open or late want for `key` except `except` */
  private neutralise (key: string, except: Want | null, now: number): void {
    for (let want = this.byKey.get(key) ?? null; want !== null; want = want.sameNext) {
      if (want !== except && want.state !== SETTLED) {
        this.missIfOverdue(want, now)
        this.settleWant(want, now)
        this.reschedule(want.peer)
      }
    }
  }

  private sample (peer: PeerState, block: boolean, latency: number): void {
    if (block) {
      peer.blockEwma = peer.blockSamples === 0 ? latency : peer.blockEwma + this.ewmaAlpha * (latency - peer.blockEwma)
      peer.blockSamples++
    } else {
      peer.presenceEwma = peer.presenceSamples === 0 ? latency : peer.presenceEwma + this.ewmaAlpha * (latency - peer.presenceEwma)
      peer.presenceSamples++
    }
  }

  private deadline (peer: PeerState, wantType: WantType): number {
    let latency: number
    if (wantType === WantType.Have) {
      if (peer.presenceSamples > 0) {
        latency = peer.presenceEwma
      } else if (peer.blockSamples > 0) {
        latency = peer.blockEwma
      } else {
        return this.coldDeadline
      }
    } else if (peer.blockSamples > 0) {
      latency = peer.presenceSamples > 0 ? Math.max(peer.blockEwma, peer.presenceEwma) : peer.blockEwma
    } else {
      return this.coldDeadline
    }
    return Math.min(this.maxDeadline, Math.max(this.minDeadline, this.deadlineMultiplier * latency))
  }

  // -- misses --

  private missOverdue (list: WantList, now: number): void {
    for (let want = list.head; want !== null; want = list.head) {
      if (!this.missIfOverdue(want, now)) {
        return
      }
    }
  }

  /** Misses an open, missable want whose deadline has passed; returns whether it did */
  private missIfOverdue (want: Want, now: number): boolean {
    if (want.state !== OPEN || !want.sendDontHave) {
      return false
    }
    const deadline = this.deadline(want.peer, want.wantType)
    if (now < want.sentAt + deadline) {
      return false
    }
    this.detach(want)
    want.state = LATE
    want.endedAt = now
    append(want.peer.ended, want)
    matchAppend(this.bucket(want).late, want)
    this.emit(EVENT_MISSED, want.peer.key, '', now - want.sentAt, deadline)
    return true
  }

  // -- want lists --

  private bucket (want: Want): PrefixBucket {
    let bucket = want.peer.buckets.get(want.prefix)
    if (bucket === undefined) {
      bucket = new PrefixBucket()
      want.peer.buckets.set(want.prefix, bucket)
    }
    return bucket
  }

  private attachOpen (want: Want): void {
    const peer = want.peer
    const block = want.wantType === WantType.Block
    append(want.sendDontHave ? (block ? peer.dueBlock : peer.dueHave) : peer.quiet, want)
    const bucket = this.bucket(want)
    matchAppend(block ? bucket.openBlock : bucket.openHave, want)
  }

  private detach (want: Want): void {
    unlink(want)
    matchUnlink(want)
  }

  private settleWant (want: Want, now: number): void {
    this.detach(want)
    want.state = SETTLED
    want.endedAt = now
    append(want.peer.ended, want)
    matchAppend(this.bucket(want).settled, want)
  }

  private removeWant (want: Want): void {
    this.detach(want)
    want.peer.wants.delete(want.key)
    this.wantCount--
    if (want.samePrev === null) {
      if (want.sameNext === null) {
        this.byKey.delete(want.key)
      } else {
        this.byKey.set(want.key, want.sameNext)
        want.sameNext.samePrev = null
      }
    } else {
      want.samePrev.sameNext = want.sameNext
      if (want.sameNext !== null) {
        want.sameNext.samePrev = want.samePrev
      }
    }
    want.samePrev = want.sameNext = null
  }

  /** Forgets wants that ended more than `settledRetention` ago */
  private purgeEnded (peer: PeerState, now: number): void {
    const cutoff = now - this.settledRetention
    for (let want = peer.ended.head; want !== null && want.endedAt <= cutoff; want = peer.ended.head) {
      this.removeWant(want)
    }
  }

  /** Makes room for one want: the oldest ended, else oldest silent, else oldest missable */
  private evictOne (peer: PeerState): void {
    let victim = peer.ended.head ?? peer.quiet.head
    if (victim === null) {
      const block = peer.dueBlock.head
      const have = peer.dueHave.head
      victim = block === null ? have : have === null || block.sentAt <= have.sentAt ? block : have
    }
    if (victim !== null) {
      this.removeWant(victim)
      this.reschedule(peer)
    }
  }

  // -- peers --

  private addPeer (peerKey: string): PeerState {
    if (this.peers.size >= this.maxPeers && this.lruHead !== null) {
      this.dropPeer(this.lruHead)
    }
    const peer = new PeerState(peerKey)
    this.peers.set(peerKey, peer)
    peer.lruPrev = this.lruTail
    if (this.lruTail === null) {
      this.lruHead = peer
    } else {
      this.lruTail.lruNext = peer
    }
    this.lruTail = peer
    return peer
  }

  private touch (peer: PeerState): void {
    if (this.lruTail === peer) {
      return
    }
    // unlink
    if (peer.lruPrev === null) {
      this.lruHead = peer.lruNext
    } else {
      peer.lruPrev.lruNext = peer.lruNext
    }
    if (peer.lruNext !== null) {
      peer.lruNext.lruPrev = peer.lruPrev
    }
    // append
    peer.lruPrev = this.lruTail
    peer.lruNext = null
    if (this.lruTail === null) {
      this.lruHead = peer
    } else {
      this.lruTail.lruNext = peer
    }
    this.lruTail = peer
  }

  private dropPeer (peer: PeerState): void {
    for (const want of peer.wants.values()) {
      this.removeWant(want)
    }
    this.heapRemove(peer)
    if (peer.lruPrev === null) {
      this.lruHead = peer.lruNext
    } else {
      peer.lruPrev.lruNext = peer.lruNext
    }
    if (peer.lruNext === null) {
      this.lruTail = peer.lruPrev
    } else {
      peer.lruNext.lruPrev = peer.lruPrev
    }
    peer.lruPrev = peer.lruNext = null
    peer.removed = true
    this.peers.delete(peer.key)
  }

  // -- deadline heap --

  /** Recomputes when the peer's next want misses and moves it in the heap */
  private reschedule (peer: PeerState): void {
    if (peer.removed) {
      return
    }
    let dueAt = Infinity
    if (peer.dueBlock.head !== null) {
      dueAt = peer.dueBlock.head.sentAt + this.deadline(peer, WantType.Block)
    }
    if (peer.dueHave.head !== null) {
      dueAt = Math.min(dueAt, peer.dueHave.head.sentAt + this.deadline(peer, WantType.Have))
    }
    if (dueAt === peer.dueAt && (peer.heapIndex >= 0) === (dueAt !== Infinity)) {
      return
    }
    const previous = peer.dueAt
    peer.dueAt = dueAt
    if (dueAt === Infinity) {
      this.heapRemove(peer)
    } else if (peer.heapIndex < 0) {
      peer.heapIndex = this.heap.length
      this.heap.push(peer)
      this.siftUp(peer.heapIndex)
    } else if (dueAt < previous) {
      this.siftUp(peer.heapIndex)
    } else {
      this.siftDown(peer.heapIndex)
    }
  }

  private heapRemove (peer: PeerState): void {
    const index = peer.heapIndex
    peer.dueAt = Infinity
    if (index < 0) {
      return
    }
    peer.heapIndex = -1
    const last = this.heap.pop() as PeerState
    if (last !== peer) {
      this.heap[index] = last
      last.heapIndex = index
      this.siftDown(index)
      this.siftUp(last.heapIndex)
    }
  }

  private siftUp (index: number): void {
    const heap = this.heap
    const item = heap[index]
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = heap[parentIndex]
      if (parent.dueAt <= item.dueAt) {
        break
      }
      heap[index] = parent
      parent.heapIndex = index
      index = parentIndex
    }
    heap[index] = item
    item.heapIndex = index
  }

  private siftDown (index: number): void {
    const heap = this.heap
    const length = heap.length
    const item = heap[index]
    for (;;) {
      const left = 2 * index + 1
      if (left >= length) {
        break
      }
      const right = left + 1
      const child = right < length && heap[right].dueAt < heap[left].dueAt ? right : left
      if (heap[child].dueAt >= item.dueAt) {
        break
      }
      heap[index] = heap[child]
      heap[index].heapIndex = index
      index = child
    }
    heap[index] = item
    item.heapIndex = index
  }

  // -- verdict delivery --

  private emit (type: number, peerKey: string, kind: string, a: number, b: number): void {
    const i = this.eventCount++
    this.eventType[i] = type
    this.eventPeer[i] = peerKey
    this.eventKind[i] = kind
    this.eventA[i] = a
    this.eventB[i] = b
  }

  private flush (): void {
    if (this.flushing) {
      return // the outer flush delivers what a re-entrant call queued
    }
    this.flushing = true
    const sink = this.sink
    try {
      for (let i = 0; i < this.eventCount; i++) {
        const peerKey = this.eventPeer[i]
        try {
          switch (this.eventType[i]) {
            case EVENT_ANSWERED:
              sink.answered(peerKey, this.eventKind[i] as AnswerKind, this.eventA[i])
              break
            case EVENT_MISSED:
              sink.missed(peerKey, this.eventA[i], this.eventB[i])
              break
            case EVENT_UNREQUESTED:
              sink.unrequested(peerKey, this.eventKind[i] as 'block' | 'presence')
              break
            case EVENT_LATE:
              sink.late?.(peerKey, this.eventKind[i] as AnswerKind, this.eventA[i])
              break
            default:
          }
        } catch {
          // the sink's errors are its own; the ledger is already consistent
        }
      }
    } finally {
      this.eventCount = 0
      this.flushing = false
    }
  }
}
