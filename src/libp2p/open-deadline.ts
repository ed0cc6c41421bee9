import type { ResolvedOpenStreamConfig } from './config.ts'
import type { PeerId } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

/** What a connected peer's open times look like */
export class OpenTiming {
  /** identify finished − connection open, ms (0: unknown) */
  identifyMs = 0
  /** Recent successful open times, a ring of `sampleWindow` */
  samples: Float64Array | undefined
  count = 0
  next = 0
  /** sampleMultiplier × median, unclamped (0: not enough samples) */
  sampleDeadline = 0

  /** Whether anything is known about the peer's open times */
  get known (): boolean {
    return this.identifyMs > 0 || this.count > 0
  }

  /** Forgets everything (the peer disconnected: a new connection has new timing) */
  forget (): void {
    this.identifyMs = 0
    this.samples = undefined
    this.count = 0
    this.next = 0
    this.sampleDeadline = 0
  }
}

/**
 * The deadline an open to a peer gets (why these numbers: docs/design.md, "Open-stream deadlines"):
 * `sampleMultiplier` × the median of its recent opens once it has `minSamples`; before that
 * `coldMultiplier` × its identify time, else × the connection's RTT, else `coldDeadline`; clamped,
 * and at least `unconnectedFloor` when it must be dialled first.
 */
export class OpenDeadlines {
  private readonly config: ResolvedOpenStreamConfig
  /** Scratch space for the median */
  private readonly scratch: Float64Array

  constructor (config: ResolvedOpenStreamConfig) {
    this.config = config
    this.scratch = new Float64Array(config.sampleWindow)
  }

  deadline (cm: ConnectionManager, peer: PeerId, timing: OpenTiming | undefined, connected: boolean): number {
    const config = this.config
    let deadline: number
    if (timing != null && timing.sampleDeadline > 0) {
      deadline = timing.sampleDeadline
    } else if (timing != null && timing.identifyMs > 0) {
      deadline = config.coldMultiplier * timing.identifyMs
    } else {
      deadline = config.coldDeadline
      const connections = cm.getConnections(peer)
      for (let i = 0; i < connections.length; i++) {
        const rtt = connections[i].rtt
        if (rtt != null && rtt > 0) {
          deadline = config.coldMultiplier * rtt
          break
        }
      }
    }
    deadline = Math.min(Math.max(deadline, config.minDeadline), config.maxDeadline)
    return connected ? deadline : Math.max(deadline, config.unconnectedFloor)
  }

  /** One successful open on the peer's current connection */
  addSample (timing: OpenTiming, ms: number): void {
    const window = this.config.sampleWindow
    if (timing.samples == null) {
      timing.samples = new Float64Array(window)
    }
    timing.samples[timing.next] = ms
    timing.next = (timing.next + 1) % window
    if (timing.count < window) {
      timing.count++
    }
    if (timing.count >= this.config.minSamples) {
      timing.sampleDeadline = this.config.sampleMultiplier * this.median(timing.samples, timing.count)
    }
  }

  /** Median of the first n values, by insertion sort into scratch space (n is small) */
  private median (values: Float64Array, n: number): number {
    const s = this.scratch
    for (let i = 0; i < n; i++) {
      const v = values[i]
      let j = i - 1
      while (j >= 0 && s[j] > v) {
        s[j + 1] = s[j]
        j--
      }
      s[j + 1] = v
    }
    return (n & 1) === 1 ? s[n >> 1] : (s[(n >> 1) - 1] + s[n >> 1]) / 2
  }
}
