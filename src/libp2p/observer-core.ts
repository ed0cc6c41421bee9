import { FrameDecoder, DEFAULT_MAX_MESSAGE_SIZE } from '../bitswap/frames.ts'
import { WantDeadlineError } from '../bitswap/errors.ts'
import { WantLedger } from '../bitswap/want-ledger.ts'
import { DEFAULT_LEDGER_MAX_PEERS } from '../bitswap/want-ledger-init.ts'
import { countWantlistEntries, lastPresenceCount } from '../bitswap/message.ts'
import { CircuitOpenError, InboundLimitError } from '../errors.ts'
import { Outcome } from '../states.ts'
import { checkNumber } from '../validate.ts'
import { InboundLimits, InboundUsage } from './inbound-limits.ts'
import type { DeadlineScheduler } from './deadline-scheduler.ts'
import type { Chunk, InboundObservation, OutboundObservation } from './observed-stream.ts'
import type { AbuseReason, BitswapObserverInit, ObserverSink, ObserverStats } from './observer.ts'
import type { AnswerKind, WantOutcomeSink } from '../bitswap/verdicts.ts'
import type { ReleaseReason } from '../bitswap/want-release.ts'
import type { Clock } from '../clock.ts'
import type { PeerId } from '@libp2p/interface'

/** A peer's record: its id (the ledger knows only its key) and its inbound usage */
export class PeerEntry extends InboundUsage {
  readonly id: PeerId
  readonly key: string
  /** Forgotten (removePeer, eviction, stop): streams still holding it pass data through unobserved */
  removed = false
  /** Its inbound streams holding a partial frame, to abort when it holds the most of the shared budget */
  partial: Set<InboundObservation> | undefined

  constructor (id: PeerId, key: string, tokens: number, entries: number, now: number) {
    super(tokens, entries, now)
    this.id = id
    this.key = key
  }
}

/** The observer's state: peers, the ledger and its one timer; the stream observations report to it */
export class ObserverCore implements WantOutcomeSink {
  /** Unused for timing: every time here is the scheduler's `now()`, which stops while we are blocked */
  readonly clock: Clock
  readonly maxMessageSize: number
  readonly limits: InboundLimits
  readonly ledger: WantLedger
  readonly stats: Omit<ObserverStats, 'peers' | 'wants' | 'bufferedBytes'> = {
    inboundStreams: 0,
    protocolErrors: 0,
    unrequested: 0,
    inboundBytesRefused: 0,
    inboundStreamsRefused: 0,
    wantlistRefused: 0,
    memoryRefused: 0,
    openRefused: 0
  }

  /** Bumped by stop(): observations made before it pass data through untouched */
  epoch = 0
  /** Insertion order is recency: `entry()` moves a peer to the end, eviction takes from the front */
  readonly peers = new Map<string, PeerEntry>()
  private readonly maxPeers: number
  private readonly scheduler: DeadlineScheduler
  private readonly sink: ObserverSink
  private timer = 0
  private timerAt = Infinity
  private readonly onDeadline = (): void => { this.expire() }
  /** Unrequested items in the message being applied, reported once after it */
  private unrequestedItems = 0

  constructor (init: BitswapObserverInit, sink: ObserverSink) {
    this.clock = init.clock
    this.scheduler = init.scheduler
    this.sink = sink
    this.maxMessageSize = checkNumber('maxMessageSize', init.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE, 1, Infinity, { integer: true })
    this.maxPeers = checkNumber('maxPeers', init.maxPeers ?? DEFAULT_LEDGER_MAX_PEERS, 1, Infinity, { integer: true })
    this.limits = new InboundLimits(init)
    // the same peer bound: the ledger's peers are a subset of ours, so it never evicts on its own
    this.ledger = new WantLedger({ ...init, maxPeers: this.maxPeers }, this)
  }

  // -- peers --

  /** The peer's record, created if needed and marked most recent */
  entry (peer: PeerId): PeerEntry {
    const key = peer.toString()
    let entry = this.peers.get(key)
    if (entry === undefined) {
      if (this.peers.size >= this.maxPeers) {
        this.evictIdle()
      }
      entry = new PeerEntry(peer, key, this.limits.burstBytes, this.limits.maxEntries, this.scheduler.now())
    } else {
      this.peers.delete(key)
    }
    this.peers.set(key, entry)
    return entry
  }

  /** Drops the least recent peer without open inbound streams (with none, the bound stretches) */
  private evictIdle (): void {
    for (const entry of this.peers.values()) {
      if (entry.streams === 0 && entry.buffered === 0 && entry.announced === 0) {
        this.forget(entry)
        return
      }
    }
  }

  forget (entry: PeerEntry): void {
    entry.removed = true
    this.peers.delete(entry.key)
    this.ledger.removePeer(entry.key)
  }

  /** An inbound stream of `entry` was wrapped: it counts until it closes */
  inboundOpened (entry: PeerEntry): void {
    entry.streams++
    this.stats.inboundStreams++
  }

  /** An inbound stream of `entry` closed: drop the record if it holds nothing */
  inboundClosed (entry: PeerEntry): void {
    entry.streams--
    this.stats.inboundStreams--
    if (entry.removed || entry.streams > 0 || !this.limits.idle(entry, this.scheduler.now())) {
      return
    }
    if (this.stranger(entry.key)) {
      entry.removed = true
      this.peers.delete(entry.key)
    }
  }

  // -- data --

  /**
   * Our frames to the peer: the wants in them open (or refresh) ledger entries. `failed`: the send
   * threw, so they are released at once (Bitswap does not notice: it waits for their answers).
   */
  sent (observation: OutboundObservation, data: Chunk, failed = false): void {
    const entry = observation.entry
    if (observation.broken || entry.removed || observation.epoch !== this.epoch) {
      return
    }
    const decoder = observation.decoder ??= new FrameDecoder({ maxMessageSize: Infinity })
    const now = this.scheduler.now()
    try {
      decoder.push(data)
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        observation.carried(this.ledger.sentMessage(entry.key, frame, now, observation.rttMs))
      }
      if (failed) {
        this.outboundFailed(observation)
      }
    } catch {
      // our own Bitswap wrote it, so the peer is not to blame: stop reading this stream
      observation.broken = true
      decoder.reset()
    }
    this.arm()
  }

  /** An outbound stream failed: the wants it carried are released (want-release.ts) */
  outboundFailed (observation: OutboundObservation): void {
    if (observation.firstGeneration === 0 || observation.entry.removed || observation.epoch !== this.epoch) {
      return
    }
    this.ledger.release(observation.entry.key, 'send_failed', this.clock.now(), observation.firstGeneration, observation.lastGeneration)
    this.arm()
  }

  /** Releases every wait on the peer (its circuit opened, or it disconnected) */
  releasePeer (key: string, reason: 'circuit_open' | 'disconnect'): number {
    const released = this.ledger.release(key, reason, this.clock.now())
    this.arm()
    return released
  }

  /** A chunk from the peer; false when the stream was aborted for it and must not be delivered */
  received (observation: InboundObservation, data: Chunk): boolean {
    const entry = observation.entry
    if (entry.removed || observation.epoch !== this.epoch) {
      return true
    }
    if (this.sink.blocked?.(entry.id) === true) {
      // OPEN: nothing more from this peer reaches Bitswap, whatever stream it comes on
      this.stats.openRefused++
      observation.failed = true
      this.release(observation)
      observation.stream.abort(new CircuitOpenError())
      return false
    }
    const now = this.scheduler.now()
    const limits = this.limits
    if (!limits.take(entry, data.byteLength, now)) {
      this.stats.inboundBytesRefused++
      this.refuse(observation, 'inbound_bytes', new InboundLimitError(`over ${limits.bytesPerSecond} inbound Bitswap bytes per second`))
      return false
    }
    const decoder = observation.decoder ??= new FrameDecoder({ maxMessageSize: this.maxMessageSize })
    let error: Error | undefined
    let reason: AbuseReason = 'protocol_error'
    this.unrequestedItems = 0
    try {
      decoder.push(data)
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
        // counted before anything reads the entries, so a huge wantlist costs at most the limit
        const entries = countWantlistEntries(frame, limits.maxEntries)
        if (entries > limits.maxEntries || lastPresenceCount() > limits.maxEntries) {
          reason = 'wantlist_budget'
          throw new InboundLimitError(`a Bitswap message with more than ${limits.maxEntries} wantlist entries or presences`)
        }
        if (!limits.takeEntries(entry, entries, now)) {
          reason = 'wantlist_budget'
          throw new InboundLimitError(`over ${limits.entriesPerSecond} wantlist entries per second`)
        }
        this.ledger.receivedMessage(entry.key, frame, now)
      }
    } catch (err) {
      error = err as Error
    }
    // a message with unrequested parts counts once, however many it carried
    if (this.unrequestedItems > 0) {
      this.unrequestedItems = 0
      this.stats.unrequested++
      this.report(entry, 'unrequested')
    }
    this.arm()
    if (error !== undefined) {
      if (reason === 'wantlist_budget') {
        this.stats.wantlistRefused++
      } else {
        this.stats.protocolErrors++
      }
      this.refuse(observation, reason, error)
      return false
    }
    if (!this.hold(observation, decoder.bufferedBytes, decoder.frameBytes)) {
      return !observation.failed
    }
    return true
  }

  /**
   * Counts the stream's partial frame (`bytes` held, `announced` once whole) in the shared budget and
   * its peer's share; a peer announcing more than its share loses its partial frames, and when the
   * total no longer fits, so does every stranger, then the peer holding the most, until it does.
   * False when that happened (the stream may be among those aborted).
   */
  private hold (observation: InboundObservation, bytes: number, announced: number): boolean {
    const entry = observation.entry
    const delta = bytes - observation.held
    const announcedDelta = announced - observation.announced
    if (delta === 0 && announcedDelta === 0) {
      return true
    }
    observation.held = bytes
    observation.announced = announced
    if (bytes > 0) {
      (entry.partial ??= new Set()).add(observation)
    } else {
      entry.partial?.delete(observation)
    }
    if (this.limits.hold(entry, delta, announcedDelta)) {
      return true
    }
    if (this.limits.overShare(entry)) {
      this.evictPartial(entry, `partial Bitswap frames announcing over ${this.limits.maxBufferedPerPeer} bytes`)
    }
    if (!this.limits.withinBuffered) {
      // over budget, strangers (never asked, never answered: no frame of theirs can be an answer) all go first
      for (const peer of this.peers.values()) {
        if (peer.buffered > 0 && this.stranger(peer.key)) {
          this.evictPartial(peer, `unrequested partial Bitswap frames while over ${this.limits.maxBuffered} bytes for all peers`)
        }
      }
    }
    while (!this.limits.withinBuffered) {
      let largest: PeerEntry | undefined
      for (const peer of this.peers.values()) {
        if (peer.buffered > (largest?.buffered ?? 0)) {
          largest = peer
        }
      }
      if (largest === undefined) {
        break
      }
      this.evictPartial(largest, `holding the most of ${this.limits.maxBuffered} bytes of partial Bitswap frames`)
    }
    return false
  }

  /** The ledger knows no want we sent the peer and no answer from it */
  private stranger (key: string): boolean {
    const ledger = this.ledger
    return ledger.peerWants(key) === 0 && ledger.peerLatency(key, 'block') === undefined && ledger.peerLatency(key, 'presence') === undefined
  }

  /** Aborts every stream of `entry` holding a partial frame and reports it, once */
  private evictPartial (entry: PeerEntry, why: string): void {
    // the message names the rule that cut this peer: its own share, a stranger's, or the largest holder
    const err = new InboundLimitError(why)
    const streams = entry.partial === undefined ? [] : [...entry.partial]
    for (const observation of streams) {
      this.stats.memoryRefused++
      observation.failed = true
      this.release(observation)
      observation.stream.abort(err)
    }
    if (entry.buffered > 0 || entry.announced > 0) {
      // bytes of streams no longer listed: forget them rather than evict this peer forever
      this.limits.hold(entry, -entry.buffered, -entry.announced)
    }
    this.report(entry, 'inbound_memory', err)
  }

  /** Drops the stream's partial frame and its share of the budget */
  release (observation: InboundObservation): void {
    observation.decoder?.reset()
    if ((observation.held !== 0 || observation.announced !== 0) && observation.epoch === this.epoch) {
      this.limits.hold(observation.entry, -observation.held, -observation.announced)
      observation.held = 0
      observation.announced = 0
    }
    observation.entry.partial?.delete(observation)
  }

  /** Aborts the stream (the handler would drop it anyway) and reports the peer */
  private refuse (observation: InboundObservation, reason: AbuseReason, err: Error): void {
    observation.failed = true
    this.release(observation)
    observation.stream.abort(err)
    this.report(observation.entry, reason, err)
  }

  private report (entry: PeerEntry, reason: AbuseReason, err?: Error): void {
    try {
      this.sink.abuse(entry.id, reason, err)
    } catch {
      // the sink's failure is its own; the stream's fate is decided
    }
  }

  // -- WantOutcomeSink: the ledger's verdicts --

  answered (peerKey: string, kind: AnswerKind, latencyMs: number): void {
    const entry = this.peers.get(peerKey)
    if (entry !== undefined) {
      // a DONT_HAVE is a valid answer: NEUTRAL counts neither way
      this.sink.verdict(entry.id, kind === 'dont-have' ? Outcome.NEUTRAL : Outcome.SUCCESS, latencyMs)
    }
  }

  missed (peerKey: string, ageMs: number, deadlineMs: number): void {
    const entry = this.peers.get(peerKey)
    if (entry !== undefined) {
      this.sink.verdict(entry.id, Outcome.FAILURE, ageMs, new WantDeadlineError(ageMs, deadlineMs))
    }
  }

  unrequested (): void {
    this.unrequestedItems++
  }

  released (peerKey: string, cid: Uint8Array, reason: ReleaseReason): void {
    const entry = this.peers.get(peerKey)
    if (entry !== undefined) {
      this.sink.releaseWant?.(entry.id, cid, reason)
    }
  }

  // -- the one deadline timer --

  /** Arms the scheduler for the ledger's next deadline when it is earlier than the armed one */
  arm (): void {
    const next = this.ledger.nextDeadline
    if (next >= this.timerAt) {
      // later (or none): the armed entry fires early, finds nothing due and re-arms
      return
    }
    if (this.timer !== 0) {
      this.scheduler.cancel(this.timer)
    }
    this.timerAt = next
    this.timer = this.scheduler.schedule(this.scheduler.toClock(next), this.onDeadline)
  }

  private expire (): void {
    this.timer = 0
    this.timerAt = Infinity
    this.ledger.expire(this.scheduler.now())
    this.arm()
  }

  stop (): void {
    this.epoch++
    if (this.timer !== 0) {
      this.scheduler.cancel(this.timer)
      this.timer = 0
    }
    this.timerAt = Infinity
    for (const entry of this.peers.values()) {
      entry.removed = true
    }
    this.peers.clear()
    this.limits.buffered = 0
    this.ledger.clear()
  }
}
