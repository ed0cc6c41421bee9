/**
 * The libp2p service on real in-process Helia nodes: healthy transfers, the three faults it must
 * isolate (reset, stall, blackhole), recovery, inbound gating, gater composition and a clean stop.
 */

import assert from 'node:assert/strict'
import { CircuitState } from '../../src/index.ts'
import {
  BITSWAP_PROTOCOL, FAST_RECOVERY, TestNet, circuitEvents, componentsOf, connect, countHandlerStreams, createConsumer, fetchAll,
  lastErrorName, makeBlocks, nextEventFor, sendMessages, wantlistMessage, waitFor
} from '../../fixtures/index.ts'
import type { FaultyProvider } from '../../fixtures/index.ts'
import type { PeerId } from '@libp2p/interface'

describe('bitswap circuit breaker service', function () {
  this.timeout(60_000)
  const net = new TestNet()

  afterEach(async () => {
    await net.stop()
  })

  for (const transport of ['memory', 'tcp'] as const) {
    it(`fetches every block intact from a healthy provider and sees every Bitswap stream (${transport})`, async () => {
      const blocks = await makeBlocks(120)
      const provider = await net.provider({ transport, blocks, proxy: false })
      const node = await createConsumer(net, {}, { transport })
      const service = node.libp2p.services.breaker
      const handled = countHandlerStreams(node)
      await connect(node, provider.helia)

      const result = await fetchAll(node, blocks, { concurrency: 16 })

      assert.equal(result.received, blocks.length, `lost ${result.lost}: ${JSON.stringify(service.getPeerStatus(provider.peerId), (_k, v) => typeof v === 'object' && v?.type === 'PeerId' ? String(v) : v)}`)
      assert.equal(result.lost, 0)
      assert.equal(result.corrupt, 0)
      const status = service.getOverallStatus()
      assert.equal(status.upstreamMiddlewareWorkaround, 'applied')
      // every stream the provider received came from an outbound open the service saw
      assert.ok(status.streams.outbound > 0)
      assert.equal(status.streams.outbound, provider.stats.streams)
      // every inbound stream reached the handler through the service, none refused
      assert.ok(status.streams.inbound > 0)
      assert.equal(status.streams.inbound, handled.inbound)
      assert.equal(status.streams.refusedInbound + status.streams.refusedOutbound, 0)
      assert.equal(service.getPeerStatus(provider.peerId).circuitState, CircuitState.CLOSED)
      assert.ok(service.getPeerStatus(provider.peerId).counts.totalSuccesses > 0)
    })
  }

  it('isolates a provider that resets every Bitswap stream, and no block is lost', async () => {
    const blocks = await makeBlocks(200)
    const good = await net.provider({ blocks })
    const bad = await net.provider({ mode: 'reset' })
    const node = await createConsumer(net)
    const service = node.libp2p.services.breaker
    const badEvents = circuitEvents(service, bad.peerId)
    const goodEvents = circuitEvents(service, good.peerId)
    let failuresAtOpen = -1
    let streamsAtOpen = -1
    service.addEventListener('circuit:open', (evt) => {
      if (evt.detail.peer.equals(bad.peerId)) {
        failuresAtOpen = service.getPeerStatus(bad.peerId).health?.errorCount ?? -1
        streamsAtOpen = bad.stats.streams
      }
    })
    await connect(node, good.helia)
    await connect(node, bad.helia)

    const result = await fetchAll(node, blocks, { concurrency: 16 })

    assert.equal(result.received, blocks.length)
    assert.equal(result.lost + result.corrupt, 0)
    assert.ok(badEvents.length > 0, 'the faulty provider\'s circuit opened')
    assert.equal(goodEvents.length, 0, 'the healthy provider\'s circuit never changed')
    // the default rule trips at >= 3 requests with a failure ratio >= 0.6: three resets
    assert.ok(failuresAtOpen >= 1 && failuresAtOpen <= 3, `failures when the circuit opened: ${failuresAtOpen}`)
    assert.equal(service.getPeerStatus(bad.peerId).circuitState, CircuitState.OPEN)
    // hung up, and no Bitswap stream since (only those already in negotiation could still land)
    await waitFor(() => node.libp2p.getConnections(bad.peerId).length === 0, { timeout: 2000 })
    assert.ok(bad.stats.streams - streamsAtOpen <= 2, `streams after open: ${bad.stats.streams - streamsAtOpen}`)
    // a new dial is refused by the gater while the circuit is open
    await assert.rejects(node.libp2p.dialProtocol(bad.peerId, BITSWAP_PROTOCOL), (err: Error) => ['DialDeniedError', 'CircuitOpenError'].includes(err.name))
  })

  it('isolates a provider that accepts streams and never answers (stall)', async () => {
    const blocks = await makeBlocks(100)
    const good = await net.provider({ blocks })
    const bad = await net.provider({ mode: 'stall' })
    const node = await createConsumer(net, { responseDeadline: 400 })
    const service = node.libp2p.services.breaker
    await connect(node, good.helia)
    await connect(node, bad.helia)
    const opened = nextEventFor(service, 'circuit:open', bad.peerId, 20_000)

    const result = await fetchAll(node, blocks, { concurrency: 16 })
    const evt = await opened

    assert.equal(result.received, blocks.length)
    assert.equal(result.lost + result.corrupt, 0)
    assert.equal(evt.detail.to, CircuitState.OPEN)
    assert.equal(lastErrorName(service, bad.peerId), 'ResponseDeadlineError')
  })

  it('isolates a provider behind a connection that blackholes every byte', async () => {
    const blocks = await makeBlocks(100)
    const good = await net.provider({ transport: 'tcp', blocks, proxy: false })
    const bad: FaultyProvider = await net.provider({ transport: 'tcp' })
    const node = await createConsumer(net, {}, { transport: 'tcp' })
    const service = node.libp2p.services.breaker
    await connect(node, good.helia)
    await connect(node, bad.helia)
    bad.set('blackhole')
    const opened = nextEventFor(service, 'circuit:open', bad.peerId, 20_000)

    const result = await fetchAll(node, blocks, { concurrency: 16 })
    await opened

    assert.equal(result.received, blocks.length)
    assert.equal(result.lost + result.corrupt, 0)
    assert.equal(lastErrorName(service, bad.peerId), 'OpenStreamDeadlineError')
    // well under the 10-15 s a blackholed send costs without the service
    assert.ok(result.ms < 8_000, `fetch took ${Math.round(result.ms)} ms`)
  })

  it('recovers a healed provider: half-open redial, closed, ramp-up, then it serves blocks again', async () => {
    const shared = await makeBlocks(60)
    const onlyOnBad = await makeBlocks(20, 4096, { seed: 7 })
    const good = await net.provider({ blocks: shared })
    const bad = await net.provider({ blocks: onlyOnBad, mode: 'reset' })
    const node = await createConsumer(net, FAST_RECOVERY)
    const service = node.libp2p.services.breaker
    const events = circuitEvents(service, bad.peerId)
    await connect(node, good.helia)
    await connect(node, bad.helia)

    const first = await fetchAll(node, shared, { concurrency: 8 })
    assert.equal(first.received, shared.length)
    await waitFor(() => service.getPeerStatus(bad.peerId).circuitState === CircuitState.OPEN, { timeout: 10_000 })

    bad.set('none')
    const closed = nextEventFor(service, 'circuit:close', bad.peerId, 20_000)
    // the service redials by itself once the open duration has passed; the reconnect re-sends the wantlist
    const second = fetchAll(node, onlyOnBad, { concurrency: 4, timeout: 30_000 })
    await closed
    const result = await second

    assert.equal(result.received, onlyOnBad.length, `lost ${result.lost}: ${result.errors.map(e => e.name).join(', ')}`)
    const sequence = events.map(e => e.detail.to)
    assert.deepEqual(sequence.slice(0, 3), [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED])
    const stats = service.getOverallStatus().recoveryStats
    assert.ok(stats.completedRecoveries + stats.recoveringPeers >= 1, 'a recovery ramp ran after the circuit closed')
  })

  it('never hands inbound streams from a peer with an open circuit to the Bitswap handler', async () => {
    const blocks = await makeBlocks(4)
    const node = await createConsumer(net, { disconnectOnOpen: false })
    const service = node.libp2p.services.breaker
    const other = await net.node()
    const handled = countHandlerStreams(node)
    await connect(other, node)

    service.protection.trip(other.peerId)
    await sendMessages(other, node, [wantlistMessage(blocks.map(b => b.cid))]).catch(() => {})
    await sendMessages(other, node, [wantlistMessage(blocks.map(b => b.cid))]).catch(() => {})
    await waitFor(() => service.getOverallStatus().streams.refusedInbound >= 2, { timeout: 5000 })

    assert.equal(handled.inbound, 0)
    assert.equal(service.getPeerStatus(other.peerId).circuitState, CircuitState.OPEN)
  })

  it('keeps the user\'s own gater decisions', async () => {
    const denied = await net.node()
    const allowed = await net.node()
    const gater = { denyDialPeer: (peer: PeerId) => peer.equals(denied.peerId) }
    const node = await createConsumer(net, {}, { connectionGater: gater })

    await assert.rejects(node.libp2p.dial(denied.getMultiaddrs()), (err: Error) => err.name === 'DialDeniedError')
    await node.libp2p.dial(allowed.getMultiaddrs())
    assert.equal(node.libp2p.getConnections(allowed.peerId).length, 1)
  })

  it('stop() restores middleware and gater and leaves nothing running', async () => {
    const gater = {}
    const node = await createConsumer(net, {}, { connectionGater: gater })
    const { registrar } = componentsOf(node.libp2p)
    assert.equal(registrar.getMiddleware(BITSWAP_PROTOCOL).length, 1)
    assert.equal(typeof (gater as Record<string, unknown>).denyDialPeer, 'function')

    await node.stop()

    assert.equal(registrar.getMiddleware(BITSWAP_PROTOCOL).length, 0)
    assert.deepEqual(Object.keys(gater), [])
    assert.equal(node.libp2p.services.breaker.getOverallStatus().upstreamMiddlewareWorkaround, 'applied')
  })
})
