import { WantType } from '../bitswap/message.ts'
import { ObserverCore } from './observer-core.ts'
import { observeInbound, observeOutbound } from './observed-stream.ts'
import type { InboundLimitsInit } from './inbound-limits.ts'
import type { DeadlineScheduler } from './deadline-scheduler.ts'
import type { WantLedgerInit } from '../bitswap/want-ledger-init.ts'
import type { ReleaseReason } from '../bitswap/want-release.ts'
import type { Outcome } from '../states.ts'
import type { Clock } from '../clock.ts'
import type { PeerId, Stream } from '@libp2p/interface'

/**
 * Message-level observation of Bitswap streams: what we ask each peer for and what it answers,
 * read off the streams Bitswap itself uses, plus the per-peer inbound abuse guard.
 *
 * - Outbound streams: `send` also feeds our frames to a per-stream `FrameDecoder` and the wants in
 *   them to the `WantLedger`.
 * - Inbound streams: `message` listeners (and async iteration, which uses them) are wrapped, so each
 *   chunk is charged to the peer's byte budget and its frames reach the ledger before the handler
 *   sees them. No listener of our own is ever attached: a passive `message` listener would make the
 *   stream dispatch data before Bitswap attaches its own (after `close()`), which then gets none.
 * - The ledger's verdicts go to the sink: a block or HAVE is a success, a DONT_HAVE neutral (a valid
 *   answer), a want unanswered by the peer's adaptive deadline a failure (`WantDeadlineError`).
 *   One scheduler entry, armed for the ledger's next deadline, drives every miss.
 * - Garbage frames, oversized or malformed messages and byte floods abort the stream and are
 *   reported as abuse; unrequested blocks and presences are reported (once per message) without
 *   aborting, since helia drops them harmlessly.
 *
 * The wrapped streams are in observed-stream.ts, the peers, ledger and timer in observer-core.ts.
 */

/** What message-level observation concludes about a peer */
export interface ObserverSink {
  /** An answer (SUCCESS or NEUTRAL with its latency) or a miss (FAILURE) */
  verdict(peer: PeerId, outcome: Outcome, latencyMs: number, err?: Error): void
  /** The peer broke the rules: garbage, an oversized message, unrequested data, or an inbound limit */
  abuse(peer: PeerId, reason: AbuseReason, err?: Error): void
  /**
   * Whether nothing more from the peer may reach Bitswap (its circuit is OPEN): asked for every
   * chunk of an admitted inbound stream, which is then aborted, long-lived streams included
   */
  blocked?(peer: PeerId): boolean
  /** The peer will not answer this want: end Bitswap's wait on it (see want-release.ts) */
  releaseWant?(peer: PeerId, cid: Uint8Array, reason: ReleaseReason): void
}

export type AbuseReason = 'protocol_error' | 'unrequested' | 'inbound_streams' | 'inbound_bytes' | 'wantlist_budget' | 'inbound_memory'

/**
 * Adaptive want deadlines (see `WantLedgerInit`; `maxPeers` also bounds the observer's own per-peer
 * records) and inbound limits (see `InboundLimitsInit`)
 */
export interface BitswapObserverInit extends WantLedgerInit, InboundLimitsInit {
  /** The time base of every timestamp; the scheduler's clock */
  clock: Clock
  /** The service's shared timer: the observer keeps at most one entry in it @internal */
  scheduler: DeadlineScheduler

  /**
   * Largest Bitswap message (frame body) accepted from a peer, bytes; a larger length prefix is a
   * protocol error
   *
   * @default 4194304 (4 MiB, @helia/bitswap's effective limit)
   */
  maxMessageSize?: number
}

/** Counters since construction */
export interface ObserverStats {
  /** Peers with a record (a wrapped stream, ledger state or byte debt) */
  peers: number
  /** Wants remembered by the ledger, open or ended */
  wants: number
  /** Inbound Bitswap streams open now, across peers */
  inboundStreams: number
  /** Inbound streams aborted for garbage frames, oversized or malformed messages */
  protocolErrors: number
  /** Messages carrying blocks or presences nobody asked that peer for */
  unrequested: number
  /** Inbound streams aborted because their peer was over its byte rate */
  inboundBytesRefused: number
  /** Inbound streams refused because their peer held too many */
  inboundStreamsRefused: number
  /** Inbound streams aborted for a wantlist over the per-message or per-peer entry budget */
  wantlistRefused: number
  /** Inbound streams aborted because their peer held the most of the shared partial-frame budget */
  memoryRefused: number
  /** Inbound streams aborted because their peer's circuit was OPEN */
  openRefused: number
  /** Bytes of partial frames held now, across peers */
  bufferedBytes: number
}

/**
 * Message-level observation of Bitswap streams and the inbound abuse guard, for one libp2p node.
 */
export class BitswapObserver {
  private readonly core: ObserverCore

  constructor (init: BitswapObserverInit, sink: ObserverSink) {
    this.core = new ObserverCore(init, sink)
  }

  /**
   * May this peer open another inbound Bitswap stream? False when it already holds
   * `maxInboundStreamsPerPeer` (the caller refuses the stream and reports it).
   */
  admitInbound (peer: PeerId): boolean {
    const entry = this.core.peers.get(peer.toString())
    if (entry === undefined || this.core.limits.canOpen(entry)) {
      return true
    }
    this.core.stats.inboundStreamsRefused++
    return false
  }

  /**
   * The stream to hand to the Bitswap handler in place of `stream`: its chunks are checked and
   * observed before the handler's `message` listeners see them. Counts against the peer's open
   * inbound streams until it closes. A stream already over is returned as it is.
   */
  wrapInbound (stream: Stream, peer: PeerId): Stream {
    if (stream.status !== 'open') {
      return stream
    }
    return observeInbound(stream, this.core, this.core.entry(peer))
  }

  /**
   * The stream to hand to Bitswap in place of `stream`: the wants it sends are recorded, and
   * released if it fails. `rttMs`: its connection's RTT, for the peer's cold want deadline.
   */
  wrapOutbound (stream: Stream, peer: PeerId, rttMs?: number): Stream {
    return observeOutbound(stream, this.core, this.core.entry(peer), rttMs != null && rttMs > 0 ? rttMs : 0)
  }

  /**
   * Releases every wait Bitswap has on the peer (`circuit_open`, `disconnect`): the sink hears
   * `releaseWant` once per unanswered want; returns how many
   */
  releasePeer (peer: PeerId, reason: 'circuit_open' | 'disconnect'): number {
    return this.core.releasePeer(peer.toString(), reason)
  }

  /** The peer's current want-block deadline (ms): adaptive once it has answered, cautious before */
  deadlineFor (peer: PeerId): number {
    return this.core.ledger.peerDeadline(peer.toString(), WantType.Block)
  }

  /** The peer's want-to-block latency EWMA (ms), or undefined before its first block */
  latencyFor (peer: PeerId): number | undefined {
    return this.core.ledger.peerLatency(peer.toString(), 'block')
  }

  /** Whether wants we sent the peer are still open: its inbound streams may carry their answers */
  awaitingAnswers (peer: PeerId): boolean {
    return this.core.ledger.peerWants(peer.toString(), true) > 0
  }

  /** Inbound Bitswap streams the peer holds open now */
  inboundStreams (peer: PeerId): number {
    return this.core.peers.get(peer.toString())?.streams ?? 0
  }

  /** Counters and sizes, for status and metrics (`bufferedBytes` across peers, as the shared budget counts it) */
  get stats (): ObserverStats {
    const core = this.core
    return { ...core.stats, peers: core.peers.size, wants: core.ledger.size, bufferedBytes: core.limits.buffered }
  }

  /**
   * Forgets a peer (it disconnected): its wants end without verdict, its latency history and byte
   * debt are dropped, and streams still open from it pass through unobserved
   */
  removePeer (peer: PeerId): void {
    const core = this.core
    const key = peer.toString()
    const entry = core.peers.get(key)
    if (entry !== undefined) {
      core.forget(entry)
    } else {
      core.ledger.removePeer(key)
    }
  }

  /** Cancels the deadline timer and forgets everything; streams wrapped so far pass through */
  stop (): void {
    this.core.stop()
  }
}
