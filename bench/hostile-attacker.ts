/**
 * The attacker side of `npm run bench -- --only hostile`, in its own process so that the consumer's
 * RSS is the consumer's alone: `identities` fresh libp2p nodes on 127.0.0.1 dial the target and run
 * one attack, bounded in count and time, then print one JSON line and exit.
 *
 *   node --import tsx bench/hostile-attacker.ts '{"target":"/ip4/127.0.0.1/tcp/…/p2p/…","attack":"wantlists","identities":4}'
 */

import { multiaddr } from '@multiformats/multiaddr'
import { connect, createNode, pinPartialFrames, sendWantlistFlood, stopAll } from '../fixtures/index.ts'

interface Order {
  target: string
  attack: 'wantlists' | 'partial-frames'
  identities: number
  /** wantlists: entries per message and messages per identity */
  entries?: number
  messages?: number
  /** partial-frames: streams per identity, frame size and pacing per identity */
  streams?: number
  frameSize?: number
  bytesPerSecond?: number
}

const order = JSON.parse(process.argv[2] ?? '{}') as Order
const target = multiaddr(order.target)
const nodes = await Promise.all(Array.from({ length: order.identities }, async () => createNode({ transport: 'tcp', listen: false })))
const startedAt = performance.now()
let outcome: unknown
try {
  await Promise.all(nodes.map(async node => connect(node, target, { timeout: 10_000 })))
  // the consumer starts its healthy fetch now, so that it runs beside the attack
  process.stdout.write(JSON.stringify({ ready: true }) + '\n')
  if (order.attack === 'wantlists') {
    outcome = await Promise.all(nodes.map(async node => sendWantlistFlood(node, target, { entries: order.entries, messages: order.messages, timeout: 20_000 })))
  } else {
    const pinned = await Promise.all(nodes.map(async node => pinPartialFrames(node, target, { streams: order.streams, frameSize: order.frameSize, bytesPerSecond: order.bytesPerSecond, timeout: 30_000 })))
    // hold what was pinned a moment, as the attack does, then report how much of it the target ended
    await new Promise(resolve => setTimeout(resolve, 2_000))
    outcome = pinned.map(p => ({ bytes: p.bytes, sent: p.sent, refused: p.refused, ended: p.ended() }))
    for (const p of pinned) {
      p.release()
    }
  }
} catch (err) {
  outcome = { error: String(err) }
}
process.stdout.write(JSON.stringify({ ms: Math.round(performance.now() - startedAt), outcome }) + '\n')
// nodes whose connections the target cut may take a while to stop: the report is out, so give it 3 s
await Promise.race([stopAll(...nodes), new Promise(resolve => setTimeout(resolve, 3_000))])
process.exit(0)
