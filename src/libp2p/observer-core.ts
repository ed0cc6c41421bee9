import { FrameDecoder, DEFAULT_MAX_MESSAGE_SIZE } from '../bitswap/frames.ts'
import { WantDeadlineError } from '../bitswap/errors.ts'
import { WantLedger } from '../bitswap/want-ledger.ts'
import { DEFAULT_LEDGER_MAX_PEERS } from '../bitswap/want-ledger-init.ts'
import { InboundLimitError } from '../errors.ts'
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

  constructor (id: PeerId, key: string, tokens: number, now: number) {
    super(tokens, now)
    this.id = id
    this.key = key
  }
}

/** The observer's state: peers, the ledger and its one timer; the stream observations report to it */
export class ObserverCore implements WantOutcomeSink {
  readonly clock: Clock
  readonly maxMessageSize: number
  readonly limits: InboundLimits
  readonly ledger: WantLedger
  readonly stats: Omit<ObserverStats, 'peers' | 'wants'> = {
    inboundStreams: 0, protocolErrors: 0, unrequested: 0, inboundBytesRefused: 0, inboundStreamsRefused: 0
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
      entry = new PeerEntry(peer, key, this.limits.burstBytes, this.clock.now())
    } else {
      this.peers.delete(key)
    }
    this.peers.set(key, entry)
    return entry
  }

  /** Drops the least recent peer without open inbound streams (with none, the bound stretches) */
  private evictIdle (): void {
    for (const entry of this.peers.values()) {
      if (entry.streams === 0) {
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
    if (entry.removed || entry.streams > 0 || !this.limits.idle(entry, this.clock.now())) {
      return
    }
    const key = entry.key
    const ledger = this.ledger
    if (ledger.peerWants(key) === 0 && ledger.peerLatency(key, 'block') === undefined && ledger.peerLatency(key, 'presence') === undefined) {
      entry.removed = true
      this.peers.delete(key)
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
    const now = this.clock.now()
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
    const now = this.clock.now()
    if (!this.limits.take(entry, data.byteLength, now)) {
      this.stats.inboundBytesRefused++
      this.refuse(observation, 'inbound_bytes', new InboundLimitError(`over ${this.limits.bytesPerSecond} inbound Bitswap bytes per second`))
      return false
    }
    const decoder = observation.decoder ??= new FrameDecoder({ maxMessageSize: this.maxMessageSize })
    let error: Error | undefined
    this.unrequestedItems = 0
    try {
      decoder.push(data)
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
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
      this.stats.protocolErrors++
      this.refuse(observation, 'protocol_error', error)
      return false
    }
    return true
  }

  /** Aborts the stream (the handler would drop it anyway) and reports the peer */
  private refuse (observation: InboundObservation, reason: AbuseReason, err: Error): void {
    observation.failed = true
    observation.decoder?.reset()
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
    this.timer = this.scheduler.schedule(next, this.onDeadline)
  }

  private expire (): void {
    this.timer = 0
    this.timerAt = Infinity
    this.ledger.expire(this.clock.now())
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
    this.ledger.clear()
  }
}
