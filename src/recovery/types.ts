import type { Clock } from '../clock.ts'
import type { PeerLike } from '../peers/peer-key.ts'
import type { PeerRecord } from '../peers/peer-record.ts'
import type { PeerTable } from '../peers/peer-table.ts'
import type { RecoveryStrategy } from '../states.ts'

/** Where a peer's recovery stands */
export const RecoveryPhase = {
  /** Ramping up: a fraction of requests is admitted */
  RECOVERING: 'RECOVERING',
  /** Asked to start during the cooldown; starts when the cooldown ends */
  DEFERRED: 'DEFERRED',
  /** Ended after `successThreshold` successes in a row: full traffic */
  COMPLETED: 'COMPLETED',
  /** Ended after `failureThreshold` failures in a row or a timeout: no traffic until a new start or `cancel` */
  FAILED: 'FAILED',
  /** Stopped by `cancel` (the circuit tripped again and restricts the peer itself): no restriction from recovery */
  CANCELLED: 'CANCELLED'
} as const
export type RecoveryPhase = typeof RecoveryPhase[keyof typeof RecoveryPhase]

/** Why a recovery failed */
export type RecoveryFailureReason = 'failures' | 'timeout'

/** A copy of one peer's recovery record */
export interface RecoveryState {
  peer: PeerLike
  phase: RecoveryPhase
  /** True only in the RECOVERING phase */
  isRecovering: boolean
  /** When the ramp started, or will start when DEFERRED (clock ms) */
  recoveryStartTime: number
  /** When the last recovery ended (completed, failed, cancelled), or 0 if none has */
  recoveryEndTime: number
  /** The fraction of requests admitted now */
  currentRate: number
  consecutiveSuccesses: number
  consecutiveFailures: number
  /** The last start or recorded attempt */
  lastActivity: number
  strategy: RecoveryStrategy
}

/** Recovery counts over every peer (for `getRecoveryStats()` and the overall status) */
export interface RecoveryStats {
  /** Peers with a recovery record (running, deferred or finished) */
  totalPeers: number
  recoveringPeers: number
  deferredPeers: number
  /** Recoveries completed since the manager was created */
  completedRecoveries: number
  /** Recoveries failed (by failures or timeout) since the manager was created */
  failedRecoveries: number
  /** Mean rate over the recovering peers; 0 when none is */
  averageRecoveryRate: number
}

/** What `onRecoveryStart` and `onRecoveryComplete` listeners get */
export interface RecoveryEvent {
  peer: PeerLike
}

/** What `onRecoveryFailed` listeners get: the peer, and whether failures or the timeout ended it */
export interface RecoveryFailedEvent {
  peer: PeerLike
  reason: RecoveryFailureReason
}

/** The manager's runtime plumbing (not config): its clock, and the bound of a peer table of its own */
export interface RecoveryManagerOptions {
  /** @default the registry's clock, else systemClock */
  clock?: Clock

  /**
   * A peer table shared with the other per-peer components (breaker, health). Without one the
   * manager creates its own, which forgets a finished recovery once idle for twice
   * `maxRecoveryTime` (the Go original's cleanup age); `maxPeers` then applies to it.
   *
   * @internal
   */
  registry?: PeerTable

  /** @default 10000 */
  maxPeers?: number

  /**
   * Auto-tuning hook: how fast this peer's ramp runs (1 = as configured, 2 = twice as fast),
   * asked once when its recovery begins so the rate never jumps backwards. Time limits
   * (`maxRecoveryTime`, the cooldown) stay in real time.
   *
   * @default () => 1
   * @internal
   */
  rampSpeed?: (record: PeerRecord, at: number) => number
}
