/**
 * Message-level observation on real in-process Helia nodes: the breaker judges providers by their
 * Bitswap answers (DONT_HAVE is an answer, silence is not, slowness is relative to the peer's own
 * history), and the inbound abuse guard refuses garbage and stream floods without touching other peers.
 */

import assert from 'node:assert/strict'
import { CircuitState } from '../../src/index.ts'
import {
  BITSWAP_PROTOCOL, BlockPresenceType, TestNet, circuitEvents, connect, countHandlerStreams, createConsumer, encodeFrame, fetchAll,
  floodStreams, lastErrorName, makeBlocks, nextEventFor, presenceMessage, readMessages, sendGarbage, waitFor, writeFrames
} from '../../fixtures/index.ts'
import type { BitswapCircuitBreakerInit, BitswapCircuitBreakerService } from '../../src/index.ts'
import type { AbuseReason, ObserverSink } from '../../src/libp2p/observer.ts'
import type { CircuitEventRecord, Consumer, FetchResult, TestBlock, TestNode } from '../../fixtures/index.ts'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/**
 * A Bitswap peer (no Helia) that answers every want-block with HAVE and never sends the block,
 * replying on a new stream as Bitswap does
 */
async function haveThenNever (node: TestNode): Promise<{ haves: number }> {
  const stats = { haves: 0 }
  await node.handle(BITSWAP_PROTOCOL, (stream, connection) => {
    readMessages(stream, (message) => {
      const cids = (message.wantlist?.entries ?? []).filter(e => e.cancel !== true).map(e => ({ bytes: e.cid }) as unknown as CID)
      if (cids.length === 0) {
        return
      }
      void (async () => {
        const reply = await connection.newStream(BITSWAP_PROTOCOL, { signal: AbortSignal.timeout(5000) })
        await writeFrames(reply, [encodeFrame(presenceMessage(cids, BlockPresenceType.HaveBlock))])
        stats.haves += cids.length
      })().catch(() => {})
    }).catch(() => {})
    stream.close().catch(() => {})
  })
  return stats
}

/**
 * The provider's circuit never left CLOSED. (Its failure count may not be zero: on a loaded machine
 * an honest in-memory peer whose deadline sits at the 50 ms floor can miss one now and then; the
 * trip rule asks for far more than that.)
 */
function assertUnaffected (service: BitswapCircuitBreakerService, peer: PeerId, events: CircuitEventRecord[]): void {
  assert.deepEqual(events, [])
  const status = service.getPeerStatus(peer)
  assert.equal(status.circuitState, CircuitState.CLOSED)
  assert.ok(status.counts.totalSuccesses > 10 * status.counts.totalFailures, JSON.stringify(status.counts))
}

/** What the observer reports to the service as abuse (the service's stream gate is its sink) */
function abuseReports (service: BitswapCircuitBreakerService): Array<{ peer: PeerId, reason: AbuseReason }> {
  const reports: Array<{ peer: PeerId, reason: AbuseReason }> = []
  const sink = (service as unknown as { gate: ObserverSink }).gate
  const abuse = sink.abuse.bind(sink)
  sink.abuse = (peer, reason, err) => {
    reports.push({ peer, reason })
    abuse(peer, reason, err)
  }
  return reports
}

/** Fetches (8 at a time) until `done` settles, then gives up on what is left; the blocks' fate is the result */
async function fetchUntil (node: Consumer, blocks: TestBlock[], done: Promise<unknown>): Promise<FetchResult> {
  const controller = new AbortController()
  const fetching = fetchAll(node, blocks, { concurrency: 8, signal: controller.signal })
  try {
    await done
  } finally {
    controller.abort()
  }
  return fetching
}

describe('bitswap-aware breaker on real Helia nodes', function () {
  this.timeout(60_000)
  const net = new TestNet()

  afterEach(async () => {
    await net.stop()
  })

  describe('verdicts from answers', () => {
    it('never trips a provider that answers DONT_HAVE to everything, even for wants that outlive their deadline', async () => {
      const blocks = await makeBlocks(40)
      const nowhere = await makeBlocks(12, 4096, { seed: 9 })
      const good = await net.provider({ blocks })
      const dontHave = await net.provider({ mode: 'dont-have' })
      // a short cold deadline (its wants never get a block, so they keep it): an unrecognised
      // DONT_HAVE would become a miss well before the lost fetches give up
      const node = await createConsumer(net, { observe: { coldDeadline: 500 } })
      const service = node.libp2p.services.breaker
      const events = circuitEvents(service, dontHave.peerId)
      await connect(node, good.helia)
      await connect(node, dontHave.helia)

      const found = await fetchAll(node, blocks, { concurrency: 8 })
      // blocks nobody has: every want to the DONT_HAVE provider stays open until it answers
      const lost = await fetchAll(node, nowhere, { concurrency: 12, blockTimeout: 1000 })
      await waitFor(() => dontHave.stats.presences >= blocks.length + nowhere.length, { timeout: 5000 })

      assert.equal(found.received, blocks.length)
      assert.equal(lost.lost, nowhere.length)
      assert.deepEqual(events, [])
      const status = service.getPeerStatus(dontHave.peerId)
      assert.equal(status.circuitState, CircuitState.CLOSED)
      assert.equal(status.counts.totalFailures, 0)
      assert.equal(service.getPeerStatus(good.peerId).circuitState, CircuitState.CLOSED)
    })

    it('trips a provider that answers HAVE to want-blocks and never sends the blocks', async () => {
      const blocks = await makeBlocks(16, 4096, { seed: 3 })
      const liar = await net.node()
      const stats = await haveThenNever(liar)
      const node = await createConsumer(net, { observe: { coldDeadline: 300 } })
      const service = node.libp2p.services.breaker
      await connect(node, liar)
      const open = nextEventFor(service, 'circuit:open', liar.peerId)

      const result = await fetchUntil(node, blocks, open)
      const evt = await open

      assert.equal(result.received, 0)
      assert.ok(stats.haves > 0, 'the peer did answer HAVE')
      assert.equal(evt.detail.to, CircuitState.OPEN)
      assert.equal(lastErrorName(service, liar.peerId), 'WantDeadlineError')
    })

    it('trips a provider whose streams close cleanly but which never answers a want', async () => {
      const blocks = await makeBlocks(16, 4096, { seed: 4 })
      const silent = await net.provider({ blocks, mode: 'have-then-never' })
      const node = await createConsumer(net, { observe: { coldDeadline: 300 } })
      const service = node.libp2p.services.breaker
      await connect(node, silent.helia)
      const open = nextEventFor(service, 'circuit:open', silent.peerId)

      await fetchUntil(node, blocks, open)

      assert.ok(silent.stats.ignored > 0)
      assert.equal(silent.stats.reset + silent.stats.stalled, 0, 'every stream was accepted and closed cleanly')
      assert.equal(lastErrorName(service, silent.peerId), 'WantDeadlineError')
    })
  })

  describe('slowness relative to the peer\'s own history', () => {
    // default settings for both tests, only the peer's history differs: for the slowed peer a run of
    // missed (history-relative) want deadlines makes it UNHEALTHY, which trips its circuit
    const trip: BitswapCircuitBreakerInit = {}

    it('never trips a provider with 300 ms added latency: its deadline adapts', async () => {
      const blocks = await makeBlocks(32, 4096, { seed: 5 })
      const slow = await net.provider({ blocks, mode: 'delay', delayMs: 300 })
      const node = await createConsumer(net, trip)
      const service = node.libp2p.services.breaker
      const events = circuitEvents(service, slow.peerId)
      await connect(node, slow.helia)

      const result = await fetchAll(node, blocks, { concurrency: 8 })

      assert.equal(result.received, blocks.length)
      assert.ok(Math.min(...result.latencies) >= 300)
      assert.deepEqual(events, [])
      const status = service.getPeerStatus(slow.peerId)
      assert.equal(status.counts.totalFailures, 0)
      // adapted: about twice its latency, far from the 5 s cold start
      assert.ok(status.wantDeadline !== undefined && status.wantDeadline >= 600 && status.wantDeadline < 5000, `want deadline ${status.wantDeadline}`)
    })

    it('trips a provider that becomes 10x slower than its own history', async () => {
      const before = await makeBlocks(24, 4096, { seed: 6 })
      const after = await makeBlocks(24, 4096, { seed: 7 })
      // 150 ms → 1.5 s: 10x, and past the 1 s floor of the want deadline (2 × EWMA, at least 1 s)
      const provider = await net.provider({ blocks: [...before, ...after], mode: 'delay', delayMs: 150 })
      const node = await createConsumer(net, trip)
      const service = node.libp2p.services.breaker
      await connect(node, provider.helia)

      const warm = await fetchAll(node, before, { concurrency: 8 })
      assert.equal(warm.received, before.length)
      assert.equal(service.getPeerStatus(provider.peerId).counts.totalFailures, 0)
      const learned = service.getPeerStatus(provider.peerId).wantDeadline ?? Infinity
      assert.ok(learned < 1500, `deadline learned from a 150 ms history: ${learned}`)

      provider.set('delay', 1500)
      const open = nextEventFor(service, 'circuit:open', provider.peerId)
      await fetchUntil(node, after, open)

      assert.equal(lastErrorName(service, provider.peerId), 'WantDeadlineError')
    })
  })

  describe('inbound abuse guard', () => {
    for (const kind of ['invalid-protobuf', 'oversized-frame'] as const) {
      it(`refuses a peer sending garbage (${kind}) while a provider keeps serving`, async () => {
        const blocks = await makeBlocks(60, 4096, { seed: 8 })
        const good = await net.provider({ blocks })
        const abuser = await net.node()
        const node = await createConsumer(net)
        const service = node.libp2p.services.breaker
        const handled = countHandlerStreams(node)
        const goodEvents = circuitEvents(service, good.peerId)
        await connect(node, good.helia)
        await connect(abuser, node)
        const open = nextEventFor(service, 'circuit:open', abuser.peerId)

        const [garbage, result] = await Promise.all([
          sendGarbage(abuser, node, { kind, streams: 6 }),
          fetchAll(node, blocks, { concurrency: 8 })
        ])
        await open

        // the consumer aborted what it got: the abuser saw resets (or could not even open streams)
        assert.ok(garbage.reset + garbage.failed >= 1, JSON.stringify({ ...garbage, errors: garbage.errors.map(e => e.name) }))
        assert.equal(garbage.closed, 0)
        assert.equal(service.getPeerStatus(abuser.peerId).circuitState, CircuitState.OPEN)
        assert.match(lastErrorName(service, abuser.peerId) ?? '', /InvalidMessageError|FrameTooLargeError/)
        // cut off: hung up, and nothing more from it reaches Helia's handler
        await waitFor(() => node.libp2p.getConnections(abuser.peerId).length === 0, { timeout: 2000 })
        const after = handled.total(abuser.peerId)
        await sendGarbage(abuser, node, { kind, streams: 2, timeout: 500 }).catch(() => {})
        assert.equal(handled.total(abuser.peerId), after, 'nothing more from the abuser reaches the handler')
        // the provider was unaffected
        assert.equal(result.received, blocks.length)
        assertUnaffected(service, good.peerId, goodEvents)
      })
    }

    for (const [what, observe, size, reason] of [
      ['blocks nobody asked for', {}, 1024, 'unrequested'],
      ['more bytes per second than its budget', { maxInboundBytesPerSecond: 512 * 1024 }, 256 * 1024, 'inbound_bytes']
    ] as const) {
      it(`counts ${what} against the sender while a provider keeps serving`, async () => {
        const blocks = await makeBlocks(60, 4096, { seed: 11 })
        const good = await net.provider({ blocks })
        const abuser = await net.node()
        const node = await createConsumer(net, { observe })
        const service = node.libp2p.services.breaker
        const goodEvents = circuitEvents(service, good.peerId)
        const abuses = abuseReports(service)
        await connect(node, good.helia)
        await connect(abuser, node)
        const open = nextEventFor(service, 'circuit:open', abuser.peerId)

        const [, result] = await Promise.all([
          sendGarbage(abuser, node, { kind: 'unwanted-blocks', streams: 6, size }),
          fetchAll(node, blocks, { concurrency: 8 })
        ])
        await open

        assert.equal(service.getPeerStatus(abuser.peerId).circuitState, CircuitState.OPEN)
        assert.ok(abuses.some(a => a.peer.equals(abuser.peerId) && a.reason === reason), JSON.stringify(abuses.map(a => a.reason)))
        assert.ok(!abuses.some(a => a.peer.equals(good.peerId)))
        assert.equal(result.received, blocks.length)
        assertUnaffected(service, good.peerId, goodEvents)
      })
    }

    it('refuses a flood of inbound streams beyond the per-peer cap while a provider keeps serving', async () => {
      const blocks = await makeBlocks(60, 4096, { seed: 10 })
      const good = await net.provider({ blocks })
      const flooder = await net.node()
      const node = await createConsumer(net, { observe: { maxInboundStreamsPerPeer: 8 } })
      const service = node.libp2p.services.breaker
      const handled = countHandlerStreams(node)
      const goodEvents = circuitEvents(service, good.peerId)
      await connect(node, good.helia)
      await connect(flooder, node)
      const open = nextEventFor(service, 'circuit:open', flooder.peerId)

      const [flood, result] = await Promise.all([
        floodStreams(flooder, node, { streams: 64, style: 'hold', concurrency: 16 }),
        fetchAll(node, blocks, { concurrency: 8 })
      ])
      await open
      flood.release()

      assert.ok(service.getOverallStatus().streams.refusedInbound > 0)
      assert.ok(handled.maxOpen(flooder.peerId) <= 8, `the handler held ${handled.maxOpen(flooder.peerId)} of the flooder's streams at once`)
      assert.equal(service.getPeerStatus(flooder.peerId).circuitState, CircuitState.OPEN)
      assert.equal(lastErrorName(service, flooder.peerId), 'InboundLimitError')
      assert.equal(result.received, blocks.length)
      assertUnaffected(service, good.peerId, goodEvents)
    })
  })
})
