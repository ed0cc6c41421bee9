import { InvalidConfigError } from '../errors.ts'
import { describe, numberIn, optionalNumber, pathOf } from '../validate.ts'

// -- defaults: the original Go design's DefaultHealthMonitorConfig() (docs/design.md) --
/** Success rate for HEALTHY (the Go original's default) */
export const DEFAULT_HEALTHY_THRESHOLD = 0.95
/** Success rate below which a peer is UNHEALTHY (the Go original's default) */
export const DEFAULT_DEGRADED_THRESHOLD = 0.80
/** p95 response time above which a peer is at best DEGRADED, ms (the Go original's 5 s) */
export const DEFAULT_MAX_RESPONSE_TIME = 5_000
/** Errors in a row that make a peer UNHEALTHY (the Go original's default) */
export const DEFAULT_MAX_CONSECUTIVE_ERRORS = 5
/** Requests before a status is known (the Go original's fixed 3) */
export const DEFAULT_MIN_SAMPLES = 3
/** A peer silent this long is stale, ms (the Go original's `MaxAge` of 10 min) */
export const DEFAULT_MAX_AGE = 600_000
/** Sliding window of the success rate, ms: 2 breaker intervals, so old failures are forgotten */
export const DEFAULT_HEALTH_WINDOW = 60_000
/** Per-peer counters are uint16 */
const MAX_UINT16 = 65_535
/** Timer-safe upper bound of a window, ms (2^31, setTimeout's limit) */
const MAX_WINDOW = 2 ** 31

/**
 * Health monitor options. Every field is optional and has a default. There is no cleanup interval:
 * stale peers are dropped lazily (see `maxAge`).
 */
export interface HealthMonitorInit {
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
   * taken, so a peer's old failures are forgotten.
   *
   * @default 60000
   */
  window?: number
}

/** @deprecated use `HealthMonitorInit` */
export type HealthMonitorConfig = HealthMonitorInit

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

/** The Go original's `DefaultHealthMonitorConfig()`, plus the sliding window */
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
export function resolveHealthMonitorConfig (config: HealthMonitorInit = {}, path: string = ''): ResolvedHealthMonitorConfig {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new InvalidConfigError(`${path === '' ? 'config' : path} must be an object, got ${describe(config)}`)
  }
  const at = (field: string): string => pathOf(path, field)

  const healthyThreshold = optionalNumber(at('healthyThreshold'), config.healthyThreshold, DEFAULT_HEALTHY_THRESHOLD, { min: 0, max: 1 })
  const degradedThreshold = optionalNumber(at('degradedThreshold'), config.degradedThreshold, DEFAULT_DEGRADED_THRESHOLD, { min: 0, max: 1 })
  if (degradedThreshold > healthyThreshold) {
    // name the field the caller set: a lowered healthyThreshold meets the default degradedThreshold
    const field = config.degradedThreshold === undefined ? 'healthyThreshold' : 'degradedThreshold'
    numberIn(at(field), config[field] ?? healthyThreshold, field === 'degradedThreshold'
      ? { min: 0, max: healthyThreshold }
      : { min: degradedThreshold, max: 1 })
  }
  return {
    healthyThreshold,
    degradedThreshold,
    maxResponseTime: optionalNumber(at('maxResponseTime'), config.maxResponseTime, DEFAULT_MAX_RESPONSE_TIME, { min: 0, minExclusive: true, off: true }),
    maxConsecutiveErrors: optionalNumber(at('maxConsecutiveErrors'), config.maxConsecutiveErrors, DEFAULT_MAX_CONSECUTIVE_ERRORS, { min: 1, max: MAX_UINT16, integer: true }),
    minSamples: optionalNumber(at('minSamples'), config.minSamples, DEFAULT_MIN_SAMPLES, { min: 1, max: MAX_UINT16, integer: true }),
    maxAge: optionalNumber(at('maxAge'), config.maxAge, DEFAULT_MAX_AGE, { min: 0, minExclusive: true }),
    window: optionalNumber(at('window'), config.window, DEFAULT_HEALTH_WINDOW, { min: 1, max: MAX_WINDOW })
  }
}
