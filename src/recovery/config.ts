import {
  DEFAULT_COOLDOWN_PERIOD,
  DEFAULT_FAILURE_THRESHOLD,
  DEFAULT_INITIAL_RECOVERY_RATE,
  DEFAULT_MAX_RECOVERY_RATE,
  DEFAULT_MAX_RECOVERY_TIME,
  DEFAULT_RECOVERY_INCREMENT,
  DEFAULT_RECOVERY_INTERVAL,
  DEFAULT_SUCCESS_THRESHOLD
} from '../constants.ts'
import { InvalidConfigError } from '../errors.ts'
import { RecoveryStrategy } from '../states.ts'
import { checkNumber, checkOneOf } from '../validate.ts'

/** Recovery manager options. Every field is optional and takes the seed's default. */
export interface RecoveryConfig {
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
   * its circuit can be tripped again. (The seed's "reset" ended the recovery and let all traffic
   * through.)
   *
   * @default 3
   */
  failureThreshold?: number

  /**
   * A recovery still running this many ms after it started has failed (it timed out), even if its
   * rate already reached the maximum, as in the seed. Infinity disables the limit.
   *
   * @default 300000
   */
  maxRecoveryTime?: number

  /**
   * A recovery asked to start within this many ms after the previous one ended (completed, failed
   * or cancelled) is deferred until the cooldown is over, not dropped as in the seed. Until then
   * the peer is held at the ramp's starting rate, or at 0 if the previous recovery failed.
   *
   * @default 30000
   */
  cooldownPeriod?: number
}

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

/** The seed's `DefaultRecoveryConfig()` */
export function defaultRecoveryConfig (): ResolvedRecoveryConfig {
  return {
    strategy: RecoveryStrategy.EXPONENTIAL,
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
export function resolveRecoveryConfig (config: RecoveryConfig = {}, path: string = ''): ResolvedRecoveryConfig {
  const prefix = path === '' ? '' : `${path}.`
  if (config == null || typeof config !== 'object') {
    throw new InvalidConfigError(`${path === '' ? 'config' : path} must be an object, got ${String(config)}`)
  }

  const strategy = checkOneOf(`${prefix}strategy`, config.strategy ?? RecoveryStrategy.EXPONENTIAL, STRATEGIES)
  const maxRecoveryRate = checkNumber(`${prefix}maxRecoveryRate`, config.maxRecoveryRate ?? DEFAULT_MAX_RECOVERY_RATE, 0, 1, { minExclusive: true })
  const initialRecoveryRate = checkNumber(`${prefix}initialRecoveryRate`, config.initialRecoveryRate ?? DEFAULT_INITIAL_RECOVERY_RATE, 0, maxRecoveryRate)
  const recoveryInterval = checkNumber(`${prefix}recoveryInterval`, config.recoveryInterval ?? DEFAULT_RECOVERY_INTERVAL, 0, 2 ** 31, { minExclusive: true })
  const recoveryIncrement = checkNumber(`${prefix}recoveryIncrement`, config.recoveryIncrement ?? DEFAULT_RECOVERY_INCREMENT, 0, 1000, { minExclusive: true })
  const successThreshold = checkNumber(`${prefix}successThreshold`, config.successThreshold ?? DEFAULT_SUCCESS_THRESHOLD, 1, 65_535, { integer: true })
  const failureThreshold = checkNumber(`${prefix}failureThreshold`, config.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD, 1, 65_535, { integer: true })
  const maxRecoveryTime = checkNumber(`${prefix}maxRecoveryTime`, config.maxRecoveryTime ?? DEFAULT_MAX_RECOVERY_TIME, 0, Infinity, { minExclusive: true })
  const cooldownPeriod = checkNumber(`${prefix}cooldownPeriod`, config.cooldownPeriod ?? DEFAULT_COOLDOWN_PERIOD, 0, 2 ** 31)

  return {
    strategy,
    initialRecoveryRate,
    maxRecoveryRate,
    recoveryInterval,
    recoveryIncrement,
    successThreshold,
    failureThreshold,
    maxRecoveryTime,
    cooldownPeriod
  }
}
