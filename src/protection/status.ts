import { CircuitState } from '../states.ts'
import type { CircuitStateCounts, OverallStatus } from './types.ts'
import type { BreakerCore } from '../breaker/core.ts'
import type { PeerTable } from '../peers/peer-table.ts'

/** Peers per circuit state at `now` (time-driven changes are applied as each is read) */
export function countCircuitStates (table: PeerTable, core: BreakerCore, now: number): CircuitStateCounts {
  const counts: CircuitStateCounts = { closed: 0, open: 0, halfOpen: 0 }
  table.forEach((record) => {
    const state = core.stateOf(record, now)
    if (state === CircuitState.OPEN) {
      counts.open++
    } else if (state === CircuitState.HALF_OPEN) {
      counts.halfOpen++
    } else {
      counts.closed++
    }
  })
  return counts
}

/** The overall status from its numbers, with the seed's `isHealthy` rule and summary line */
export function overallStatus (parts: Omit<OverallStatus, 'isHealthy' | 'getSummary'>): OverallStatus {
  const { totalPeers, healthStats, recoveryStats, circuitStates } = parts
  return {
    ...parts,
    isHealthy () {
      if (totalPeers === 0) {
        return true
      }
      return healthStats.healthyPeers / totalPeers > 0.8 && circuitStates.open / totalPeers < 0.2
    },
    getSummary () {
      const healthyPercent = totalPeers === 0 ? 0 : healthStats.healthyPeers / totalPeers * 100
      return `System Status: ${totalPeers} peers, ${healthStats.healthyPeers} healthy (${healthyPercent.toFixed(1)}%), ${recoveryStats.recoveringPeers} recovering, ${circuitStates.open} circuit breakers open`
    }
  }
}
