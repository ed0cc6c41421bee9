/**
 * The demo's scenario, as data: what the flaky provider does when, what the consumer fetches, and
 * the short breaker settings that fit the whole arc (trip → half-open → close → ramp-up) into ~25 s.
 */

import { seededRandom } from '../src/clock.ts'
import type { BitswapCircuitBreakerInit } from '../src/index.ts'
import type { FaultMode } from '../fixtures/index.ts'

export interface Phase {
  /** Short name, shown in the table and the picture */
  name: string
  /** ms after the scenario starts */
  at: number
  /** What the flaky provider does with Bitswap streams from then on */
  mode: Exclude<FaultMode, 'delay'>
  /** One line for people */
  description: string
}

export const PHASES: readonly Phase[] = [
  { name: 'healthy', at: 0, mode: 'none', description: 'both providers answer' },
  { name: 'resets', at: 3000, mode: 'reset', description: 'the flaky provider resets every Bitswap stream' },
  { name: 'stalls', at: 8000, mode: 'stall', description: 'the flaky provider accepts streams and never answers' },
  { name: 'healed', at: 14000, mode: 'none', description: 'the flaky provider answers again' }
]

export const SCENARIO = {
  /** A wave of wants starts every `period` ms (later if the previous wave is still running) */
  waves: 48,
  period: 500,
  /** Per wave: blocks the healthy provider holds (the flaky one holds every other one of them too) */
  sharedPerWave: 16,
  /** Per wave: blocks only the flaky provider holds, so its recovery shows as blocks it serves again */
  ownPerWave: 4,
  blockSize: 4096,
  /** After the last wave, how long to wait for blocks still outstanding before counting them lost */
  grace: 5000
} as const

/** Short settings so the arc fits the minute; the defaults are for real networks (minutes, not seconds) */
export function breakerSettings (): BitswapCircuitBreakerInit {
  return {
    circuitBreaker: { timeout: 2000, maxTimeout: 4000, maxRequests: 3 },
    responseDeadline: 500,
    recovery: {
      strategy: 'LINEAR',
      recoveryInterval: 2000,
      initialRecoveryRate: 0.25,
      recoveryIncrement: 0.25,
      // every answered want counts, and a healed peer first answers its whole backlog at once
      successThreshold: 200
    },
    // the same backoff jitter on every run, so the demo tells the same story each time
    random: seededRandom(2024)
  }
}

/** The phase running at `ms` after the start */
export function phaseAt (ms: number): number {
  let index = 0
  for (let i = 0; i < PHASES.length; i++) {
    if (PHASES[i].at <= ms) {
      index = i
    }
  }
  return index
}

/** How long the waves take if nothing slows them down */
export function nominalDuration (): number {
  return SCENARIO.waves * SCENARIO.period
}
