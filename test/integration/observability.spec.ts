/**
 * Observability and control on real in-process Helia nodes: Prometheus metrics scraped from a real
 * prom-client registry, the service's events, isolate / release / allowlist, snapshot across a
 * restart with the same peer id, and the component logger.
 */

import assert from 'node:assert/strict'
import { format } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { isPeerId } from '@libp2p/interface'
import { defaultLogger, disable, enable } from '@libp2p/logger'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { Registry } from 'prom-client'
import { CircuitState, HealthStatus } from '../../src/index.ts'
import { METRIC_PREFIX } from '../../src/libp2p/metrics.ts'
import { BITSWAP_PROTOCOL, FAST_RECOVERY, TestNet, circuitEvents, connect, createConsumer, fetchAll, makeBlocks, nextEventFor, waitFor } from '../../fixtures/index.ts'
import type { BitswapCircuitBreakerInit, ProtectionSnapshot } from '../../src/index.ts'
import type { Consumer, FaultyProvider, TestBlock } from '../../fixtures/index.ts'
import type { ComponentLogger, PrivateKey } from '@libp2p/interface'

/** One Prometheus sample: `name{label="value",…} value` */
interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parses the text exposition format (what a Prometheus server scrapes) */
function parseScrape (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      continue
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(match != null, `unparseable scrape line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) })
  }
  return samples
}

class Scrape {
  readonly text: string
  readonly samples: Sample[]

  constructor (text: string) {
    this.text = text
    this.samples = parseScrape(text)
  }

  /** Our samples only */
  ours (): Sample[] {
    return this.samples.filter(s => s.name.startsWith(METRIC_PREFIX))
  }

  /** The value of `prefix + name` with exactly these labels (0 when the series does not exist yet) */
  value (name: string, labels: Record<string, string> = {}): number {
    const wanted = Object.entries(labels)
    const found = this.samples.find(s => s.name === `${METRIC_PREFIX}${name}` &&
      Object.keys(s.labels).length === wanted.length &&
      wanted.every(([k, v]) => s.labels[k] === v))
    return found?.value ?? 0
  }

  /** Label values seen for one label of one metric */
  labelValues (name: string, label: string): string[] {
    return this.samples.filter(s => s.name === `${METRIC_PREFIX}${name}`).map(s => s.labels[label]).filter(v => v != null)
  }
}

describe('observability and control on real nodes', function () {
  this.timeout(60_000)
  const net = new TestNet()

  afterEach(async () => {
    await net.stop()
  })

  /** A consumer whose metrics go to a fresh prom-client registry (the global one is shared module state) */
  async function measuredConsumer (init: BitswapCircuitBreakerInit = {}): Promise<{ node: Consumer, scrape: () => Promise<Scrape> }> {
    const registry = new Registry()
    const node = await createConsumer(net, init, { libp2p: { metrics: prometheusMetrics({ registry, collectDefaultMetrics: false }) } })
    return { node, scrape: async () => new Scrape(await registry.metrics()) }
  }

  describe('metrics', () => {
    /** A healthy and a resetting provider; fetch until the resetting one's circuit opens */
    async function tripped (seed: number): Promise<{ node: Consumer, scrape: () => Promise<Scrape>, good: FaultyProvider, bad: FaultyProvider, onlyOnBad: TestBlock[], before: Scrape }> {
      const shared = await makeBlocks(60, 4096, { seed })
      const onlyOnBad = await makeBlocks(20, 4096, { seed: seed + 1 })
      const good = await net.provider({ blocks: shared })
      const bad = await net.provider({ blocks: onlyOnBad, mode: 'reset' })
      const { node, scrape } = await measuredConsumer(FAST_RECOVERY)
      const before = await scrape()
      await connect(node, good.helia)
      await connect(node, bad.helia)
      const opened = nextEventFor(node.libp2p.services.breaker, 'circuit:open', bad.peerId)
      const result = await fetchAll(node, shared, { concurrency: 16 })
      assert.equal(result.received, shared.length)
      await opened
      return { node, scrape, good, bad, onlyOnBad, before }
    }

    it('peers per state, trips and rejections move in a real Prometheus scrape, with no per-peer label', async () => {
      const { node, scrape, good, bad, before } = await tripped(100)

      assert.equal(before.value('peers', { state: 'open' }), 0)
      assert.equal(before.value('peers', { state: 'half_open' }), 0)
      assert.equal(before.value('trips_total'), 0)
      assert.equal(before.value('local_network_suspected'), 0)

      const open = await scrape()
      assert.equal(open.value('peers', { state: 'open' }), 1)
      assert.ok(open.value('peers', { state: 'closed' }) >= 1, 'the healthy provider is counted closed')
      assert.ok(open.value('trips_total') >= 1)
      assert.ok(open.value('peer_health', { status: 'unhealthy' }) + open.value('peer_health', { status: 'degraded' }) >= 1,
        `the faulty provider's health shows: ${JSON.stringify(open.samples.filter(s => s.name.endsWith('peer_health')))}`)

      // an outbound Bitswap stream to the open peer is refused before any dial, and counted
      const refusedBefore = open.value('rejections_total', { rejection: 'outbound_open' })
      await assert.rejects(node.libp2p.dialProtocol(bad.peerId, BITSWAP_PROTOCOL), (err: Error) => err.name === 'CircuitOpenError')
      const after = await scrape()
      assert.equal(after.value('rejections_total', { rejection: 'outbound_open' }), refusedBefore + 1)
      for (const value of after.labelValues('rejections_total', 'rejection')) {
        assert.match(value, /^(inbound|outbound|dial)_(open|half_open|recovery|protocol_error|unrequested|stream_limit|byte_limit|wantlist_limit|memory_limit)$/)
      }

      // low cardinality: no peer id anywhere in our series, and only the documented labels
      const ids = [node.libp2p.peerId, good.peerId, bad.peerId].map(String)
      const ours = after.ours()
      assert.ok(ours.length > 0)
      for (const sample of ours) {
        const line = `${sample.name} ${JSON.stringify(sample.labels)}`
        assert.ok(!ids.some(id => line.includes(id)), `a peer id in ${line}`)
        for (const label of Object.keys(sample.labels)) {
          assert.ok(['state', 'status', 'rejection', 'event', 'reason', 'le'].includes(label), `unexpected label ${label} in ${line}`)
        }
      }
      assert.ok(!after.text.split('\n').filter(l => l.includes(METRIC_PREFIX)).some(l => ids.some(id => l.includes(id))))
    })

    it('recoveries started and completed move when a healed peer recovers, and it is counted closed again', async () => {
      const { node, scrape, bad, onlyOnBad } = await tripped(200)
      const service = node.libp2p.services.breaker
      assert.equal((await scrape()).value('recoveries_total', { event: 'started' }), 0)

      // heal: half-open redial, closed, then the ramp runs to completion
      bad.set('none')
      const started = nextEventFor(service, 'recovery:start', bad.peerId)
      const completed = nextEventFor(service, 'recovery:complete', bad.peerId, 15_000)
      const second = await fetchAll(node, onlyOnBad, { concurrency: 4, timeout: 15_000 })
      assert.equal(second.received, onlyOnBad.length)
      await started
      assert.ok((await scrape()).value('recoveries_total', { event: 'started' }) >= 1)
      await completed

      const after = await scrape()
      assert.equal(after.value('peers', { state: 'open' }), 0)
      assert.equal(after.value('peers', { state: 'half_open' }), 0)
      assert.equal(after.value('peers', { state: 'closed' }), 2)
      assert.ok(after.value('recoveries_total', { event: 'completed' }) >= 1)
      assert.equal(after.value('recoveries_total', { event: 'failed' }), 0)
    })

    it('counts dials denied by the gater as dial_open rejections', async () => {
      const bad = await net.provider({ mode: 'reset' })
      const { node, scrape } = await measuredConsumer()
      const service = node.libp2p.services.breaker
      await connect(node, bad.helia)
      service.protection.trip(bad.peerId)
      await waitFor(() => node.libp2p.getConnections(bad.peerId).length === 0, { timeout: 2000 })

      await assert.rejects(node.libp2p.dial(bad.helia.libp2p.getMultiaddrs()), (err: Error) => err.name === 'DialDeniedError')

      assert.ok((await scrape()).value('rejections_total', { rejection: 'dial_open' }) >= 1, 'a gater denial shows in the rejections')
    })

    it('observes want→response latency from a healthy provider', async () => {
      const blocks = await makeBlocks(30)
      const good = await net.provider({ blocks })
      const { node, scrape } = await measuredConsumer()
      await connect(node, good.helia)

      const result = await fetchAll(node, blocks, { concurrency: 8 })
      assert.equal(result.received, blocks.length)

      const after = await scrape()
      assert.ok(after.value('want_response_seconds_count') > 0, 'the want latency histogram has samples')
      assert.ok(after.value('want_response_seconds_sum') > 0)
      assert.equal(after.value('want_misses_total'), 0)
    })
  })

  describe('events', () => {
    it('circuit, health and recovery events carry the peer, the states and why, in order', async () => {
      const shared = await makeBlocks(60)
      const onlyOnBad = await makeBlocks(20, 4096, { seed: 12 })
      const good = await net.provider({ blocks: shared })
      const bad = await net.provider({ blocks: onlyOnBad, mode: 'reset' })
      const node = await createConsumer(net, FAST_RECOVERY)
      const service = node.libp2p.services.breaker
      const circuits = circuitEvents(service, bad.peerId)
      const health: Array<{ from: string, to: string }> = []
      const recovery: string[] = []
      service.addEventListener('health:change', (evt) => {
        assert.ok(isPeerId(evt.detail.peer))
        if (evt.detail.peer.equals(bad.peerId)) {
          health.push({ from: evt.detail.from, to: evt.detail.to })
        }
      })
      service.addEventListener('recovery:start', (evt) => { if (evt.detail.peer.equals(bad.peerId)) recovery.push('start') })
      service.addEventListener('recovery:complete', (evt) => { if (evt.detail.peer.equals(bad.peerId)) recovery.push('complete') })
      service.addEventListener('recovery:fail', (evt) => { if (evt.detail.peer.equals(bad.peerId)) recovery.push(`fail: ${evt.detail.reason}`) })
      await connect(node, good.helia)
      await connect(node, bad.helia)

      const opened = nextEventFor(service, 'circuit:open', bad.peerId)
      await fetchAll(node, shared, { concurrency: 16 })
      await opened
      bad.set('none')
      const completed = nextEventFor(service, 'recovery:complete', bad.peerId, 15_000)
      const result = await fetchAll(node, onlyOnBad, { concurrency: 4, timeout: 15_000 })
      assert.equal(result.received, onlyOnBad.length)
      await completed

      assert.deepEqual(circuits.slice(0, 3).map(e => [e.type, e.detail.from, e.detail.to]), [
        ['circuit:open', CircuitState.CLOSED, CircuitState.OPEN],
        ['circuit:half-open', CircuitState.OPEN, CircuitState.HALF_OPEN],
        ['circuit:close', CircuitState.HALF_OPEN, CircuitState.CLOSED]
      ])
      for (const { detail } of circuits) {
        assert.ok(isPeerId(detail.peer), 'the peer is a PeerId')
        assert.ok(typeof detail.reason === 'string' && detail.reason.length > 0, `a reason for ${detail.from} -> ${detail.to}`)
      }
      assert.notEqual(circuits[0].detail.reason, circuits[1].detail.reason, 'opening and half-opening say different things')
      // the resets made the peer unhealthy (through degraded or directly) before it was isolated
      assert.ok(health.length > 0, 'health changed')
      assert.ok(health.some(h => h.to === HealthStatus.UNHEALTHY || h.to === HealthStatus.DEGRADED), JSON.stringify(health))
      for (let i = 1; i < health.length; i++) {
        assert.equal(health[i].from, health[i - 1].to, 'health changes chain')
      }
      assert.deepEqual(recovery, ['start', 'complete'])
    })
  })

  describe('control', () => {
    it('isolate() hangs up and gates a healthy peer; release() lets it back through a half-open redial', async () => {
      const blocks = await makeBlocks(10)
      const later = await makeBlocks(10, 4096, { seed: 13 })
      const good = await net.provider({ blocks: [...blocks, ...later] })
      const node = await createConsumer(net, FAST_RECOVERY)
      const service = node.libp2p.services.breaker
      const circuits = circuitEvents(service, good.peerId)
      await connect(node, good.helia)
      assert.equal((await fetchAll(node, blocks)).received, blocks.length)

      service.isolate(good.peerId)

      assert.equal(service.getPeerStatus(good.peerId).circuitState, CircuitState.OPEN)
      assert.deepEqual(circuits.map(e => [e.type, e.detail.from, e.detail.to]), [['circuit:open', CircuitState.CLOSED, CircuitState.OPEN]])
      await waitFor(() => node.libp2p.getConnections(good.peerId).length === 0, { timeout: 2000, message: 'hung up' })
      await assert.rejects(node.libp2p.dial(good.helia.libp2p.getMultiaddrs()), (err: Error) => err.name === 'DialDeniedError')
      await assert.rejects(node.libp2p.dialProtocol(good.peerId, BITSWAP_PROTOCOL), (err: Error) => ['DialDeniedError', 'CircuitOpenError'].includes(err.name))
      assert.equal(service.snapshot().peers.find(p => p.peer === good.peerId.toString())?.isolated, true)

      const closed = nextEventFor(service, 'circuit:close', good.peerId)
      service.release(good.peerId)

      assert.equal(circuits[1]?.type, 'circuit:half-open')
      // nothing else would reconnect it: the service redials it as the half-open probe
      await waitFor(() => node.libp2p.getConnections(good.peerId).length > 0, { timeout: 5000, message: 'redialled' })
      const result = await fetchAll(node, later, { concurrency: 4 })
      assert.equal(result.received, later.length)
      await closed
      assert.equal(service.getPeerStatus(good.peerId).circuitState, CircuitState.CLOSED)
    })

    it('never gates an allowlisted peer, even one that resets every stream', async () => {
      const blocks = await makeBlocks(60)
      const more = await makeBlocks(30, 4096, { seed: 15 })
      const good = await net.provider({ blocks: [...blocks, ...more] })
      // the same fault twice: one is gated, the trusted one never is
      const bad = await net.provider({ mode: 'reset' })
      const trusted = await net.provider({ mode: 'reset' })
      const node = await createConsumer(net, { allowlist: [trusted.peerId.toString()] })
      const service = node.libp2p.services.breaker
      const circuits = circuitEvents(service, trusted.peerId)
      let resetsAtOpen = -1
      service.addEventListener('circuit:open', (evt) => {
        if (evt.detail.peer.equals(bad.peerId)) {
          resetsAtOpen = bad.stats.reset
        }
      })
      await connect(node, good.helia)
      await connect(node, bad.helia)
      await connect(node, trusted.helia)

      const result = await fetchAll(node, blocks, { concurrency: 16 })

      assert.equal(result.received, blocks.length)
      await waitFor(() => resetsAtOpen >= 0, { timeout: 5000, message: 'the non-allowlisted twin was gated' })
      assert.ok(trusted.stats.reset >= resetsAtOpen, `trusted resets ${trusted.stats.reset}, the twin tripped at ${resetsAtOpen}`)
      assert.deepEqual(circuits, [])
      assert.equal(service.getPeerStatus(trusted.peerId).circuitState, CircuitState.CLOSED)
      assert.equal(node.libp2p.getConnections(trusted.peerId).length, 1, 'still connected')

      // it keeps receiving Bitswap streams while its twin gets none
      const trustedStreams = trusted.stats.streams
      const badStreams = bad.stats.streams
      const second = await fetchAll(node, more, { concurrency: 8 })
      assert.equal(second.received, more.length)
      assert.ok(trusted.stats.streams > trustedStreams, 'the trusted peer still gets wants')
      assert.equal(bad.stats.streams, badStreams, 'the gated twin gets none')
    })

    it('a node restarted with the same peer id and its snapshot keeps the bad peer gated, and not the good one', async () => {
      const blocks = await makeBlocks(60)
      const fresh = await makeBlocks(10, 4096, { seed: 14 })
      const good = await net.provider({ blocks: [...blocks, ...fresh] })
      const bad = await net.provider({ mode: 'reset' })
      const privateKey: PrivateKey = await generateKeyPair('Ed25519')
      const first = await createConsumer(net, {}, { libp2p: { privateKey } })
      const firstService = first.libp2p.services.breaker
      await connect(first, good.helia)
      await connect(first, bad.helia)
      const opened = nextEventFor(firstService, 'circuit:open', bad.peerId)
      assert.equal((await fetchAll(first, blocks, { concurrency: 16 })).received, blocks.length)
      await opened

      const snapshot = firstService.snapshot()
      const id = first.libp2p.peerId
      await first.stop()

      // serialisable: what comes back from JSON is what went in
      const restored = JSON.parse(JSON.stringify(snapshot)) as ProtectionSnapshot
      assert.deepEqual(restored, snapshot)
      const entry = restored.peers.find(p => p.peer === bad.peerId.toString())
      assert.equal(entry?.state, CircuitState.OPEN)
      assert.ok(entry.openUntil > Date.now(), 'still open when restarted')
      assert.ok(!restored.peers.some(p => p.peer === good.peerId.toString()), 'the good peer is not in the snapshot')

      const second = await createConsumer(net, { initialState: restored }, { libp2p: { privateKey } })
      const service = second.libp2p.services.breaker
      assert.ok(second.libp2p.peerId.equals(id), 'the same peer id')

      assert.equal(service.getPeerStatus(bad.peerId).circuitState, CircuitState.OPEN)
      assert.equal(service.getPeerStatus(good.peerId).circuitState, CircuitState.CLOSED)
      await assert.rejects(second.libp2p.dial(bad.helia.libp2p.getMultiaddrs()), (err: Error) => err.name === 'DialDeniedError')
      await assert.rejects(second.libp2p.dialProtocol(bad.peerId, BITSWAP_PROTOCOL), (err: Error) => ['DialDeniedError', 'CircuitOpenError'].includes(err.name))
      assert.equal(bad.helia.libp2p.getConnections(id).length, 0)
      await connect(second, good.helia)
      const result = await fetchAll(second, fresh, { concurrency: 4 })
      assert.equal(result.received, fresh.length)
      assert.equal(service.getPeerStatus(good.peerId).circuitState, CircuitState.CLOSED)
    })
  })

  describe('logging', () => {
    const previous = process.env.DEBUG

    afterEach(() => {
      disable()
      if (previous != null && previous !== '') {
        enable(previous)
      }
    })

    it('every circuit change logs the peer, from, to and why under libp2p:bitswap-circuit-breaker', async () => {
      enable('libp2p:bitswap-circuit-breaker*')
      const lines: string[] = []
      // the default component logger (weald), with its lines captured instead of written to stderr
      const base = defaultLogger({ onLog: (...args: unknown[]) => { lines.push(format(...args)) } })
      const logger: ComponentLogger = {
        forComponent (name) {
          const log = base.forComponent(name)
          for (const fn of [log, log.error, log.trace]) {
            (fn as unknown as { log: () => void }).log = () => {}
          }
          return log
        }
      }
      const blocks = await makeBlocks(60)
      const good = await net.provider({ blocks })
      const bad = await net.provider({ mode: 'reset' })
      const node = await createConsumer(net, FAST_RECOVERY, { libp2p: { logger } })
      const service = node.libp2p.services.breaker
      const reasons: string[] = []
      service.addEventListener('circuit:open', (evt) => { if (evt.detail.peer.equals(bad.peerId)) reasons.push(evt.detail.reason) })
      service.addEventListener('circuit:half-open', (evt) => { if (evt.detail.peer.equals(bad.peerId)) reasons.push(evt.detail.reason) })
      await connect(node, good.helia)
      await connect(node, bad.helia)

      const halfOpen = nextEventFor(service, 'circuit:half-open', bad.peerId)
      await fetchAll(node, blocks, { concurrency: 16 })
      await halfOpen

      const id = bad.peerId.toString()
      const ours = lines.filter(l => l.includes('libp2p:bitswap-circuit-breaker'))
      assert.ok(ours.some(l => l.includes('started')), 'the service logs its start')
      const open = ours.find(l => l.includes(id) && l.includes(CircuitState.CLOSED) && l.includes(CircuitState.OPEN) && l.includes(reasons[0]))
      assert.ok(open != null, `no line for ${id} CLOSED -> OPEN (${reasons[0]}) in:\n${ours.join('\n')}`)
      const half = ours.find(l => l.includes(id) && l.includes(CircuitState.HALF_OPEN) && l.includes(reasons[1]))
      assert.ok(half != null, `no line for ${id} OPEN -> HALF_OPEN (${reasons[1]}) in:\n${ours.join('\n')}`)
    })
  })
})
