import { dontHaveFrame } from '../bitswap/dont-have.ts'
import { ReplayStream } from './replay-stream.ts'
import type { DeadlineScheduler } from './deadline-scheduler.ts'
import type { ReleaseReason } from '../bitswap/want-release.ts'
import type { Clock } from '../clock.ts'
import type { ComponentLogger, Connection, Logger, PeerId } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'

/**
 * Releases Bitswap's waits on a peer that will not answer, the way boxo's DontHaveTimeoutManager
 * does: a DONT_HAVE from that peer, delivered to this node's own Bitswap handler.
 *
 * @helia/bitswap's session waits for a presence from the peer it asked (`wantSessionBlock`), with
 * no deadline of its own, and a disconnect does not end the wait. A DONT_HAVE ends it the way the
 * peer itself would have: the session drops that provider and asks the next one, while the
 * broadcast wantlist, which waits for blocks only, keeps the want open for every other peer.
 *
 * Delivery uses only public APIs: `registrar.getHandler(protocol)` and a call of that handler with
 * an in-memory stream (replay-stream.ts) and the peer's connection, or a connection-like object
 * naming the peer when it has none left (@helia/bitswap reads only `remotePeer` from it). Releases
 * of one peer queued in the same tick go out as one message. Nothing is delivered after `stop()`.
 *
 * When no handler can be reached (none registered for our protocols, it throws, or it never reads
 * the stream) the status says `unreachable` and one log line says so; everything else works.
 */

export type ReleaseStatus = 'active' | 'disabled' | 'unreachable' | 'not-started'

export interface WantReleaserComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  logger: ComponentLogger
}

export interface WantReleaserInit {
  /** The Bitswap protocols to look for a handler on, in order of preference */
  protocols: readonly string[]
  /** Off: `release` does nothing and the status says `disabled` */
  enabled: boolean
  scheduler: DeadlineScheduler
  /** Per-peer release counts kept (least recently released forgotten first) */
  maxPeers?: number
  /** Called once per released want */
  onRelease?(reason: ReleaseReason): void
}

/** How long a handler gets to read a delivered stream before it counts as unreachable, ms */
export const HANDLER_READ_GRACE = 2_000
const DEFAULT_MAX_PEERS = 10_000

/** Releases of one peer waiting for the end of the tick */
class Batch {
  readonly cids: Uint8Array[] = []
  constructor (readonly peer: PeerId) {}
}

export class WantReleaser {
  private readonly components: WantReleaserComponents
  private readonly log: Logger
  private readonly streamLog: Logger
  private readonly protocols: readonly string[]
  private readonly enabled: boolean
  private readonly scheduler: DeadlineScheduler
  private readonly clock: Clock
  private readonly maxPeers: number
  private readonly onRelease: ((reason: ReleaseReason) => void) | undefined
  private readonly pending = new Map<string, Batch>()
  /** Released wants per peer; insertion order is recency */
  private readonly perPeer = new Map<string, number>()
  /** Delivered streams not yet known to be read */
  private unread: ReplayStream[] = []
  private readCheck = 0
  private flushQueued = false
  private running = false
  private epoch = 0
  private state: ReleaseStatus = 'not-started'
  private streamIds = 0
  private total = 0

  constructor (components: WantReleaserComponents, init: WantReleaserInit) {
    this.components = components
    this.log = components.logger.forComponent('libp2p:bitswap-circuit-breaker:release')
    this.streamLog = components.logger.forComponent('libp2p:bitswap-circuit-breaker:release:stream')
    this.protocols = init.protocols
    this.enabled = init.enabled
    this.scheduler = init.scheduler
    this.clock = init.scheduler.clock
    this.maxPeers = init.maxPeers ?? DEFAULT_MAX_PEERS
    this.onRelease = init.onRelease
  }

  /** `active`, `disabled` (by option), `unreachable` (no Bitswap handler took our stream) or `not-started` */
  get status (): ReleaseStatus {
    return this.state
  }

  /** Wants released since start, across peers */
  get released (): number {
    return this.total
  }

  /** Wants released for this peer (while it is remembered) */
  releasedFor (peer: PeerId | string): number {
    return this.perPeer.get(peer.toString()) ?? 0
  }

  start (): void {
    if (this.running) {
      return
    }
    this.running = true
    this.state = this.enabled ? 'active' : 'disabled'
  }

  /** Drops queued releases; nothing is delivered from now on */
  stop (): void {
    this.running = false
    this.epoch++
    this.pending.clear()
    this.unread = []
    if (this.readCheck !== 0) {
      this.scheduler.cancel(this.readCheck)
      this.readCheck = 0
    }
    this.state = 'not-started'
  }

  /**
   * Queues a DONT_HAVE for `cid` from `peer`, delivered at the end of the tick with the peer's
   * other releases. The caller decides that the want is due (see the ledger's release rules).
   */
  release (peer: PeerId, cid: Uint8Array, reason: ReleaseReason): void {
    if (!this.running || !this.enabled) {
      return
    }
    const key = peer.toString()
    let batch = this.pending.get(key)
    if (batch === undefined) {
      batch = new Batch(peer)
      this.pending.set(key, batch)
    }
    batch.cids.push(cid)
    this.count(key)
    try {
      this.onRelease?.(reason)
    } catch {
      // the metric's failure is its own
    }
    if (!this.flushQueued) {
      this.flushQueued = true
      const epoch = this.epoch
      queueMicrotask(() => { this.flush(epoch) })
    }
  }

  private count (key: string): void {
    this.total++
    const count = (this.perPeer.get(key) ?? 0) + 1
    this.perPeer.delete(key)
    if (this.perPeer.size >= this.maxPeers) {
      const oldest = this.perPeer.keys().next().value
      if (oldest !== undefined) {
        this.perPeer.delete(oldest)
      }
    }
    this.perPeer.set(key, count)
  }

  private flush (epoch: number): void {
    this.flushQueued = false
    if (epoch !== this.epoch || !this.running) {
      return
    }
    const batches = [...this.pending.values()]
    this.pending.clear()
    for (const batch of batches) {
      this.deliver(batch)
    }
  }

  private deliver (batch: Batch): void {
    const found = this.handler()
    if (found === undefined) {
      this.unreachable('no handler is registered for ' + this.protocols.join(', '))
      return
    }
    const [protocol, handler] = found
    const stream = new ReplayStream(`release-${++this.streamIds}`, protocol, dontHaveFrame(batch.cids), this.streamLog, () => this.clock.now())
    try {
      const result = handler(stream, this.connectionFor(batch.peer))
      if (result != null && typeof (result as Promise<void>).catch === 'function') {
        (result as Promise<void>).catch((err: Error) => { this.log.error('the Bitswap handler failed on a release - %e', err) })
      }
    } catch (err) {
      this.unreachable(`the handler of ${protocol} threw: ${(err as Error).message}`)
      return
    }
    this.log('released %d wants of %p with a DONT_HAVE', batch.cids.length, batch.peer)
    this.watchRead(stream)
  }

  /** The first of our protocols with a registered handler */
  private handler (): [string, (stream: ReplayStream, connection: Connection) => void | Promise<void>] | undefined {
    const { registrar } = this.components
    for (const protocol of this.protocols) {
      try {
        return [protocol, registrar.getHandler(protocol).handler]
      } catch {
        // not handled: try the next
      }
    }
    return undefined
  }

  /** The peer's open connection if it still has one, else an object naming it */
  private connectionFor (peer: PeerId): Connection {
    const connections = this.components.connectionManager.getConnections(peer)
    for (const connection of connections) {
      if (connection.status === 'open') {
        return connection
      }
    }
    return closedConnection(peer, this.clock.now())
  }

  /** A handler that never reads what we hand it cannot be reached by this means */
  private watchRead (stream: ReplayStream): void {
    this.unread.push(stream)
    if (this.readCheck === 0) {
      this.readCheck = this.scheduler.schedule(this.clock.now() + HANDLER_READ_GRACE, () => { this.checkRead() })
    }
  }

  private checkRead (): void {
    this.readCheck = 0
    const streams = this.unread
    this.unread = []
    let unread = 0
    for (const stream of streams) {
      if (!stream.consumed) {
        unread++
        stream.abort(new Error('not read'))
      }
    }
    if (unread > 0) {
      this.unreachable(`the handler did not read ${unread} of ${streams.length} released messages`)
    } else if (this.state === 'unreachable' && streams.length > 0) {
      this.state = 'active'
      this.log('the Bitswap handler reads released messages again')
    }
  }

  private unreachable (why: string): void {
    if (this.state === 'unreachable') {
      return
    }
    this.state = 'unreachable'
    this.log('cannot release waits through Bitswap\'s handler (%s): waits on failed peers end only when Bitswap gives up', why)
  }
}

/**
 * What a handler gets as the connection of a peer that has none left. @helia/bitswap reads only
 * `remotePeer`; the rest says, truthfully, that the connection is closed.
 */
function closedConnection (peer: PeerId, now: number): Connection {
  return {
    id: 'bitswap-circuit-breaker-release',
    remotePeer: peer,
    status: 'closed',
    direction: 'inbound',
    streams: [],
    timeline: { open: now, close: now },
    limits: undefined,
    newStream: async () => { throw new Error('the connection is closed') },
    close: async () => {},
    abort: () => {}
  } as unknown as Connection
}
