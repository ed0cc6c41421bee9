/**
 * RecoveryManager in a few lines: start a recovery, watch the admitted fraction ramp up, then
 * complete it with successes. A hand-driven clock stands in for time so the script runs instantly.
 *
 * Run: npx tsx examples/recovery-manager.ts
 */
import { RecoveryManager } from '../src/recovery/recovery-manager.ts'

let now = Date.now()
const clock = { now: () => now }
const manager = new RecoveryManager({ strategy: 'LINEAR', initialRecoveryRate: 0.1, recoveryIncrement: 0.2, recoveryInterval: 10_000 }, { clock })
const peer = '12D3KooWExamplePeer'

manager.onRecoveryStart(({ peer }) => { console.log(`recovery started for ${String(peer)}`) })
manager.onRecoveryComplete(({ peer }) => { console.log(`recovery complete for ${String(peer)}`) })
manager.onRecoveryFailed(({ peer, reason }) => { console.log(`recovery failed for ${String(peer)}: ${reason}`) })

manager.startRecovery(peer)
for (let step = 0; step <= 5; step++) {
  let admitted = 0
  for (let i = 0; i < 1000; i++) {
    if (manager.shouldAllowRequest(peer)) {
      admitted++
    }
  }
  console.log(`t = ${step * 10} s: rate ${manager.getRecoveryRate(peer).toFixed(2)}, admitted ${admitted} of 1000`)
  now += 10_000
}

for (let i = 0; i < 10; i++) {
  manager.recordRecoveryAttempt(peer, true)
}
console.log('rate after completion:', manager.getRecoveryRate(peer))
console.log('stats:', manager.getRecoveryStats())
manager.close()
