/**
 * Smoke tests for fixtures/: nodes fetch, each fault mode does what it claims, abusers abuse, and
 * everything stops.
 */

import assert from 'node:assert/strict'
import {
  BITSWAP_PROTOCOL,
  BitswapRecorder,
  BlockPresenceType,
  TestNet,
  WantType,
  connect,
  denyDirectDials,
  encodeFrame,
  fetchAll,
  floodStreams,
  makeBlocks,
  pause,
  sendGarbage,
  sendMessages,
  sendWants,
  wantlistMessage,
  waitFor
} from '../../fixtures/index.ts'
import type { HeliaNode, Multiaddr, TestBlock } from '../../fixtures/index.ts'
import type { Connection } from '@libp2p/interface'

describe('test fixtures', function () {
  this.timeout(20_000)
  const net = new TestNet()
  let blocks: TestBlock[]

  before(async () => {
    blocks = await makeBlocks(40, 4096)
  })

  afterEach(async () => {
    await net.stop()
  })

  describe('blocks', () => {
    it('are deterministic, distinct and of the requested size', async () => {
      const again = await makeBlocks(40, 4096)
      const other = await makeBlocks(40, 4096, { seed: 1 })

      assert.deepEqual(again.map(b => b.cid.toString()), blocks.map(b => b.cid.toString()))
      assert.equal(new Set([...blocks, ...other].map(b => b.cid.toString())).size, 80)
      assert.ok(blocks.every(b => b.bytes.byteLength === 4096))
    })
  })

  describe('two Helia nodes', () => {
    for (const transport of ['memory', 'tcp'] as const) {
      it(`fetch every block over ${transport} with the get API`, async () => {
        const provider = await net.provider({ transport, blocks })
        const consumer = await net.helia({ transport })
        await connect(consumer, provider)

        const result = await fetchAll(consumer, blocks, { api: 'get' })

        assert.deepEqual({ received: result.received, lost: result.lost, corrupt: result.corrupt }, { received: 40, lost: 0, corrupt: 0 })
        assert.ok(result.latencies.every(ms => ms >= 0))
        assert.ok(provider.stats.passed > 0)
      })
    }

    it('fetch every block over a tcp session with explicit providers', async () => {
      const provider = await net.provider({ transport: 'tcp', blocks })
      const consumer = await net.helia({ transport: 'tcp' })
      await connect(consumer, provider)

      const result = await fetchAll(consumer, blocks, { api: 'session', providers: [provider.peerId] })

      assert.equal(result.received, 40)
      assert.equal(result.lost, 0)
    })

    it('count blocks nobody has as lost, within the timeout', async () => {
      const provider = await net.provider({ blocks: [] })
      const consumer = await net.helia()
      await connect(consumer, provider)

      const result = await fetchAll(consumer, blocks.slice(0, 3), { timeout: 300 })

      assert.equal(result.lost, 3)
      assert.equal(result.errors.length, 3)
      assert.ok(result.latencies.every(Number.isNaN))
    })
  })

  describe('fault modes', () => {
    const cid = (i: number): TestBlock['cid'] => blocks[i].cid

    it('reset: every inbound Bitswap stream is reset', async () => {
      const provider = await net.provider({ blocks, mode: 'reset' })
      const consumer = await net.node()

      const streams = await Promise.all([0, 1, 2].map(async i => sendWants(consumer, provider, [cid(i)]).catch(() => undefined)))
      await waitFor(() => provider.stats.reset === 3)

      for (const stream of streams) {
        // the reset can land before or after our send finished
        if (stream != null) {
          await waitFor(() => stream.status === 'reset')
        }
      }
      assert.equal(provider.stats.passed, 0)
    })

    it('stall: streams are accepted and then left open and unanswered', async () => {
      const provider = await net.provider({ blocks, mode: 'stall' })
      const consumer = await net.node()
      const recorder = await BitswapRecorder.attach(consumer)

      const stream = await sendWants(consumer, provider, [cid(0)])
      await waitFor(() => provider.stats.stalled === 1)
      await pause(200)

      assert.equal(stream.status, 'open')
      assert.equal(stream.remoteWriteStatus, 'writable')
      assert.equal(recorder.messages.length, 0)

      assert.equal(provider.fault.releaseStalled('abort'), 1)
      await waitFor(() => stream.status === 'reset')
    })

    it('delay: the real handler answers, later', async () => {
      const provider = await net.provider({ blocks, mode: 'delay', delayMs: 300 })
      const consumer = await net.helia()
      await connect(consumer, provider)

      const result = await fetchAll(consumer, blocks.slice(0, 5))

      assert.equal(result.received, 5)
      assert.ok(result.ms >= 300, `fetch took ${result.ms} ms`)
      assert.ok(provider.stats.delayed > 0)
      await waitFor(() => provider.stats.passed === provider.stats.delayed)
    })

    it('dont-have: every want gets DONT_HAVE, even for blocks it holds', async () => {
      const provider = await net.provider({ blocks, mode: 'dont-have' })
      const consumer = await net.node()
      const recorder = await BitswapRecorder.attach(consumer)

      await sendWants(consumer, provider, [cid(0), cid(1)])
      await recorder.next(() => recorder.presences(cid(1)).length > 0)

      assert.deepEqual(recorder.presences(cid(0)).map(p => p.type), [BlockPresenceType.DoNotHaveBlock])
      assert.deepEqual(recorder.presences(cid(1)).map(p => p.type), [BlockPresenceType.DoNotHaveBlock])
      assert.equal(recorder.blocks, 0)
    })

    it('dont-have: a Helia session evicts the provider at once', async () => {
      const provider = await net.provider({ blocks, mode: 'dont-have' })
      const consumer = await net.helia()
      await connect(consumer, provider)

      const result = await fetchAll(consumer, blocks.slice(0, 1), { api: 'session', timeout: 2000 })

      assert.equal(result.lost, 1)
      assert.ok(result.ms < 1500, `took ${result.ms} ms: the DONT_HAVE should end it early`)
      await waitFor(() => provider.stats.presences === 1)
    })

    it('have-then-never: HAVE to want-have, silence to want-block, never a block', async () => {
      const provider = await net.provider({ blocks, mode: 'have-then-never' })
      const consumer = await net.node()
      const recorder = await BitswapRecorder.attach(consumer)

      await sendMessages(consumer, provider, [
        wantlistMessage([cid(0)], { wantType: WantType.WantHave }),
        wantlistMessage([cid(1)], { wantType: WantType.WantBlock })
      ])
      await recorder.next(() => recorder.presences(cid(0)).length > 0)
      await pause(200)

      assert.deepEqual(recorder.presences(cid(0)).map(p => p.type), [BlockPresenceType.HaveBlock])
      assert.deepEqual(recorder.presences(cid(1)), [])
      assert.equal(recorder.blocks, 0)
      assert.equal(provider.stats.ignored, 1)
    })

    it('switches at runtime: a resetting provider heals', async () => {
      const provider = await net.provider({ blocks })
      const consumer = await net.helia()
      await connect(consumer, provider)

      provider.set('reset')
      const broken = await fetchAll(consumer, blocks.slice(0, 3), { timeout: 400 })
      provider.set('none')
      const healed = await fetchAll(consumer, blocks.slice(3, 13))

      assert.equal(broken.received, 0)
      assert.ok(provider.stats.reset > 0)
      assert.equal(healed.received, 10)
    })

    it('blackhole needs the proxy: memory providers refuse it', async () => {
      const provider = await net.provider({ blocks })

      assert.throws(() => { provider.set('blackhole') }, /needs a provider reached through its TCP proxy/)
      assert.equal(provider.mode, 'none')
    })

    it('blackhole: bytes stop, sockets stay open; healing drops the dead connection', async () => {
      const provider = await net.provider({ transport: 'tcp', blocks })
      const consumer = await net.helia({ transport: 'tcp' })
      const proxy = provider.proxy!
      await connect(consumer, provider)

      // the consumer only ever learned the proxy's address
      const known = await consumer.libp2p.peerStore.get(provider.peerId)
      assert.deepEqual(known.addresses.map(a => a.multiaddr.toString()), [proxy.multiaddr.toString()])
      assert.equal((await fetchAll(consumer, blocks.slice(0, 5))).received, 5)

      provider.set('blackhole')
      const before = proxy.stats.droppedBytes
      await assert.rejects(consumer.libp2p.dialProtocol(provider.peerId, BITSWAP_PROTOCOL, { signal: AbortSignal.timeout(300) }))

      assert.ok(proxy.stats.droppedBytes > before, 'the negotiation bytes were dropped')
      assert.equal(proxy.openConnections, 1)
      assert.equal(openConnection(consumer, provider.peerId.toString())?.status, 'open')
      assert.equal(provider.libp2p.getConnections(consumer.libp2p.peerId)[0]?.status, 'open')

      provider.set('none')
      await waitFor(() => openConnection(consumer, provider.peerId.toString()) == null)
      // a redial by peer id can only use what the consumer knows: the proxy
      const redialled = await consumer.libp2p.dial(provider.peerId)
      assert.equal(tcpPort(redialled.remoteAddr), String(proxy.port))
      assert.equal((await fetchAll(consumer, blocks.slice(5, 10))).received, 5)
    })
  })

  describe('standalone proxy', () => {
    it('with denyDirectDials the real port is never dialled, so only the proxy address gets in', async () => {
      const provider = await net.helia({ transport: 'tcp' })
      const realPort = Number(tcpPort(provider.libp2p.getMultiaddrs()[0]))
      const proxy = await net.proxy({ port: realPort })
      const gater = denyDirectDials({}, [realPort])
      const consumer = await net.helia({ transport: 'tcp', connectionGater: gater })
      const viaProxy = proxy.multiaddr.encapsulate(`/p2p/${provider.libp2p.peerId}`)

      await connect(consumer, viaProxy)
      // identify replaced what the consumer knew with the provider's self-reported (real) address
      const known = (await consumer.libp2p.peerStore.get(provider.libp2p.peerId)).addresses.map(a => tcpPort(a.multiaddr))
      assert.deepEqual(known, [String(realPort)])

      await consumer.libp2p.hangUp(provider.libp2p.peerId)
      await assert.rejects(consumer.libp2p.dial(provider.libp2p.peerId), { name: 'DialDeniedError' })
      const redialled = await consumer.libp2p.dial(viaProxy)

      assert.equal(tcpPort(redialled.remoteAddr), String(proxy.port))
      assert.equal(proxy.stats.connections, 2)
    })
  })

  describe('abusers', () => {
    it('garbage frames get the stream reset; unwanted blocks are swallowed', async () => {
      const target = await net.helia()
      const abuser = await net.node()

      const invalid = await sendGarbage(abuser, target, { kind: 'invalid-protobuf', streams: 3 })
      const oversized = await sendGarbage(abuser, target, { kind: 'oversized-frame' })
      const unwanted = await sendGarbage(abuser, target, { kind: 'unwanted-blocks' })

      assert.deepEqual([invalid.sent, invalid.reset], [3, 3])
      assert.deepEqual([oversized.sent, oversized.reset], [1, 1])
      assert.deepEqual([unwanted.sent, unwanted.closed], [1, 1])
    })

    it('a flood holds inbound streams open on the target until released', async () => {
      const target = await net.helia()
      const abuser = await net.node()

      const flood = await floodStreams(abuser, target, { streams: 50 })
      const inbound = (): number => target.libp2p.getConnections(abuser.peerId)
        .flatMap(c => c.streams)
        .filter(s => s.protocol === BITSWAP_PROTOCOL && s.direction === 'inbound').length

      assert.equal(flood.opened, 50)
      await waitFor(() => inbound() === 50)
      flood.release()
      await waitFor(() => inbound() === 0)
    })

    it('a churning flood opens and closes streams cleanly', async () => {
      const target = await net.helia()
      const abuser = await net.node()

      const flood = await floodStreams(abuser, target, { streams: 30, style: 'churn' })

      assert.deepEqual([flood.opened, flood.failed, flood.streams.length], [30, 0, 0])
    })
  })

  describe('stopping', () => {
    it('leaves no sockets or servers behind', async () => {
      const baseline = tcpHandles()
      const provider = await net.provider({ transport: 'tcp', blocks })
      const consumer = await net.helia({ transport: 'tcp' })
      await connect(consumer, provider)
      await fetchAll(consumer, blocks.slice(0, 5))
      assert.ok(tcpHandles() >= baseline + 3, 'three TCP listeners (provider, its proxy, consumer) and their connections')

      await net.stop()

      await waitFor(() => tcpHandles() <= baseline, { message: () => `${tcpHandles()} TCP handles left, ${baseline} before` })
    })
  })

  describe('wire', () => {
    it('raw frames can be sent by hand', async () => {
      const target = await net.node()
      const recorder = await BitswapRecorder.attach(target)
      const sender = await net.node()

      const stream = await sender.dialProtocol(target.getMultiaddrs(), BITSWAP_PROTOCOL)
      stream.send(encodeFrame(wantlistMessage([blocks[0].cid])))
      await stream.close()
      const { message, from } = await recorder.next()

      assert.equal(from.toString(), sender.peerId.toString())
      assert.equal(message.wantlist?.entries.length, 1)
    })
  })
})

function openConnection (node: HeliaNode, peer: string): Connection | undefined {
  return node.libp2p.getConnections().find(c => c.remotePeer.toString() === peer && c.status === 'open')
}

function tcpPort (ma: Multiaddr): string | undefined {
  return ma.getComponents().find(c => c.name === 'tcp')?.value
}

function tcpHandles (): number {
  return process.getActiveResourcesInfo().filter(r => r.startsWith('TCP')).length
}
