/**
 * libp2p 3.3.11 dispatches `remoteCloseWrite` while the bytes the remote sent before its FIN still
 * sit in the stream's read buffer; @helia/bitswap ends its input on that event, so with any stream
 * middleware delaying its handler the last message of a stream could be lost. Seen as a Helia
 * session that never got its first block from a single healthy provider.
 */

import assert from 'node:assert/strict'
import { TestNet, connect, createConsumer, fetchAll, makeBlocks } from '../../fixtures/index.ts'

describe('a message followed at once by the remote closing its side (real Helia nodes)', function () {
  this.timeout(30_000)
  const net = new TestNet()
  afterEach(async () => { await net.stop() })

  for (const transport of ['memory', 'tcp'] as const) {
    it(`reaches Bitswap through the service: a session gets every block, its first one included (${transport})`, async () => {
      const blocks = await makeBlocks(20, 4096, { seed: 104 })
      const provider = await net.provider({ transport, proxy: false, blocks })
      const consumer = await createConsumer(net, {}, { transport })
      await connect(consumer, provider)
      const result = await fetchAll(consumer, blocks, { api: 'session', providers: [provider], timeout: 5_000 })
      assert.deepEqual(result.latencies.map((l, i) => Number.isNaN(l) ? i : -1).filter(i => i >= 0), [], 'lost blocks')
    })
  }
})
