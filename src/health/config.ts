import {
  DEFAULT_DEGRADED_THRESHOLD,
  DEFAULT_HEALTHY_THRESHOLD,
  DEFAULT_HEALTH_WINDOW,
  DEFAULT_MAX_AGE,
  DEFAULT_MAX_CONSECUTIVE_ERRORS,
  DEFAULT_MAX_RESPONSE_TIME,
  DEFAULT_MIN_SAMPLES
} from '../constants.ts'
import { InvalidConfigError } from '../errors.ts'
import { checkNumber } from '../validate.ts'

/**
 * Health monitor options. Every field is optional and takes the seed's default.
 *
 * The seed's `CheckInterval`, `HealthCheckTimeout` and `CleanupInterval` are deliberately absent:
 * the first two were never read (there is no active probing), and cleanup needs no interval here
 * because stale peers are dropped lazily (see `maxAge`).
 */
export interface HealthMonitorConfig {
  /**
   * A success rate at or above this (over the sliding window) is HEALTHY, unless the latency check
   * says otherwise.
   *
   * @default 0.95
   */
  healthyThreshold?: number

  /**
   * A success rate below this is UNHEALTHY; from here up to `healthyThreshold` it is DEGRADED
   * (inclusive: exactly 0.80 is DEGRADED). Must not exceed `healthyThreshold`.
   *
   * @default 0.80
   */
  degradedThreshold?: number

  /**
   * A peer whose p95 response time over the sliding window exceeds this many ms is at best
   * DEGRADED. Infinity disables the latency check.
   *
   * @default 5000
   */
  maxResponseTime?: number

  /**
   * This many errors in a row make a peer UNHEALTHY whatever its success rate (at most 65535).
   *
   * @default 5
   */
  maxConsecutiveErrors?: number

  /**
   * Fewer requests than this (in total, or within the sliding window) and the status is UNKNOWN.
   * The seed hard-coded 3.
   *
   * @default 3
   */
  minSamples?: number

  /**
   * A peer with no request recorded for longer than this many ms is stale: it reads as absent and
   * its next request starts a fresh record. Standalone monitors also let their registry forget it
   * (lazily, or at once with `prune()`); there is no cleanup timer.
   *
   * @default 600000
   */
  maxAge?: number

  /**
   * Length in ms of the sliding window over which the success rate and the slow-response share are
   * taken (the seed's rate was lifetime and never forgot a failure).
   *
   * @default 60000
   */
  window?: number
}

/** A validated config with every default filled in */
export interface ResolvedHealthMonitorConfig {
  healthyThreshold: number
  degradedThreshold: number
  maxResponseTime: number
  maxConsecutiveErrors: number
  minSamples: number
  maxAge: number
  window: number
}

/** The seed's `DefaultHealthMonitorConfig()`, plus the sliding window */
export function defaultHealthMonitorConfig (): ResolvedHealthMonitorConfig {
  return {
    healthyThreshold: DEFAULT_HEALTHY_THRESHOLD,
    degradedThreshold: DEFAULT_DEGRADED_THRESHOLD,
    maxResponseTime: DEFAULT_MAX_RESPONSE_TIME,
    maxConsecutiveErrors: DEFAULT_MAX_CONSECUTIVE_ERRORS,
    minSamples: DEFAULT_MIN_SAMPLES,
    maxAge: DEFAULT_MAX_AGE,
    window: DEFAULT_HEALTH_WINDOW
  }
}

/**
 * Validates a partial config and fills in the defaults. A bad value throws `InvalidConfigError`
 * naming the field (prefixed with `path`, e.g. `healthMonitor.window`) and the allowed range.
 */
export function resolveHealthMonitorConfig (config: HealthMonitorConfig = {}, path: string = ''): ResolvedHealthMonitorConfig {
  const prefix = path === '' ? '' : `${path}.`
  if (config == null || typeof config !== 'object') {
    throw new InvalidConfigError(`${path === '' ? 'config' : path} must be an object, got ${String(config)}`)
  }

  const healthyThreshold = checkNumber(`${prefix}healthyThreshold`, config.healthyThreshold ?? DEFAULT_HEALTHY_THRESHOLD, 0, 1)
  const degradedThreshold = checkNumber(`${prefix}degradedThreshold`, config.degradedThreshold ?? DEFAULT_DEGRADED_THRESHOLD, 0, healthyThreshold)
  const maxResponseTime = checkNumber(`${prefix}maxResponseTime`, config.maxResponseTime ?? DEFAULT_MAX_RESPONSE_TIME, 0, Infinity, { minExclusive: true })
  const maxConsecutiveErrors = checkNumber(`${prefix}maxConsecutiveErrors`, config.maxConsecutiveErrors ?? DEFAULT_MAX_CONSECUTIVE_ERRORS, 1, 65_535, { integer: true })
  const minSamples = checkNumber(`${prefix}minSamples`, config.minSamples ?? DEFAULT_MIN_SAMPLES, 1, 65_535, { integer: true })
  const maxAge = checkNumber(`${prefix}maxAge`, config.maxAge ?? DEFAULT_MAX_AGE, 0, Infinity, { minExclusive: true })
  const window = checkNumber(`${prefix}window`, config.window ?? DEFAULT_HEALTH_WINDOW, 1, 2 ** 31)

  return {
    healthyThreshold,
    degradedThreshold,
    maxResponseTime,
    maxConsecutiveErrors,
    minSamples,
    maxAge,
    window
  }
}
