import {
  DEFAULT_BACKOFF_DECAY,
  DEFAULT_BACKOFF_MULTIPLIER,
  DEFAULT_INTERVAL,
  DEFAULT_JITTER,
  DEFAULT_MAX_HALF_OPEN_DWELL,
  DEFAULT_MAX_REQUESTS,
  DEFAULT_MAX_TIMEOUT,
  DEFAULT_TIMEOUT,
  DEFAULT_TRIP_FAILURE_RATIO,
  DEFAULT_TRIP_MIN_REQUESTS,
  FALLBACK_CONSECUTIVE_FAILURES,
  FALLBACK_TIMEOUT
} from '../constants.ts'
import { InvalidConfigError } from '../errors.ts'
import { checkFunction, checkNumber } from '../validate.ts'
import type { CircuitState } from '../states.ts'

/** The counts of the current generation (gobreaker's `Counts`) */
export interface Counts {
  /** Admitted calls, including those still running (a neutral outcome gives its request back) */
  requests: number
  totalSuccesses: number
  totalFailures: number
  consecutiveSuccesses: number
  consecutiveFailures: number
}

/**
 * Circuit breaker options. Every field is optional: an omitted field takes the seed's default
 * (`defaultBitswapCircuitBreakerConfig()`), while the gobreaker fallbacks still apply to explicit
 * zero values (`maxRequests: 0` becomes 1, `timeout <= 0` becomes 60 s, `interval <= 0` means the
 * CLOSED counts never reset).
 */
export interface CircuitBreakerConfig {
  /**
   * How many calls a HALF_OPEN circuit admits per generation (a hard quota, not a concurrency
   * limit), and how many consecutive successes close it. 0 means 1 (gobreaker).
   *
   * @default 10
   */
  maxRequests?: number

  /**
   * Length in ms of the fixed CLOSED window after which the counts are cleared. A window starts at
   * the first call after the previous one expired. 0 (or less) means the counts never reset while
   * CLOSED (gobreaker).
   *
   * @default 30000
   */
  interval?: number

  /**
   * How long in ms the circuit stays OPEN after its first trip before it lets probes through
   * (HALF_OPEN). Later trips back off from this value. 0 or less means 60 s (gobreaker).
   *
   * @default 60000
   */
  timeout?: number

  /**
   * Called after every failure while CLOSED (never after a success) with the current counts; true
   * trips the circuit. The counts include calls still in flight. `null` selects gobreaker's fallback,
   * `consecutiveFailures > 5`.
   *
   * @default requests >= 3 && totalFailures / requests >= 0.6
   */
  readyToTrip?: ((counts: Counts) => boolean) | null

  /**
   * Decides whether a call's error (`undefined` when it resolved) is a success. Aborted calls never
   * get here: they are neutral and count neither way.
   *
   * @default err == null
   */
  isSuccessful?: (err: unknown) => boolean

  /**
   * Called after every state change, once the breaker's state is consistent. A throwing callback is
   * ignored.
   *
   * @default undefined
   */
  onStateChange?: ((name: string, from: CircuitState, to: CircuitState) => void) | null

  /**
   * Each trip while the backoff level is raised multiplies the open duration by this. 1 disables
   * the backoff.
   *
   * @default 2
   */
  backoffMultiplier?: number

  /**
   * The backed-off open duration in ms never exceeds this before jitter is added. It must be at
   * least `timeout`.
   *
   * @default 600000 (or `timeout`, if that is longer and `maxTimeout` is omitted)
   */
  maxTimeout?: number

  /**
   * Backed-off open durations get up to this fraction added at random (0.2 = up to +20 %), so
   * peers that failed together do not probe together. The first open duration is never jittered.
   *
   * @default 0.2
   */
  jitter?: number

  /**
   * The backoff level drops by one for every this many ms the circuit spends CLOSED (Envoy), so a
   * flapping peer stays penalised while a recovered one is forgiven. Infinity never forgives.
   *
   * @default 300000
   */
  backoffDecay?: number

  /**
   * A HALF_OPEN circuit with a probe still unsettled after this many ms goes back to OPEN, so
   * probes that never finish cannot hold it half-open forever. Infinity disables this.
   *
   * @default 120000
   */
  maxHalfOpenDwell?: number
}

/** A validated config with every default filled in */
export interface ResolvedCircuitBreakerConfig {
  maxRequests: number
  interval: number
  timeout: number
  readyToTrip(counts: Counts): boolean
  isSuccessful(err: unknown): boolean
  onStateChange?: (name: string, from: CircuitState, to: CircuitState) => void
  backoffMultiplier: number
  maxTimeout: number
  jitter: number
  backoffDecay: number
  maxHalfOpenDwell: number
}

/** The seed's trip rule: at least 3 requests and a failure ratio of at least 0.6 */
export function defaultReadyToTrip (counts: Counts): boolean {
  return counts.requests >= DEFAULT_TRIP_MIN_REQUESTS &&
    counts.totalFailures / counts.requests >= DEFAULT_TRIP_FAILURE_RATIO
}

/** gobreaker's fallback trip rule: more than 5 consecutive failures */
export function consecutiveFailuresReadyToTrip (counts: Counts): boolean {
  return counts.consecutiveFailures > FALLBACK_CONSECUTIVE_FAILURES
}

/** Any error is a failure. Aborts are classified as neutral before this is asked. */
export function defaultIsSuccessful (err: unknown): boolean {
  return err == null
}

/** The seed's `DefaultBitswapCircuitBreakerConfig()`, plus this library's backoff defaults */
export function defaultBitswapCircuitBreakerConfig (): ResolvedCircuitBreakerConfig {
  return {
    maxRequests: DEFAULT_MAX_REQUESTS,
    interval: DEFAULT_INTERVAL,
    timeout: DEFAULT_TIMEOUT,
    readyToTrip: defaultReadyToTrip,
    isSuccessful: defaultIsSuccessful,
    backoffMultiplier: DEFAULT_BACKOFF_MULTIPLIER,
    maxTimeout: DEFAULT_MAX_TIMEOUT,
    jitter: DEFAULT_JITTER,
    backoffDecay: DEFAULT_BACKOFF_DECAY,
    maxHalfOpenDwell: DEFAULT_MAX_HALF_OPEN_DWELL
  }
}

/**
 * Validates a partial config and fills in the defaults. A bad value throws `InvalidConfigError`
 * naming the field (prefixed with `path`, e.g. `circuitBreaker.timeout`) and the allowed range.
 */
export function resolveCircuitBreakerConfig (config: CircuitBreakerConfig = {}, path: string = ''): ResolvedCircuitBreakerConfig {
  const prefix = path === '' ? '' : `${path}.`
  if (config == null || typeof config !== 'object') {
    throw new InvalidConfigError(`${path === '' ? 'config' : path} must be an object, got ${String(config)}`)
  }

  let maxRequests = checkNumber(`${prefix}maxRequests`, config.maxRequests ?? DEFAULT_MAX_REQUESTS, 0, 2 ** 32 - 1, { integer: true })
  if (maxRequests === 0) {
    maxRequests = 1
  }

  let interval = config.interval ?? DEFAULT_INTERVAL
  // gobreaker: a non-positive interval means the CLOSED counts never reset
  if (typeof interval === 'number' && interval < 0) {
    interval = 0
  }
  interval = checkNumber(`${prefix}interval`, interval, 0, Infinity)

  let timeout = config.timeout ?? DEFAULT_TIMEOUT
  if (typeof timeout === 'number' && timeout <= 0) {
    timeout = FALLBACK_TIMEOUT
  }
  timeout = checkNumber(`${prefix}timeout`, timeout, 0, Infinity, { minExclusive: true })

  let readyToTrip: (counts: Counts) => boolean
  if (config.readyToTrip === undefined) {
    readyToTrip = defaultReadyToTrip
  } else if (config.readyToTrip === null) {
    readyToTrip = consecutiveFailuresReadyToTrip
  } else {
    readyToTrip = checkFunction(`${prefix}readyToTrip`, config.readyToTrip)
  }

  const isSuccessful = config.isSuccessful == null
    ? defaultIsSuccessful
    : checkFunction(`${prefix}isSuccessful`, config.isSuccessful)

  const onStateChange = config.onStateChange == null
    ? undefined
    : checkFunction(`${prefix}onStateChange`, config.onStateChange)

  const backoffMultiplier = checkNumber(`${prefix}backoffMultiplier`, config.backoffMultiplier ?? DEFAULT_BACKOFF_MULTIPLIER, 1, 1000)

  let maxTimeout: number
  if (config.maxTimeout === undefined) {
    maxTimeout = Math.max(DEFAULT_MAX_TIMEOUT, timeout)
  } else {
    maxTimeout = checkNumber(`${prefix}maxTimeout`, config.maxTimeout, timeout, Infinity)
  }

  const jitter = checkNumber(`${prefix}jitter`, config.jitter ?? DEFAULT_JITTER, 0, 1)
  const backoffDecay = checkNumber(`${prefix}backoffDecay`, config.backoffDecay ?? DEFAULT_BACKOFF_DECAY, 0, Infinity, { minExclusive: true })
  const maxHalfOpenDwell = checkNumber(`${prefix}maxHalfOpenDwell`, config.maxHalfOpenDwell ?? DEFAULT_MAX_HALF_OPEN_DWELL, 0, Infinity, { minExclusive: true })

  const resolved: ResolvedCircuitBreakerConfig = {
    maxRequests,
    interval,
    timeout,
    readyToTrip,
    isSuccessful,
    backoffMultiplier,
    maxTimeout,
    jitter,
    backoffDecay,
    maxHalfOpenDwell
  }
  if (onStateChange !== undefined) {
    resolved.onStateChange = onStateChange
  }
  return resolved
}
