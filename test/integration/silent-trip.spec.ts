/**
 * Issue 10, item 3: on defaults, a provider that accepts Bitswap streams and never answers reaches
 * OPEN within 2.5 s of its first unanswered want, inside the fetch that found it out (the cold want
 * deadline is boxo's 2 s + 3 x RTT, not a flat 5 s).
 */

import assert from 'node:assert/strict'
import { TestNet, connect, createConsumer, fetchAll, makeBlocks, nextEventFor, waitFor } from '../../fixtures/index.ts'

describe('a silent provider on defaults (real Helia nodes)', function () {
  this.timeout(30_000)
  const net = new TestNet()
  afterEach(async () => { await net.stop() })

  for (const transport of ['memory', 'tcp'] as const) {
    it(`is OPEN within 2.5 s of its first unanswered want (${transport})`, async () => {
      const blocks = await makeBlocks(100, 4096, { seed: 401 })
      const healthy = await net.provider({ transport, proxy: false, blocks })
      const silent = await net.provider({ transport, proxy: false, blocks, mode: 'stall' })
      const consumer = await createConsumer(net, {}, { transport })
      await connect(consumer, healthy)
      await connect(consumer, silent)
      const service = consumer.libp2p.services.breaker
      const opened = nextEventFor(service, 'circuit:open', silent.peerId, 10_000)
      const fetching = fetchAll(consumer, blocks, { timeout: 10_000 })
      await waitFor(() => silent.stats.stalled > 0, { interval: 5 })
      const firstWant = performance.now()
      await opened
      const after = performance.now() - firstWant
      const result = await fetching
      assert.equal(result.lost, 0)
      process.stdout.write(`      OPEN after ${Math.round(after)} ms\n`)
      assert.ok(after <= 2_500, `OPEN ${Math.round(after)} ms after its first want`)
    })
  }
})
