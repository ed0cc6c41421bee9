import { recoveryRate } from './strategies.ts'
import type { ResolvedRecoveryConfig } from './config.ts'

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

/** The fraction of requests a ramp admits at `now` (after its lazy transitions are applied) */
export function rampRate (ramp: RampState, config: ResolvedRecoveryConfig, now: number): number {
  const phase = ramp.phase
  if (phase === RECOVERING || phase === DEFERRED) {
    const intervals = phase === RECOVERING ? (now - ramp.startTime) * ramp.speed / config.recoveryInterval : 0
    return recoveryRate(config.strategy, config.initialRecoveryRate, config.recoveryIncrement, config.maxRecoveryRate, intervals)
  }
  if (phase === FAILED || phase === DEFERRED_FAILED) {
    return 0
  }
  return 1
}

/**
 * Whether a peer with this ramp may be forgotten: not while recovering, deferred or cooling down.
 * Pure: a timeout not yet noticed is worked out, not applied. A failed recovery that has cooled
 * down may be forgotten: the circuit, tripped again on the failure, is what keeps the peer out.
 */
export function rampEvictable (ramp: RampState, config: ResolvedRecoveryConfig, now: number): boolean {
  const phase = ramp.phase
  if (phase === NONE) {
    return true
  }
  let end = ramp.endTime
  if (phase === RECOVERING || phase === DEFERRED || phase === DEFERRED_FAILED) {
    const start = ramp.startTime
    if (now < start || now - start <= config.maxRecoveryTime) {
      return false
    }
    end = start + config.maxRecoveryTime
  }
  return now >= end + config.cooldownPeriod
}
