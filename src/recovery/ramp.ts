// phase codes of a ramp
export const NONE = 0
export const RECOVERING = 1
/** Deferred start, held at the ramp's starting rate */
export const DEFERRED = 2
/** Deferred start after a failed recovery, held at 0 */
export const DEFERRED_FAILED = 3
export const COMPLETED = 4
export const FAILED = 5
export const CANCELLED = 6

/**
 * One peer's recovery ramp, in `PeerRecord.recovery`: created when the peer first starts a
 * recovery and kept (finished) for the cooldown and the peer's status.
 */
export class RampState {
  phase = NONE
  /** Ramp start; the scheduled start while deferred */
  startTime = 0
  /** When the last recovery ended, for the cooldown */
  endTime = 0
  lastActivity = 0
  /** Admission credit: each request adds the rate, an admission takes 1 */
  credit = 0
  successes = 0
  failures = 0
  /** Ramp speed multiplier (auto-tuning), fixed when the ramp begins */
  speed = 1
}
