/**
 * HealthMonitor in a few lines: record request outcomes, watch status changes, read a snapshot.
 * A hand-driven clock stands in for time so the script runs instantly.
 *
 * Run: npx tsx examples/health-monitor.ts
 */
import { HealthMonitor } from '../src/health/health-monitor.ts'

let now = Date.now()
const clock = { now: () => now }
const monitor = new HealthMonitor({ maxResponseTime: 500, window: 60_000 }, { clock })
const peer = '12D3KooWExamplePeer'

monitor.onStatusChange(({ peer, from, to }) => {
  console.log(`  status ${String(peer)}: ${from} -> ${to}`)
})

console.log('20 fast successes:')
for (let i = 0; i < 20; i++) {
  monitor.recordRequest(peer, 40 + i)
}

console.log('5 failures in a row (20/25 = 0.80 is still DEGRADED; the 5th error in a row is UNHEALTHY):')
for (let i = 0; i < 5; i++) {
  monitor.recordRequest(peer, 120, new Error('stream reset'))
}

const health = monitor.getHealth(peer)
if (health != null) {
  console.log(`  successRate ${health.successRate.toFixed(2)}, mean ${health.meanResponseTime.toFixed(0)} ms, p95 ${health.p95ResponseTime.toFixed(0)} ms, consecutiveErrors ${health.consecutiveErrors}`)
}

console.log('two minutes later the failures have left the window (UNKNOWN until 3 new samples); 3 successes:')
now += 120_000
for (let i = 0; i < 3; i++) {
  monitor.recordRequest(peer, 45)
}
console.log(`  successRate ${monitor.getHealth(peer)?.successRate.toFixed(2)}, lifetime errors ${monitor.getHealth(peer)?.errorCount}`)
console.log('stats:', monitor.getHealthStats())
monitor.close()
