import { InvalidConfigError } from '../errors.ts'
import { describe, optionalFunction, optionalNumber, pathOf } from '../validate.ts'
import type { CircuitState } from '../states.ts'

// -- defaults: the original Go design's DefaultBitswapCircuitBreakerConfig() (docs/design.md) --
/** HALF_OPEN probe quota and successes to close (the Go original's default) */
export const DEFAULT_MAX_REQUESTS = 10
/** CLOSED counting window, ms (the Go original's 30 s) */
export const DEFAULT_INTERVAL = 30_000
/** First open duration, ms (60 s: the Go original's and gobreaker's default) */
export const DEFAULT_TIMEOUT = 60_000
/** The Go original's trip rule: at least this many requests in the window ... */
export const DEFAULT_TRIP_MIN_REQUESTS = 3
/** ... and at least this failure ratio */
export const DEFAULT_TRIP_FAILURE_RATIO = 0.6
/** gobreaker's rule when `readyToTrip` is null: trip when consecutive failures exceed this */
export const FALLBACK_CONSECUTIVE_FAILURES = 5
/** gobreaker: `timeout: 0` (Go's zero value, "unset") means 60 s */
export const FALLBACK_TIMEOUT = 60_000

// -- open-duration backoff: ours, modelled on Envoy's outlier ejection --
/** Each trip while the level is raised doubles the open duration (Envoy multiplies by ejection count) */
export const DEFAULT_BACKOFF_MULTIPLIER = 2
/** Cap on the backed-off open duration: 10 min, 10x the first open, as Envoy caps 30 s ejections at 300 s */
export const DEFAULT_MAX_TIMEOUT = 600_000
/** Up to +20 % on backed-off durations, so peers that failed together do not probe together */
export const DEFAULT_JITTER = 0.2
/** One backoff level forgiven per 5 min CLOSED (Envoy decays its multiplier per healthy interval) */
export const DEFAULT_BACKOFF_DECAY = 300_000
/** Two open durations: probes unsettled this long cannot hold a circuit HALF_OPEN */
export const DEFAULT_MAX_HALF_OPEN_DWELL = 120_000
/** 2^32 − 1: gobreaker's counts are uint32 */
const MAX_UINT32 = 0xFFFFFFFF

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
 * Circuit breaker options. Every field is optional: `undefined` (or an omitted field) takes the
 * default (`defaultBitswapCircuitBreakerConfig()`). gobreaker's zero values keep their meaning
 * (`maxRequests: 0` is 1, `timeout: 0` is 60 s, `interval: 0` never resets the CLOSED counts);
 * negative numbers, NaN and `null` (except where a field documents it) throw `InvalidConfigError`.
 */
export interface CircuitBreakerInit {
  /**
   * How many calls a HALF_OPEN circuit admits per generation (a hard quota, not a concurrency
   * limit), and how many consecutive successes close it. 0 means 1 (gobreaker).
   *
   * @default 10
   */
  maxRequests?: number

  /**
   * Length in ms of the fixed CLOSED window after which the counts are cleared. A window starts at
   * the first call after the previous one expired. 0 or Infinity means the counts never reset
   * while CLOSED (gobreaker's 0).
   *
   * @default 30000
   */
  interval?: number

  /**
   * How long in ms the circuit stays OPEN after its first trip before it lets probes through
   * (HALF_OPEN). Later trips back off from this value. 0 means 60 s (gobreaker). Finite: a circuit
   * that never half-opens is `isolate()`.
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
   * ignored. `null` means none.
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
   * least `timeout`; Infinity leaves the backoff uncapped. Derived when omitted, so it is absent
   * from `defaultBitswapCircuitBreakerConfig()`: spreading that and raising `timeout` works.
   *
   * @default max(600000, timeout)
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

/** @deprecated use `CircuitBreakerInit` */
export type CircuitBreakerConfig = CircuitBreakerInit

/** What `defaultBitswapCircuitBreakerConfig()` returns: every default, except the derived `maxTimeout` */
export type CircuitBreakerDefaults = Omit<ResolvedCircuitBreakerConfig, 'maxTimeout' | 'onStateChange'>

/** A validated config with every default filled in */
export interface ResolvedCircuitBreakerConfig {
  maxRequests: number
  interval: number
  timeout: number
  /** Whether the counts so far open the circuit (see `CircuitBreakerInit.readyToTrip`) */
  readyToTrip(counts: Counts): boolean
  /** Whether a call's error counts as a success (see `CircuitBreakerInit.isSuccessful`) */
  isSuccessful(err: unknown): boolean
  /** Called after every state change (see `CircuitBreakerInit.onStateChange`) */
  onStateChange?: (name: string, from: CircuitState, to: CircuitState) => void
  backoffMultiplier: number
  maxTimeout: number
  jitter: number
  backoffDecay: number
  maxHalfOpenDwell: number
}

/** The Go original's trip rule: at least 3 requests and a failure ratio of at least 0.6 */
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

/**
 * The Go original's `DefaultBitswapCircuitBreakerConfig()`, plus this library's backoff defaults. `maxTimeout`
 * is left out because it is derived from `timeout` (see `CircuitBreakerInit.maxTimeout`).
 */
export function defaultBitswapCircuitBreakerConfig (): CircuitBreakerDefaults {
  return {
    maxRequests: DEFAULT_MAX_REQUESTS,
    interval: DEFAULT_INTERVAL,
    timeout: DEFAULT_TIMEOUT,
    readyToTrip: defaultReadyToTrip,
    isSuccessful: defaultIsSuccessful,
    backoffMultiplier: DEFAULT_BACKOFF_MULTIPLIER,
    jitter: DEFAULT_JITTER,
    backoffDecay: DEFAULT_BACKOFF_DECAY,
    maxHalfOpenDwell: DEFAULT_MAX_HALF_OPEN_DWELL
  }
}

/**
 * Validates a partial config and fills in the defaults. A bad value throws `InvalidConfigError`
 * naming the field (prefixed with `path`, e.g. `circuitBreaker.timeout`) and the allowed range.
 * Idempotent: a resolved config resolves to itself.
 */
export function resolveCircuitBreakerConfig (init: CircuitBreakerInit = {}, path: string = ''): ResolvedCircuitBreakerConfig {
  if (init === null || typeof init !== 'object' || Array.isArray(init)) {
    throw new InvalidConfigError(`${path === '' ? 'config' : path} must be an object, got ${describe(init)}`)
  }
  const config = init
  const at = (field: string): string => pathOf(path, field)

  // gobreaker's zero values: 0 requests is 1, a 0 timeout is the fallback, a 0 interval never resets
  const maxRequests = Math.max(1, optionalNumber(at('maxRequests'), config.maxRequests, DEFAULT_MAX_REQUESTS, { min: 0, max: MAX_UINT32, integer: true }))
  const interval = optionalNumber(at('interval'), config.interval, DEFAULT_INTERVAL, { min: 0, off: true })
  const timeout = config.timeout === 0 ? FALLBACK_TIMEOUT : optionalNumber(at('timeout'), config.timeout, DEFAULT_TIMEOUT, { min: 0, minExclusive: true })

  let readyToTrip: (counts: Counts) => boolean
  if (config.readyToTrip === null) {
    readyToTrip = consecutiveFailuresReadyToTrip
  } else {
    readyToTrip = optionalFunction(at('readyToTrip'), config.readyToTrip, defaultReadyToTrip)
  }
  const isSuccessful = optionalFunction(at('isSuccessful'), config.isSuccessful, defaultIsSuccessful)
  const onStateChange = config.onStateChange === null
    ? undefined
    : optionalFunction<ResolvedCircuitBreakerConfig['onStateChange']>(at('onStateChange'), config.onStateChange, undefined)

  const backoffMultiplier = optionalNumber(at('backoffMultiplier'), config.backoffMultiplier, DEFAULT_BACKOFF_MULTIPLIER, { min: 1, max: 1000 })
  const maxTimeout = optionalNumber(at('maxTimeout'), config.maxTimeout, Math.max(DEFAULT_MAX_TIMEOUT, timeout), { min: timeout, off: true })
  const jitter = optionalNumber(at('jitter'), config.jitter, DEFAULT_JITTER, { min: 0, max: 1 })
  const backoffDecay = optionalNumber(at('backoffDecay'), config.backoffDecay, DEFAULT_BACKOFF_DECAY, { min: 0, minExclusive: true, off: true })
  const maxHalfOpenDwell = optionalNumber(at('maxHalfOpenDwell'), config.maxHalfOpenDwell, DEFAULT_MAX_HALF_OPEN_DWELL, { min: 0, minExclusive: true, off: true })

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
