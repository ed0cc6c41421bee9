/**
 * One circuit breaker around a flaky operation: it trips after repeated failures, rejects
 * without calling the operation while OPEN, probes again after the timeout, and backs off when
 * the probes fail.
 *
 * Run: npx tsx examples/circuit-breaker.ts
 */
import { CircuitBreaker } from '../src/breaker/circuit-breaker.ts'

let now = 0
const clock = { now: () => now }

const breaker = new CircuitBreaker('bitswap-get', {
  maxRequests: 2,
  timeout: 1_000,
  readyToTrip: counts => counts.consecutiveFailures >= 3
}, { clock })

breaker.onStateChange(({ name, from, to, reason }) => {
  console.log(`  [${name}] ${from} -> ${to} (${reason})`)
})

async function fetchBlock (ok: boolean): Promise<string> {
  if (!ok) {
    throw new Error('peer timed out')
  }
  return 'block bytes'
}

async function attempt (ok: boolean): Promise<void> {
  try {
    const result = await breaker.execute(async () => fetchBlock(ok))
    console.log(`t=${now}ms ok: ${result}`)
  } catch (err) {
    console.log(`t=${now}ms ${(err as Error).name}: ${(err as Error).message}`)
  }
}

for (let i = 0; i < 3; i++) {
  await attempt(false)
}
console.log(`state: ${breaker.state}, probes allowed at t=${breaker.openUntil}ms`)
await attempt(true)

now = 1_001
console.log(`state after the timeout: ${breaker.state}`)
await attempt(false)
console.log(`a failed probe reopens it for longer: until t=${Math.round(breaker.openUntil)}ms (backoff level ${breaker.backoffLevel})`)

now = Math.ceil(breaker.openUntil) + 1
await attempt(true)
await attempt(true)
console.log(`state: ${breaker.state}, fresh counts for the new generation: ${JSON.stringify(breaker.counts())}`)
