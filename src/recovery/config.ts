import { InvalidConfigError } from '../errors.ts'
import { RecoveryStrategy } from '../states.ts'
import { describe, numberIn, optionalNumber, optionalOneOf, pathOf } from '../validate.ts'

// -- defaults: the original Go design's DefaultRecoveryConfig() (docs/design.md) --
/** Ramp shape (the Go original's default) */
export const DEFAULT_RECOVERY_STRATEGY = RecoveryStrategy.EXPONENTIAL
/** Share of requests admitted when a recovery starts (the Go original's default) */
export const DEFAULT_INITIAL_RECOVERY_RATE = 0.1
/** Share the ramp never exceeds (the Go original's default: all traffic) */
export const DEFAULT_MAX_RECOVERY_RATE = 1.0
/** One ramp step, ms (the Go original's 10 s) */
export const DEFAULT_RECOVERY_INTERVAL = 10_000
/** What each step adds or multiplies by 1 + it (the Go original's default) */
export const DEFAULT_RECOVERY_INCREMENT = 0.1
/** Successes in a row that complete a recovery (the Go original's default) */
export const DEFAULT_SUCCESS_THRESHOLD = 10
/** Failures in a row that fail a recovery (the Go original's default) */
export const DEFAULT_FAILURE_THRESHOLD = 3
/** A recovery running this long has failed, ms (the Go original's 5 min) */
export const DEFAULT_MAX_RECOVERY_TIME = 300_000
/** Least time between two recoveries of a peer, ms (the Go original's 30 s) */
export const DEFAULT_COOLDOWN_PERIOD = 30_000
/** Per-peer counters are uint16 */
const MAX_UINT16 = 65_535
/** Timer-safe upper bound of a duration, ms (2^31, setTimeout's limit) */
const MAX_DURATION = 2 ** 31

/** Recovery manager options. Every field is optional and has a default. */
export interface RecoveryInit {
  /**
   * How the admitted fraction grows with time since the recovery started, in whole or fractional
   * `recoveryInterval`s `k`: LINEAR `initial + k * increment`, STEP `initial + floor(k) * increment`,
   * EXPONENTIAL `initial * (1 + increment) ^ floor(k)`, each capped at `maxRecoveryRate` (see
   * strategies.ts).
   *
   * @default 'EXPONENTIAL'
   */
  strategy?: RecoveryStrategy

  /**
   * The fraction of requests admitted when a recovery starts. EXPONENTIAL starts from at least
   * 0.01 (`MIN_EXPONENTIAL_RATE`), since a product of 0 never grows. Must not exceed
   * `maxRecoveryRate`.
   *
   * @default 0.1
   */
  initialRecoveryRate?: number

  /**
   * The admitted fraction never exceeds this while recovering. Reaching it does not end the
   * recovery: only `successThreshold` successes in a row do.
   *
   * @default 1.0
   */
  maxRecoveryRate?: number

  /**
   * Length in ms of one ramp step.
   *
   * @default 10000
   */
  recoveryInterval?: number

  /**
   * How much each interval adds (LINEAR, STEP) or multiplies by `1 + increment` (EXPONENTIAL).
   * Must be > 0, or the ramp would never move.
   *
   * @default 0.1
   */
  recoveryIncrement?: number

  /**
   * This many successful requests in a row complete the recovery: the peer gets full traffic again.
   *
   * @default 10
   */
  successThreshold?: number

  /**
   * This many failed requests in a row fail the recovery: the peer is held at rate 0 (until a new
   * start, or `cancel` hands it back to its tripped circuit) and `onRecoveryFailed` fires, so that
   * its circuit can be tripped again.
   *
   * @default 3
   */
  failureThreshold?: number

  /**
   * A recovery still running this many ms after it started has failed (it timed out), even if its
   * rate already reached the maximum. Infinity disables the limit.
   *
   * @default 300000
   */
  maxRecoveryTime?: number

  /**
   * A recovery asked to start within this many ms after the previous one ended (completed, failed
   * or cancelled) is deferred until the cooldown is over, not dropped. Until then the peer is held
   * at the ramp's starting rate, or at 0 if the previous recovery failed.
   *
   * @default 30000
   */
  cooldownPeriod?: number
}

/** @deprecated use `RecoveryInit` */
export type RecoveryConfig = RecoveryInit

/** A validated config with every default filled in */
export interface ResolvedRecoveryConfig {
  strategy: RecoveryStrategy
  initialRecoveryRate: number
  maxRecoveryRate: number
  recoveryInterval: number
  recoveryIncrement: number
  successThreshold: number
  failureThreshold: number
  maxRecoveryTime: number
  cooldownPeriod: number
}

const STRATEGIES: readonly RecoveryStrategy[] = [RecoveryStrategy.LINEAR, RecoveryStrategy.EXPONENTIAL, RecoveryStrategy.STEP]

/** The Go original's `DefaultRecoveryConfig()` */
export function defaultRecoveryConfig (): ResolvedRecoveryConfig {
  return {
    strategy: DEFAULT_RECOVERY_STRATEGY,
    initialRecoveryRate: DEFAULT_INITIAL_RECOVERY_RATE,
    maxRecoveryRate: DEFAULT_MAX_RECOVERY_RATE,
    recoveryInterval: DEFAULT_RECOVERY_INTERVAL,
    recoveryIncrement: DEFAULT_RECOVERY_INCREMENT,
    successThreshold: DEFAULT_SUCCESS_THRESHOLD,
    failureThreshold: DEFAULT_FAILURE_THRESHOLD,
    maxRecoveryTime: DEFAULT_MAX_RECOVERY_TIME,
    cooldownPeriod: DEFAULT_COOLDOWN_PERIOD
  }
}

/**
 * Validates a partial config and fills in the defaults. A bad value throws `InvalidConfigError`
 * naming the field (prefixed with `path`, e.g. `recovery.strategy`) and the allowed range.
 */
export function resolveRecoveryConfig (config: RecoveryInit = {}, path: string = ''): ResolvedRecoveryConfig {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new InvalidConfigError(`${path === '' ? 'config' : path} must be an object, got ${describe(config)}`)
  }
  const at = (field: string): string => pathOf(path, field)

  const strategy = optionalOneOf(at('strategy'), config.strategy, STRATEGIES, DEFAULT_RECOVERY_STRATEGY)
  const maxRecoveryRate = optionalNumber(at('maxRecoveryRate'), config.maxRecoveryRate, DEFAULT_MAX_RECOVERY_RATE, { min: 0, max: 1, minExclusive: true })
  const initialRecoveryRate = optionalNumber(at('initialRecoveryRate'), config.initialRecoveryRate, DEFAULT_INITIAL_RECOVERY_RATE, { min: 0, max: 1 })
  if (initialRecoveryRate > maxRecoveryRate) {
    // name the field the caller set: a lowered maxRecoveryRate meets the default initialRecoveryRate
    if (config.initialRecoveryRate === undefined) {
      numberIn(at('maxRecoveryRate'), maxRecoveryRate, { min: initialRecoveryRate, max: 1 })
    }
    numberIn(at('initialRecoveryRate'), initialRecoveryRate, { min: 0, max: maxRecoveryRate })
  }
  return {
    strategy,
    initialRecoveryRate,
    maxRecoveryRate,
    recoveryInterval: optionalNumber(at('recoveryInterval'), config.recoveryInterval, DEFAULT_RECOVERY_INTERVAL, { min: 0, max: MAX_DURATION, minExclusive: true }),
    recoveryIncrement: optionalNumber(at('recoveryIncrement'), config.recoveryIncrement, DEFAULT_RECOVERY_INCREMENT, { min: 0, max: 1000, minExclusive: true }),
    successThreshold: optionalNumber(at('successThreshold'), config.successThreshold, DEFAULT_SUCCESS_THRESHOLD, { min: 1, max: MAX_UINT16, integer: true }),
    failureThreshold: optionalNumber(at('failureThreshold'), config.failureThreshold, DEFAULT_FAILURE_THRESHOLD, { min: 1, max: MAX_UINT16, integer: true }),
    maxRecoveryTime: optionalNumber(at('maxRecoveryTime'), config.maxRecoveryTime, DEFAULT_MAX_RECOVERY_TIME, { min: 0, minExclusive: true, off: true }),
    cooldownPeriod: optionalNumber(at('cooldownPeriod'), config.cooldownPeriod, DEFAULT_COOLDOWN_PERIOD, { min: 0, max: MAX_DURATION })
  }
}
