import { RecoveryStrategy } from '../states.ts'

/** The EXPONENTIAL ramp's lowest starting rate: 0 would never grow, and 1 % still admits almost nothing */
export const MIN_EXPONENTIAL_RATE = 0.01

/**
 * The admitted fraction `intervals` recovery intervals after a recovery started (`intervals` may be
 * fractional). Pure, so it is computed on read: there is no ticker updating stored rates, and a
 * rate depends only on the time since this peer's start.
 *
 * - LINEAR: `initial + intervals * increment` (fractional intervals: a smooth ramp)
 * - STEP: `initial + floor(intervals) * increment`
 * - EXPONENTIAL: `max(initial, MIN_EXPONENTIAL_RATE) * (1 + increment) ^ floor(intervals)`
 *
 * Every result is capped at `max` and is never below 0.
 */
export function recoveryRate (strategy: RecoveryStrategy, initial: number, increment: number, max: number, intervals: number): number {
  const k = intervals > 0 ? intervals : 0
  let rate: number
  if (strategy === RecoveryStrategy.LINEAR) {
    rate = initial + k * increment
  } else if (strategy === RecoveryStrategy.STEP) {
    rate = initial + Math.floor(k) * increment
  } else {
    const start = initial > MIN_EXPONENTIAL_RATE ? initial : MIN_EXPONENTIAL_RATE
    rate = start * Math.pow(1 + increment, Math.floor(k))
  }
  return rate > max ? max : rate
}
