/**
 * One dropped connection is one failure. When a connection dies, every Bitswap stream and open in
 * flight on it fails at once; counted one by one, a single cut link looks like a peer failing N
 * times in a row and trips a healthy provider (issue 11: a link cut every 500 ms did). Envoy and
 * gRPC count a connection failure once, and a reset that is connection-wide is not the peer's
 * fault: the first connection-wide failure of a drop counts, the rest of it is neutral.
 */

/**
 * Connection-wide failures of one peer this close together (ms) are one drop: the streams of a
 * closing connection all end within a turn or two, and a peer that redials at once and drops
 * again is a new event
 */
export const DEFAULT_DROP_WINDOW = 250

/**
 * Errors that say the connection, not the stream, went away (libp2p and @libp2p/utils names). Not
 * `StreamResetError`: a remote resetting one stream on a live connection is that peer's doing.
 */
const CONNECTION_ERRORS: ReadonlySet<string> = new Set([
  'ConnectionClosedError',
  'ConnectionClosingError',
  'MuxerClosedError'
])

/** Prune the drop map once it holds this many peers (each entry is one timestamp) */
const MAX_TRACKED = 1024

export function isConnectionError (err: Error | undefined): boolean {
  return err !== undefined && CONNECTION_ERRORS.has(err.name)
}

export class ConnectionDrops {
  private readonly window: number
  /** peer key -> when its current drop started */
  private readonly drops = new Map<string, number>()

  constructor (window: number = DEFAULT_DROP_WINDOW) {
    this.window = window
  }

  /**
   * A connection-wide failure of `peerKey` at `now`: true when it is the first of its drop (count
   * it), false when the same drop was already counted (neutral)
   */
  first (peerKey: string, now: number): boolean {
    const started = this.drops.get(peerKey)
    if (started !== undefined && now - started < this.window) {
      return false
    }
    if (this.drops.size >= MAX_TRACKED) {
      this.prune(now)
    }
    this.drops.set(peerKey, now)
    return true
  }

  clear (): void {
    this.drops.clear()
  }

  private prune (now: number): void {
    for (const [key, started] of this.drops) {
      if (now - started >= this.window) {
        this.drops.delete(key)
      }
    }
    if (this.drops.size >= MAX_TRACKED) {
      // all recent (a mass drop): the oldest go, at worst counting one drop twice
      this.drops.clear()
    }
  }
}
