/**
 * One circuit per peer, in a bounded registry: a failing peer is cut off while the others keep
 * working, and a flood of new peers cannot push the tripped one out.
 *
 * Run: npx tsx examples/per-peer.ts
 */
import { BitswapCircuitBreaker } from '../src/breaker/per-peer.ts'

const breaker = new BitswapCircuitBreaker({
  readyToTrip: counts => counts.consecutiveFailures >= 2
}, { maxPeers: 100 })

breaker.onStateChange(({ name, from, to, reason }) => {
  console.log(`  [${name}] ${from} -> ${to} (${reason})`)
})

async function want (peer: string, ok: boolean): Promise<void> {
  try {
    await breaker.executeWithPeer(peer, async () => {
      if (!ok) {
        throw new Error('stream reset')
      }
    })
    console.log(`${peer}: ok`)
  } catch (err) {
    console.log(`${peer}: ${(err as Error).name}`)
  }
}

await want('good-peer', true)
await want('bad-peer', false)
await want('bad-peer', false)
await want('bad-peer', true)
await want('good-peer', true)

for (let i = 0; i < 10_000; i++) {
  await breaker.executeWithPeer(`one-off-${i}`, () => undefined)
}
console.log(`after 10 000 one-off peers: ${breaker.size} tracked, bad-peer is ${breaker.getPeerState('bad-peer')}`)
console.log('states:', [...breaker.getAllStates()].filter(([, state]) => state !== 'CLOSED'))
