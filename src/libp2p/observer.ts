import type { DeadlineScheduler } from './deadline-scheduler.ts'
import type { Clock } from '../clock.ts'
import type { Outcome } from '../states.ts'
import type { PeerId, Stream } from '@libp2p/interface'

/** What message-level observation concludes about a peer */
export interface ObserverSink {
  /** An answer (SUCCESS or NEUTRAL with its latency) or a miss (FAILURE) */
  verdict(peer: PeerId, outcome: Outcome, latencyMs: number, err?: Error): void
  /** The peer broke the rules: garbage, an oversized message, unrequested data, or an inbound limit */
  abuse(peer: PeerId, reason: AbuseReason, err?: Error): void
}

export type AbuseReason = 'protocol_error' | 'unrequested' | 'inbound_streams' | 'inbound_bytes'

export interface BitswapObserverInit {
  clock: Clock
  scheduler: DeadlineScheduler
}

/**
 * Message-level observation of Bitswap streams (placeholder: passes streams through untouched
 * until the observer lands).
 */
export class BitswapObserver {
  constructor (_init: BitswapObserverInit, _sink: ObserverSink) {}

  /** May this peer open another inbound Bitswap stream? */
  admitInbound (_peer: PeerId): boolean {
    return true
  }

  wrapInbound (stream: Stream, _peer: PeerId): Stream {
    return stream
  }

  wrapOutbound (stream: Stream, _peer: PeerId): Stream {
    return stream
  }

  /** The peer's current want deadline (ms), for status */
  deadlineFor (_peer: PeerId): number {
    return 0
  }

  removePeer (_peer: PeerId): void {}

  stop (): void {}
}
