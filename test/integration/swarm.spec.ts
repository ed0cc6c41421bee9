/**
 * The eight-provider swarm of issue 10 on real Helia nodes over TCP (fixtures/swarm.ts): with the
 * service, every block arrives through `get` and through a session, and neither the slow nor a
 * healthy provider is ever tripped. Timings are the bench's (`npm run bench`), not asserted here.
 */

import assert from 'node:assert/strict'
import { TestNet, circuitEvents, createConsumer, createSwarm, fetchAll, makeBlocks } from '../../fixtures/index.ts'
import type { CircuitEventRecord } from '../../fixtures/index.ts'

describe('the eight-provider swarm (real Helia nodes, TCP)', function () {
  this.timeout(60_000)
  const net = new TestNet()
  afterEach(async () => { await net.stop() })

  for (const api of ['get', 'session'] as const) {
    it(`${api}: every block arrives, and no healthy or slow provider is tripped`, async () => {
      const blocks = await makeBlocks(150, 4096, { seed: api === 'get' ? 301 : 302 })
      const swarm = await createSwarm(net, blocks)
      const consumer = await createConsumer(net, {}, { transport: 'tcp' })
      const service = consumer.libp2p.services.breaker
      const events = new Map<string, CircuitEventRecord[]>(swarm.members.map(m => [m.provider.peerId.toString(), circuitEvents(service, m.provider.peerId)]))
      await swarm.join(consumer)
      const result = await fetchAll(consumer, blocks, { api, providers: api === 'session' ? swarm.providers : undefined, timeout: 30_000 })
      assert.equal(result.lost + result.corrupt, 0, `lost ${result.lost}: ${result.errors.slice(0, 3).map(e => e.message).join('; ')}`)
      for (const member of swarm.members.filter(m => m.role === 'healthy' || m.role === 'slow')) {
        const opened = (events.get(member.provider.peerId.toString()) ?? []).filter(e => e.type === 'circuit:open')
        assert.deepEqual(opened.map(e => e.detail.reason), [], `${member.role} provider tripped`)
      }
      process.stdout.write(`      ${api}: ${Math.round(result.ms)} ms, released ${service.getOverallStatus().releases.released}\n`)
    })
  }
})
