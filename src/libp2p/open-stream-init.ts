import type { DeadlineScheduler } from './deadline-scheduler.ts'
import type { Permit, Rejection } from '../breaker/permit.ts'
import type { Outcome } from '../states.ts'
import type { Clock } from '../clock.ts'
import type { ComponentLogger, Libp2pEvents, PeerId, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

/** The open-stream guard's options, its gate (who admits and hears outcomes) and components */

export interface OpenStreamGate<T = Permit> {
  /** A permit (an untracked one still lets the open through, timed) or a rejection */
  admit(peer: PeerId): T | Rejection
  /** The error to throw for a rejection */
  rejection(rejection: Rejection): Error
  /** The open succeeded; the gate tracks the stream's life from here */
  opened(token: T, peer: PeerId, stream: Stream, openMs: number): void
  /** The open failed or was aborted */
  failed(token: T, peer: PeerId, outcome: Outcome, openMs: number, err: Error): void
  /** An unproven peer's caller gets `stream` (a DeferredStream) now; returns what to hand it */
  deferred?(token: T, peer: PeerId, stream: Stream): Stream
}

export interface OpenStreamGuardComponents {
  connectionManager: ConnectionManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/** Deadlines for outbound Bitswap stream opens: adaptive per peer, from its open times, identify time and RTT */
export interface OpenStreamGuardInit {
  /**
   * Protocols whose opens are guarded
   *
   * @default ['/ipfs/bitswap/1.2.0', '/ipfs/bitswap/1.1.0', '/ipfs/bitswap/1.0.0', '/ipfs/bitswap']
   */
  protocols?: readonly string[]

  /**
   * Deadline (ms) for a peer with no samples, no identify time and no RTT
   *
   * @default 1000
   */
  coldDeadline?: number

  /**
   * Before any sample, the deadline is this × the time identify took on the peer's connection
   * (identify finished − `connection.timeline.open`: transport, security, muxer and one identify
   * round trip), or else × `connection.rtt`
   *
   * @default 4
   */
  coldMultiplier?: number

  /**
   * Once the peer has `minSamples` successful opens, the deadline is this × their median
   *
   * @default 4
   */
  sampleMultiplier?: number

  /**
   * Successful opens needed before the samples decide the deadline
   *
   * @default 3
   */
  minSamples?: number

  /**
   * How many recent open times are kept per connected peer (the median is taken over them); at
   * least `minSamples`
   *
   * @default max(8, minSamples)
   */
  sampleWindow?: number

  /**
   * Lower clamp (ms). Open times measured in-process include event-loop lag; 250 ms left a healthy
   * peer ≥ 2.3× headroom under load in the experiment, 100 ms only ~1.5×.
   *
   * @default 250
   */
  minDeadline?: number

  /**
   * Upper clamp (ms); at least `minDeadline`
   *
   * @default max(2000, minDeadline)
   */
  maxDeadline?: number

  /**
   * A peer with no open connection must be dialled first: its deadline is at least this (ms),
   * applied after the clamp
   *
   * @default 2000
   */
  unconnectedFloor?: number

  /**
   * How long (ms) the caller of an unproven peer's first open waits (connected, no Bitswap open
   * completed on that connection yet). Past it, the caller goes on with a stream that delivers its
   * bytes once the real open completes, and later callers do not wait at all; the real open keeps
   * its deadline. Helia's wantlist rounds await every peer's send, so this is what a blackholed
   * peer can cost a round, once per connection. A value at or above the open deadline turns it off.
   *
   * @default 25
   */
  firstOpenHold?: number

  /**
   * Names of inner-open errors that are reported as NEUTRAL rather than FAILURE
   *
   * @default DEFAULT_NEUTRAL_OPEN_ERRORS
   */
  neutralErrors?: readonly string[]

  /**
   * Share one timer with other deadline users. The guard never stops a scheduler it was given.
   *
   * @default a scheduler of its own
   * @internal
   */
  scheduler?: DeadlineScheduler

  /**
   * Time source for open times and deadlines, used only when no `scheduler` is given (a given
   * scheduler's clock is used). Identify time is measured against `connection.timeline.open`,
   * which libp2p takes from `Date.now()`.
   *
   * @default `Date.now`
   */
  clock?: Clock
}

