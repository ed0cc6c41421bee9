/**
 * Releasing Bitswap's waits on real in-process Helia nodes (issue 10): a Helia session that asked a
 * provider which will never answer gets a DONT_HAVE on that provider's behalf, drops it and asks the
 * next one, so the fetch finishes; and nothing is released that the peer answered, or after stop().
 */

import assert from 'node:assert/strict'
import { ReplayStream } from '../../src/libp2p/replay-stream.ts'
import {
  BITSWAP_PROTOCOL, TestNet, blocksMessage, componentsOf, connect, createConsumer, encodeFrame, fetchAll, makeBlocks,
  pause, presenceMessage, readMessages, BlockPresenceType, waitFor
} from '../../fixtures/index.ts'
import type { BitswapCircuitBreakerInit } from '../../src/index.ts'
import type { Consumer, FaultyProvider, NodeLike, TestBlock, TestNode } from '../../fixtures/index.ts'
import type { Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/** Counts, from now on, the messages handed to the node's Bitswap handler by the releaser */
function countReleases (node: NodeLike): { readonly count: number } {
  const record = componentsOf(node).registrar.getHandler(BITSWAP_PROTOCOL)
  const original = record.handler
  const counter = { count: 0 }
  record.handler = (stream, connection) => {
    if (stream instanceof ReplayStream) {
      counter.count++
    }
    return original(stream, connection)
  }
  return counter
}

async function connectAll (consumer: Consumer, providers: FaultyProvider[]): Promise<void> {
  for (const provider of providers) {
    await connect(consumer, provider)
  }
}

/**
 * A Bitswap peer answering the way boxo does: blocks (or DONT_HAVE) for the wants it reads go out
 * over ONE long-lived stream it opened to us and keeps open
 */
async function longLivedProvider (node: TestNode, blocks: TestBlock[]): Promise<{ answered: number, streams: number }> {
  const byCid = new Map(blocks.map(b => [b.cid.toString(), b]))
  const stats = { answered: 0, streams: 0 }
  let reply: Promise<Stream> | undefined
  await node.handle(BITSWAP_PROTOCOL, (stream, connection) => {
    readMessages(stream, (message) => {
      const have: TestBlock[] = []
      const missing: CID[] = []
      for (const entry of message.wantlist?.entries ?? []) {
        const block = entry.cancel === true ? undefined : [...byCid.values()].find(b => equal(b.cid.bytes, entry.cid))
        if (block != null) {
          have.push(block)
        } else if (entry.cancel !== true && entry.sendDontHave === true) {
          missing.push({ bytes: entry.cid } as unknown as CID)
        }
      }
      if (have.length === 0 && missing.length === 0) {
        return
      }
      void (async () => {
        if (reply == null) {
          stats.streams++
          reply = connection.newStream(BITSWAP_PROTOCOL, { signal: AbortSignal.timeout(5000) })
        }
        const out = await reply
        if (have.length > 0) {
          out.send(encodeFrame(blocksMessage(have)))
        }
        if (missing.length > 0) {
          out.send(encodeFrame(presenceMessage(missing, BlockPresenceType.DoNotHaveBlock)))
        }
        stats.answered += have.length + missing.length
      })().catch(() => {})
    }).catch(() => {})
    stream.close().catch(() => {})
  })
  return stats
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i])
}

describe('releasing Bitswap waits on real Helia nodes', function () {
  this.timeout(60_000)
  const net = new TestNet()
  afterEach(async () => { await net.stop() })

  describe('a session whose first five providers are silent (TCP)', () => {
    async function run (init: BitswapCircuitBreakerInit, timeout: number): Promise<{ received: number, lost: number, consumer: Consumer }> {
      const blocks = await makeBlocks(20, 4096, { seed: 101 })
      const silent: FaultyProvider[] = []
      for (let i = 0; i < 5; i++) {
        silent.push(await net.provider({ transport: 'tcp', proxy: false, blocks, mode: 'stall' }))
      }
      const healthy = await net.provider({ transport: 'tcp', proxy: false, blocks })
      const consumer = await createConsumer(net, init, { transport: 'tcp' })
      await connectAll(consumer, [healthy, ...silent])
      // helia asks the last five first (its maxProviders), the healthy sixth only once they fail
      const result = await fetchAll(consumer, blocks, { api: 'session', providers: [healthy, ...silent], timeout })
      return { ...result, consumer }
    }

    it('gets every block within 8 s', async () => {
      const { received, lost, consumer } = await run({}, 8_000)
      assert.equal(lost, 0)
      assert.equal(received, 20)
      const { releases } = consumer.libp2p.services.breaker.getOverallStatus()
      assert.equal(releases.status, 'active')
      assert.ok(releases.released >= 5, `released ${releases.released}`)
    })

    it('without releases (releaseWaits: false) it gets nothing in 3 s: helia waits on the silent five', async () => {
      const { received, consumer } = await run({ releaseWaits: false }, 3_000)
      assert.equal(received, 0)
      assert.deepEqual(consumer.libp2p.services.breaker.getOverallStatus().releases, { status: 'disabled', released: 0 })
    })
  })

  it('a session with a DONT_HAVE provider and a silent one before the healthy one finishes through the healthy one', async () => {
    const blocks = await makeBlocks(20, 4096, { seed: 102 })
    const healthy = await net.provider({ blocks })
    const dontHave = await net.provider({ blocks, mode: 'dont-have' })
    const silent = await net.provider({ blocks, mode: 'stall' })
    const consumer = await createConsumer(net)
    await connectAll(consumer, [healthy, dontHave, silent])
    // two at a time: the healthy provider is asked only once both others are dropped
    const result = await fetchAll(consumer, blocks, { api: 'session', providers: [healthy, dontHave, silent], maxProviders: 2, timeout: 8_000 })
    assert.equal(result.lost, 0, `lost: ${result.latencies.map((l, i) => Number.isNaN(l) ? i : -1).filter(i => i >= 0).join(',')}`)
    const service = consumer.libp2p.services.breaker
    assert.ok(service.getPeerStatus(silent.peerId).releasedWants > 0)
    assert.equal(service.getPeerStatus(dontHave.peerId).releasedWants, 0, 'it answered every want itself')
    assert.equal(service.getPeerStatus(healthy.peerId).releasedWants, 0)
  })

  it('a provider answering over one long-lived stream it keeps open (boxo): its answers count and it is never released', async () => {
    const blocks = await makeBlocks(30, 4096, { seed: 103 })
    const node = await net.node()
    const stats = await longLivedProvider(node, blocks)
    const consumer = await createConsumer(net)
    const released = countReleases(consumer)
    await connect(consumer, node)
    const session = await fetchAll(consumer, blocks.slice(0, 15), { api: 'session', providers: [node], timeout: 10_000 })
    const get = await fetchAll(consumer, blocks.slice(15), { timeout: 10_000 })
    assert.equal(session.lost + get.lost, 0)
    assert.equal(stats.streams, 1, 'every answer went over the one stream')
    const status = consumer.libp2p.services.breaker.getPeerStatus(node.peerId)
    assert.ok((status.health?.totalRequests ?? 0) >= 30, `answers counted: ${status.health?.totalRequests}`)
    assert.equal(status.health?.errorCount, 0)
    assert.equal(status.releasedWants, 0)
    assert.equal(released.count, 0)
  })

  it('never releases a want the peer answered with a block, even when it disconnects or its circuit opens', async () => {
    const blocks = await makeBlocks(20, 4096, { seed: 104 })
    const provider = await net.provider({ blocks })
    const consumer = await createConsumer(net)
    const released = countReleases(consumer)
    await connect(consumer, provider)
    const result = await fetchAll(consumer, blocks, { providers: [provider] })
    assert.equal(result.lost, 0)
    const service = consumer.libp2p.services.breaker
    service.isolate(provider.peerId)
    await waitFor(() => consumer.libp2p.getConnections(provider.peerId).length === 0)
    await pause(50)
    assert.equal(service.getPeerStatus(provider.peerId).releasedWants, 0)
    assert.equal(service.getOverallStatus().releases.released, 0)
    assert.equal(released.count, 0)
  })

  it('releases nothing after stop()', async () => {
    const blocks = await makeBlocks(3, 4096, { seed: 105 })
    const silent = await net.provider({ blocks, mode: 'stall' })
    const consumer = await createConsumer(net, { observe: { coldDeadline: 300, coldRttMultiplier: 0 } })
    const released = countReleases(consumer)
    await connect(consumer, silent)
    const controller = new AbortController()
    const fetching = fetchAll(consumer, blocks, { api: 'session', providers: [silent], signal: controller.signal })
    await waitFor(() => silent.stats.stalled > 0)
    const service = consumer.libp2p.services.breaker
    ;(service as unknown as { stop(): void }).stop()
    await pause(800)
    assert.equal(released.count, 0)
    assert.equal(service.getOverallStatus().releases.status, 'not-started')
    controller.abort()
    await fetching
  })
})
