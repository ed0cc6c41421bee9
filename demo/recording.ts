/**
 * What one run of the scenario leaves behind: samples of each peer's state over time, the events
 * in order, and when each block arrived from whom. The live view, the summary and the picture all
 * read only this.
 */

import type { CircuitState, HealthStatus } from '../src/index.ts'

/** Index of a provider in every per-peer array */
export const HEALTHY = 0
export const FLAKY = 1
export type PeerIndex = typeof HEALTHY | typeof FLAKY

export const PEER_NAMES = ['healthy', 'flaky'] as const

/** One provider as the consumer sees it at one moment */
export interface PeerSample {
  /** Undefined when the run has no breaker */
  circuit?: CircuitState
  health?: HealthStatus
  recovering?: boolean
  /** Share of traffic admitted while recovering (1 when not) */
  rate?: number
  /** ms until an OPEN circuit lets a probe through */
  openFor?: number
  /** Requests the breaker counted for this peer since it first saw it, and how many failed */
  ok?: number
  fail?: number
  lastError?: string
  /** Blocks the consumer received from this peer so far */
  blocks: number
  connected: boolean
}

export interface Sample {
  /** ms since the scenario started */
  t: number
  phase: number
  peers: [PeerSample, PeerSample]
  received: number
  lost: number
}

export type DemoEventKind = 'phase' | 'open' | 'half-open' | 'close' | 'recovery-start' | 'recovery-complete' | 'recovery-fail'

export interface DemoEvent {
  t: number
  kind: DemoEventKind
  /** Undefined for phase changes */
  peer?: PeerIndex
  from?: string
  to?: string
  reason?: string
  /** For circuit changes: the peer's last error then (why it looked unhealthy) */
  error?: string
  /** For phase changes: the phase index */
  phase?: number
}

export interface RunRecording {
  protected: boolean
  /** ms from the first wave until every block arrived or the run gave up */
  ms: number
  total: number
  received: number
  lost: number
  corrupt: number
  /** Of the lost: blocks only the flaky provider held */
  lostOwn: number
  /** Arrival times (ms since start) of blocks, per provider */
  arrivals: [number[], number[]]
  /** Per block that arrived: how long it waited, ms (the longest, and which wave it was in) */
  longestWait: number
  samples: Sample[]
  events: DemoEvent[]
  /** Whether the run gave up on outstanding blocks after the grace period */
  gaveUp: boolean
}
