import { LinkedList, ListNode } from '../util/linked-list.ts'
import { WantType } from './message.ts'
import type { HeapItem } from '../util/min-heap.ts'
import type { WantLedgerConfig } from './want-ledger-init.ts'

/** What a deadline is made of */
export type DeadlineBounds = Pick<WantLedgerConfig, 'minDeadline' | 'maxDeadline' | 'coldDeadline' | 'coldRttMultiplier' | 'deadlineMultiplier'>

/** A want's life: open until answered or missed; late once missed; settled once answered or ended neutral */
export type WantState = 'open' | 'late' | 'settled'

/** One want we sent to one peer, for one CID (multihash key) */
export class Want {
  readonly key: string
  readonly prefix: string
  readonly peer: PeerWants
  wantType: WantType
  sendDontHave: boolean
  sentAt: number
  state: WantState = 'open'
  /** When it missed or settled, for retention */
  endedAt = 0
  /** `sentMessage` call that last sent it, to find wants a full wantlist left out */
  generation = 0
  /** The peer said HAVE: Bitswap's wait on this peer has ended, it must never be released */
  haveSeen = false
  /** A DONT_HAVE was delivered on the peer's behalf (want-release.ts): at most once per want */
  released = false
  /** In one of the peer's lists: due (block or have), quiet or ended */
  readonly inPeer = new ListNode<Want>(this)
  /** In one of its prefix bucket's lists, for block matching */
  readonly inBucket = new ListNode<Want>(this)
  /** Among every peer's wants for the same CID */
  readonly sameCid = new ListNode<Want>(this)

  constructor (key: string, prefix: string, peer: PeerWants, wantType: WantType, sendDontHave: boolean, sentAt: number) {
    this.key = key
    this.prefix = prefix
    this.peer = peer
    this.wantType = wantType
    this.sendDontHave = sendDontHave
    this.sentAt = sentAt
  }

  /** Out of its peer and bucket lists (not out of the peer's map or the CID's list) */
  detach (): void {
    this.inPeer.unlink()
    this.inBucket.unlink()
  }
}

/** One peer's wants sharing a CID prefix, in sent (or ended) order */
export class PrefixBucket {
  readonly openBlock = new LinkedList<Want>()
  readonly openHave = new LinkedList<Want>()
  readonly late = new LinkedList<Want>()
  readonly settled = new LinkedList<Want>()

  /** The want a block with this prefix answers: open first, then a missed one (late), then an ended one (a duplicate) */
  match (): Want | undefined {
    return this.openBlock.first ?? this.openHave.first ?? this.late.first ?? this.settled.first
  }
}

/** A peer's record in the ledger: its wants, in the orders the ledger needs them, and its latency */
export class PeerWants implements HeapItem {
  readonly key: string
  readonly wants = new Map<string, Want>()
  /** Open, sendDontHave, want-block: the FIFO that can miss, by sent time */
  readonly dueBlock = new LinkedList<Want>()
  /** Open, sendDontHave, want-have */
  readonly dueHave = new LinkedList<Want>()
  /** Open, not missable */
  readonly quiet = new LinkedList<Want>()
  /** Late or settled, in the order they ended */
  readonly ended = new LinkedList<Want>()
  readonly buckets = new Map<string, PrefixBucket>()
  /** Round-trip time of its connection, ms, for the cold deadline (0: unknown) */
  rttMs = 0
  blockEwma = 0
  blockSamples = 0
  presenceEwma = 0
  presenceSamples = 0
  /** Earliest time one of its wants misses, or Infinity (the ledger's deadline heap key) */
  heapKey = Infinity
  heapSeq = 0
  heapIndex = -1
  /** In the ledger's recency list, least recently active first */
  readonly recency = new ListNode<PeerWants>(this)
  removed = false

  constructor (key: string) {
    this.key = key
  }

  bucket (prefix: string): PrefixBucket {
    let bucket = this.buckets.get(prefix)
    if (bucket === undefined) {
      bucket = new PrefixBucket()
      this.buckets.set(prefix, bucket)
    }
    return bucket
  }

  /** Files an open want under the lists it belongs to now */
  attachOpen (want: Want): void {
    const block = want.wantType === WantType.Block
    ;(want.sendDontHave ? (block ? this.dueBlock : this.dueHave) : this.quiet).push(want.inPeer)
    const bucket = this.bucket(want.prefix)
    ;(block ? bucket.openBlock : bucket.openHave).push(want.inBucket)
  }

  /** Files a want that just ended (late or settled) */
  attachEnded (want: Want): void {
    this.ended.push(want.inPeer)
    const bucket = this.bucket(want.prefix)
    ;(want.state === 'late' ? bucket.late : bucket.settled).push(want.inBucket)
  }

  /** One latency sample: the first sets the EWMA, later ones move it by `alpha` */
  sample (block: boolean, latency: number, alpha: number): void {
    if (block) {
      this.blockEwma = this.blockSamples === 0 ? latency : this.blockEwma + alpha * (latency - this.blockEwma)
      this.blockSamples++
    } else {
      this.presenceEwma = this.presenceSamples === 0 ? latency : this.presenceEwma + alpha * (latency - this.presenceEwma)
      this.presenceSamples++
    }
  }

  /** Its latency EWMA for blocks or presences, ms, or undefined before a sample */
  latency (kind: 'block' | 'presence'): number | undefined {
    if (kind === 'block') {
      return this.blockSamples > 0 ? this.blockEwma : undefined
    }
    return this.presenceSamples > 0 ? this.presenceEwma : undefined
  }

  /**
   * The peer's deadline for a want of this type, ms: want-block from the slower of its two EWMAs,
   * want-have from the presence one (else the block one); before any sample, boxo's cold rule
   * `coldDeadline + coldRttMultiplier × RTT`
   */
  deadline (wantType: WantType, bounds: DeadlineBounds): number {
    let latency: number
    if (wantType === WantType.Have) {
      if (this.presenceSamples > 0) {
        latency = this.presenceEwma
      } else if (this.blockSamples > 0) {
        latency = this.blockEwma
      } else {
        return bounds.coldDeadline + bounds.coldRttMultiplier * this.rttMs
      }
    } else if (this.blockSamples > 0) {
      latency = this.presenceSamples > 0 ? Math.max(this.blockEwma, this.presenceEwma) : this.blockEwma
    } else {
      return bounds.coldDeadline + bounds.coldRttMultiplier * this.rttMs
    }
    return Math.min(bounds.maxDeadline, Math.max(bounds.minDeadline, bounds.deadlineMultiplier * latency))
  }

  /** When its oldest missable want of either type misses, or Infinity */
  nextMiss (bounds: DeadlineBounds): number {
    let dueAt = Infinity
    const block = this.dueBlock.first
    if (block !== undefined) {
      dueAt = block.sentAt + this.deadline(WantType.Block, bounds)
    }
    const have = this.dueHave.first
    if (have !== undefined) {
      dueAt = Math.min(dueAt, have.sentAt + this.deadline(WantType.Have, bounds))
    }
    return dueAt
  }

  /** The want to drop to make room: the oldest ended, else the oldest silent, else the oldest missable */
  evictionVictim (): Want | undefined {
    const victim = this.ended.first ?? this.quiet.first
    if (victim !== undefined) {
      return victim
    }
    const block = this.dueBlock.first
    const have = this.dueHave.first
    return block === undefined ? have : have === undefined || block.sentAt <= have.sentAt ? block : have
  }
}
