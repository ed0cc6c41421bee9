/**
 * The DONT_HAVE delivery mechanism alone (src/libp2p/release.ts), on real in-process Helia nodes:
 * a release handed to this node's own Bitswap handler ends a session's wait on a silent provider,
 * on memory and on TCP, whether the provider is still connected or not.
 */

import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import { DeadlineScheduler } from '../../src/libp2p/deadline-scheduler.ts'
import { WantReleaser } from '../../src/libp2p/release.ts'
import { BITSWAP_PROTOCOL, TestNet, componentsOf, connect, makeBlocks, pause, waitFor } from '../../fixtures/index.ts'
import type { HeliaNode, TestBlock, Transport } from '../../fixtures/index.ts'
import type { PeerId } from '@libp2p/interface'

function releaserOf (node: HeliaNode, protocols: string[] = [BITSWAP_PROTOCOL]): { releaser: WantReleaser, scheduler: DeadlineScheduler } {
  const { registrar, connectionManager } = componentsOf(node)
  const scheduler = new DeadlineScheduler()
  const releaser = new WantReleaser({ registrar, connectionManager, logger: defaultLogger() }, { protocols, enabled: true, scheduler })
  releaser.start()
  return { releaser, scheduler }
}

/** helia 7 `get` returns the bytes or an async iterable of chunks */
async function bytesOf (value: Uint8Array | Promise<Uint8Array> | Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const resolved = await value
  if (resolved instanceof Uint8Array) {
    return resolved
  }
  const chunks: Uint8Array[] = []
  for await (const chunk of resolved) {
    chunks.push(chunk)
  }
  return Uint8Array.from(chunks.flatMap(c => [...c]))
}

describe('release delivery (DONT_HAVE to our own Bitswap handler)', function () {
  this.timeout(20_000)
  const net = new TestNet()
  let schedulers: DeadlineScheduler[] = []
  afterEach(async () => {
    schedulers.forEach(s => { s.stop() })
    schedulers = []
    await net.stop()
  })

  /** A session whose only provider is silent: the fetch waits until the release */
  async function silentSession (transport: Transport, disconnectFirst: boolean): Promise<void> {
    const [block] = await makeBlocks(1, 1024, { seed: 7 }) as [TestBlock]
    const silent = await net.provider({ transport, blocks: [block], mode: 'stall', proxy: false })
    const healthy = await net.provider({ transport, blocks: [block], proxy: false })
    const consumer = await net.helia({ transport })
    await connect(consumer, silent)
    await connect(consumer, healthy)
    const { releaser, scheduler } = releaserOf(consumer)
    schedulers.push(scheduler)

    // one provider at a time: the healthy one is asked only once the silent one is dropped
    const session = consumer.blockstore.createSession(block.cid, { providers: [healthy.peerId.toCID(), silent.peerId.toCID()], maxProviders: 1, minProviders: 1 })
    let done = false
    const got = bytesOf(session.get(block.cid, { signal: AbortSignal.timeout(15_000) })).finally(() => { done = true })
    await waitFor(() => silent.stats.stalled > 0, { message: 'the want never reached the silent provider' })
    await pause(300)
    assert.equal(done, false, 'the session should still wait for the silent provider')
    if (disconnectFirst) {
      await consumer.libp2p.hangUp(silent.peerId)
      await pause(100)
      assert.equal(done, false, 'a disconnect alone should not end the wait (helia 7.1.15)')
    }
    releaser.release(silent.peerId as PeerId, block.cid.bytes, 'deadline')
    const bytes = await got
    assert.deepEqual(bytes, block.bytes)
    assert.equal(releaser.releasedFor(silent.peerId), 1)
    assert.equal(releaser.status, 'active')
    await pause(50)
  }

  for (const transport of ['memory', 'tcp'] as const) {
    it(`ends a session's wait on a connected silent provider (${transport})`, async () => {
      await silentSession(transport, false)
    })
    it(`ends a session's wait on a provider that has disconnected (${transport})`, async () => {
      await silentSession(transport, true)
    })
  }

  it('says unreachable, once, when no handler is registered for its protocols', async () => {
    const consumer = await net.helia()
    const { releaser, scheduler } = releaserOf(consumer, ['/not/bitswap/1.0.0'])
    schedulers.push(scheduler)
    const [block] = await makeBlocks(1, 64) as [TestBlock]
    releaser.release(consumer.libp2p.peerId, block.cid.bytes, 'deadline')
    await pause(10)
    assert.equal(releaser.status, 'unreachable')
  })

  it('delivers nothing after stop()', async () => {
    const consumer = await net.helia()
    const { releaser, scheduler } = releaserOf(consumer)
    schedulers.push(scheduler)
    const [block] = await makeBlocks(1, 64) as [TestBlock]
    let calls = 0
    const { registrar } = componentsOf(consumer)
    const record = registrar.getHandler(BITSWAP_PROTOCOL)
    const original = record.handler
    record.handler = (...args) => { calls++; return original(...args) }
    releaser.release(consumer.libp2p.peerId, block.cid.bytes, 'deadline')
    releaser.stop()
    releaser.release(consumer.libp2p.peerId, block.cid.bytes, 'deadline')
    await pause(20)
    record.handler = original
    assert.equal(calls, 0)
  })
})
