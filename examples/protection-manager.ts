/**
 * BitswapProtectionManager in a few lines: a peer fails, its circuit opens, probes close it again,
 * and its traffic ramps back up. A hand-driven clock stands in for time so the script runs instantly.
 *
 * Run: npx tsx examples/protection-manager.ts
 */
import { BitswapProtectionManager } from '../src/index.ts'

let now = Date.now()
const manager = new BitswapProtectionManager({
  circuitBreaker: { maxRequests: 2, timeout: 30_000 },
  recovery: { strategy: 'LINEAR', initialRecoveryRate: 0.25, recoveryIncrement: 0.25, successThreshold: 6 }
}, { clock: { now: () => now } })
const peer = '12D3KooWExamplePeer'

manager.onTransition(({ from, to, reason }) => { console.log(`circuit ${from} -> ${to} (${reason})`) })

/** One request to the peer; prints whether it ran, failed, or was refused without being sent */
async function request (works: boolean): Promise<void> {
  let sent = false
  try {
    await manager.executeRequest(peer, async () => {
      sent = true
      if (!works) {
        throw new Error('stream reset')
      }
    })
    console.log('  request ok')
  } catch (err) {
    console.log(`  request ${sent ? 'failed' : 'refused'}: ${(err as Error).name}`)
  }
}

console.log('the peer starts failing:')
for (let i = 0; i < 4; i++) {
  await request(false)
}

console.log('30 s later it works again; two probes close the circuit:')
now += 30_001
await request(true)
await request(true)

// auto-tuning runs the ramp at twice its configured speed here: this peer has no alternative
console.log('the recovery ramp admits a growing fraction until 6 successes in a row complete it:')
for (let step = 0; manager.getPeerStatus(peer).isRecovering; step++) {
  const rate = manager.getPeerStatus(peer).recoveryRate
  let admitted = 0
  for (let i = 0; i < 8; i++) {
    await manager.executeRequest(peer, () => { admitted++ }).catch(() => {})
  }
  console.log(`  t = ${step * 10} s: rate ${rate.toFixed(2)}, ${admitted} of 8 requests admitted`)
  now += 10_000
}
console.log(manager.getOverallStatus().getSummary())
manager.close()
