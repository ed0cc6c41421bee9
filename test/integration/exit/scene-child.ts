/**
 * Child process of exit.spec.ts: a hostile scene (a healthy fetch beside a resetting provider, a
 * garbage sender, a wantlist flood and pinned partial frames), then `stop()` of every node. It prints
 * `stopped` and returns: the process must then end by itself, with nothing of ours left running.
 * `EXIT_CHILD_LEAK=1` leaves one interval running on purpose (the control case of the spec).
 */

import assert from 'node:assert/strict'
import { CircuitState } from '../../../src/index.ts'
import { TestNet, connect, createScene, pinPartialFrames, sendGarbage, sendWantlistFlood, waitFor } from '../../../fixtures/index.ts'

process.on('unhandledRejection', (err) => {
  console.error('unhandled rejection', err)
  process.exitCode = 3
})

const net = new TestNet()
try {
  const scene = await createScene(net, { attackers: 2 })
  const resetting = await net.provider({ transport: 'tcp', blocks: scene.blocks, mode: 'reset', proxy: false })
  await connect(scene.consumer, resetting.helia)
  const [garbage, flooder] = scene.attackers
  const [result] = await Promise.all([
    scene.fetch({ providers: [scene.healthy.helia, resetting.helia] }),
    sendGarbage(garbage, scene.consumer, { timeout: 1000 }),
    sendWantlistFlood(flooder, scene.consumer, { messages: 2, entries: 5000, timeout: 2000 }).catch(() => undefined),
    pinPartialFrames(flooder, scene.consumer, { streams: 2, frameSize: 256 * 1024, timeout: 2000 }).catch(() => undefined)
  ])
  await waitFor(() => scene.everOpen(resetting.helia), { timeout: 10_000, message: 'the resetting provider never opened' })
  assert.equal(result.received, scene.blocks.length, 'blocks received')
  assert.notEqual(scene.state(scene.healthy.helia), CircuitState.OPEN, 'the healthy provider is OPEN')
} finally {
  await net.stop()
}
if (process.env.EXIT_CHILD_LEAK === '1') {
  setInterval(() => {}, 1000)
}
console.log('stopped')
