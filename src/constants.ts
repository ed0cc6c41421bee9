/**
 * Defaults. The breaker, health and recovery values are the seed's (see the README's option
 * reference); the rest are ours, each with the reason it has that value.
 */

// -- circuit breaker (gobreaker semantics, seed defaults) --
export const DEFAULT_MAX_REQUESTS = 10
export const DEFAULT_INTERVAL = 30_000
export const DEFAULT_TIMEOUT = 60_000
/** The default trip rule: at least this many requests in the window ... */
export const DEFAULT_TRIP_MIN_REQUESTS = 3
/** ... and at least this failure ratio */
export const DEFAULT_TRIP_FAILURE_RATIO = 0.6
/** gobreaker's fallback rule when no `readyToTrip` is given: trip when consecutive failures exceed this */
export const FALLBACK_CONSECUTIVE_FAILURES = 5
/** Fallback `timeout` when the config gives <= 0 (gobreaker) */
export const FALLBACK_TIMEOUT = 60_000

// -- open-duration backoff (beyond the seed) --
/** Each trip after the first multiplies the open duration by this */
export const DEFAULT_BACKOFF_MULTIPLIER = 2
/** The open duration never exceeds this */
export const DEFAULT_MAX_TIMEOUT = 600_000
/** Jitter added to backed-off open durations, as a fraction (0.2 = up to +20 %) */
export const DEFAULT_JITTER = 0.2
/** One backoff level is forgiven per this many ms spent CLOSED (Envoy-style decay) */
export const DEFAULT_BACKOFF_DECAY = 300_000
/** A HALF_OPEN circuit whose probes never settle goes back to OPEN after this long */
export const DEFAULT_MAX_HALF_OPEN_DWELL = 120_000

// -- per-peer registry --
export const DEFAULT_MAX_PEERS = 10_000
export const DEFAULT_IDLE_TIMEOUT = 600_000

// -- health monitor (seed defaults) --
export const DEFAULT_HEALTHY_THRESHOLD = 0.95
export const DEFAULT_DEGRADED_THRESHOLD = 0.80
export const DEFAULT_MAX_RESPONSE_TIME = 5_000
export const DEFAULT_MAX_CONSECUTIVE_ERRORS = 5
export const DEFAULT_MIN_SAMPLES = 3
export const DEFAULT_MAX_AGE = 600_000
/** The success rate is taken over a sliding window of this length (the seed's was lifetime) */
export const DEFAULT_HEALTH_WINDOW = 60_000

// -- recovery manager (seed defaults) --
export const DEFAULT_INITIAL_RECOVERY_RATE = 0.1
export const DEFAULT_MAX_RECOVERY_RATE = 1.0
export const DEFAULT_RECOVERY_INTERVAL = 10_000
export const DEFAULT_RECOVERY_INCREMENT = 0.1
export const DEFAULT_SUCCESS_THRESHOLD = 10
export const DEFAULT_FAILURE_THRESHOLD = 3
export const DEFAULT_MAX_RECOVERY_TIME = 300_000
export const DEFAULT_COOLDOWN_PERIOD = 30_000
