/**
 * The string values of states, statuses and strategies. Each is also a constant object so callers
 * can write `CircuitState.OPEN` and still compare with plain strings.
 * @packageDocumentation
 */

/** A circuit's state: CLOSED lets requests through, OPEN refuses them, HALF_OPEN admits a few probes */
export const CircuitState = {
  CLOSED: 'CLOSED',
  OPEN: 'OPEN',
  HALF_OPEN: 'HALF_OPEN'
} as const
export type CircuitState = typeof CircuitState[keyof typeof CircuitState]

/** A peer's health, from its recorded requests (UNKNOWN: too few to judge) */
export const HealthStatus = {
  HEALTHY: 'HEALTHY',
  DEGRADED: 'DEGRADED',
  UNHEALTHY: 'UNHEALTHY',
  UNKNOWN: 'UNKNOWN'
} as const
/** One of the `HealthStatus` values */
export type HealthStatus = typeof HealthStatus[keyof typeof HealthStatus]

/** How the admitted fraction grows during a recovery ramp */
export const RecoveryStrategy = {
  LINEAR: 'LINEAR',
  EXPONENTIAL: 'EXPONENTIAL',
  STEP: 'STEP'
} as const
/** One of the `RecoveryStrategy` values */
export type RecoveryStrategy = typeof RecoveryStrategy[keyof typeof RecoveryStrategy]

/**
 * How a call ended. NEUTRAL (the caller aborted, or an answer that says nothing about the peer)
 * counts neither way and gives a half-open permit back.
 */
export const Outcome = {
  SUCCESS: 0,
  FAILURE: 1,
  NEUTRAL: 2
} as const
export type Outcome = typeof Outcome[keyof typeof Outcome]
