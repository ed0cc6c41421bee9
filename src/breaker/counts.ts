import type { Counts } from './config.ts'
import type { BreakerState } from '../peers/peer-record.ts'

/** The counts alone, as a new object (the state's other fields left out) */
export function copyCounts (c: Counts): Counts {
  return {
    requests: c.requests,
    totalSuccesses: c.totalSuccesses,
    totalFailures: c.totalFailures,
    consecutiveSuccesses: c.consecutiveSuccesses,
    consecutiveFailures: c.consecutiveFailures
  }
}

export function resetCounts (c: Counts): void {
  c.requests = 0
  c.totalSuccesses = 0
  c.totalFailures = 0
  c.consecutiveSuccesses = 0
  c.consecutiveFailures = 0
}

/** A copy of a state's counts (HALF_OPEN: every admitted probe so far; a failure would have reopened it) */
export function countsOf (state: BreakerState): Counts {
  if (state.kind === 'closed') {
    return copyCounts(state)
  }
  const successes = state.kind === 'half-open' ? state.successes : 0
  const requests = state.kind === 'half-open' ? state.inFlight + successes : 0
  return { requests, totalSuccesses: successes, totalFailures: 0, consecutiveSuccesses: successes, consecutiveFailures: 0 }
}
