import type { TunedValues } from './auto-tune.ts'
import type { Counts } from '../breaker/config.ts'
import type { TransitionReason } from '../breaker/core.ts'
import type { Clock, RandomSource } from '../clock.ts'
import type { HealthSnapshot, HealthStats } from '../health/health-monitor.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { RecoveryStats } from '../recovery/recovery-manager.ts'
import type { CircuitState, HealthStatus } from '../states.ts'

/** The manager's runtime plumbing (not config): clock and random source, injectable for tests */
export interface ProtectionManagerOptions {
  clock?: Clock
  random?: RandomSource
}

/** Everything known about one peer */
export interface PeerStatus {
  peer: string
  circuitState: CircuitState
  counts: Counts
  /** When an OPEN circuit lets probes through (0 when not OPEN) */
  openUntil: number
  healthStatus: HealthStatus
  health: HealthSnapshot | undefined
  isRecovering: boolean
  recoveryRate: number
  /** What auto-tuning currently uses for this peer (absent for an untracked peer) */
  tuned: TunedValues | undefined
}

/** Numbers of peers per circuit state */
export interface CircuitStateCounts {
  closed: number
  open: number
  halfOpen: number
}

/** Counts over every tracked peer, from `getOverallStatus()` */
export interface OverallStatus {
  totalPeers: number
  circuitStates: CircuitStateCounts
  healthStats: HealthStats
  recoveryStats: RecoveryStats
  /** Requests refused because a circuit was OPEN, HALF_OPEN-full, or by the recovery ramp */
  rejected: { open: number, halfOpen: number, recovery: number }
  trips: number
  /** Most peers are failing at once: our own network is suspected and no circuit trips */
  localNetworkSuspected: boolean
  /** What the last `restore()` (or the service's `initialState`) restored, skipped and dropped */
  restored: RestoreStats | undefined
  /** More than 80 % of known peers healthy and fewer than 20 % of circuits open (the Go original's rule) */
  isHealthy(): boolean
  /** One line for logs: peers, healthy share, recovering peers, open circuits */
  getSummary(): string
}

/** One peer's circuit as a snapshot keeps it (JSON-safe) */
export interface PeerSnapshot {
  peer: string
  state: CircuitState
  /** Wall-clock ms when probes may start (0 when not OPEN) */
  openUntil: number
  backoffLevel: number
  /** Held open by `isolate()` until released */
  isolated: boolean
}

/** What a restarted node needs to remember which peers were bad, and for how long */
export interface ProtectionSnapshot {
  version: 1
  takenAt: number
  peers: PeerSnapshot[]
}

/** Options of `restore()` */
export interface RestoreOptions {
  /** How the snapshot is named in errors (default `snapshot`) */
  path?: string
  /** Whether a peer string names a peer; others are skipped and counted (default: any string) */
  isValidPeer?: (peer: string) => boolean
}

/** What a restore did with the snapshot's entries (see snapshot.ts) */
export interface RestoreStats {
  /** Entries restored */
  restored: number
  /** Skipped: the peer string is not a valid peer id */
  invalidPeers: number
  /** Dropped: the open time had ended (or the entry was HALF_OPEN), so there was nothing to hold */
  expired: number
  /** Dropped: more entries than half the peer table (the oldest trips) */
  overCapacity: number
  /** Skipped: a second entry for a peer already restored */
  duplicates: number
  /** Restored with an `openUntil` cut back to `maxTimeout` from now (isolations included) */
  clamped: number
}

/** A state change of one peer's circuit, with string states */
export interface TransitionEvent {
  peer: PeerLike
  from: CircuitState
  to: CircuitState
  reason: TransitionReason
}
