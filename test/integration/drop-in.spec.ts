/**
 * The drop-in config helper: Helia's `libp2p` option replaces the whole services map, so the service
 * must be added to the defaults, not passed alone.
 */

import assert from 'node:assert/strict'
import { libp2pDefaults } from '@helia/libp2p'
import { addBitswapCircuitBreaker } from '../../src/index.ts'
import { createHelia } from 'helia'
import { libp2pConfig } from '../../fixtures/index.ts'
import type { BitswapCircuitBreakerService } from '../../src/index.ts'

describe('addBitswapCircuitBreaker', function () {
  this.timeout(30_000)

  it('adds the service to Helia\'s default libp2p config without losing any default service', () => {
    const defaults = libp2pDefaults()
    const before = Object.keys(defaults.services ?? {})

    const config = addBitswapCircuitBreaker(defaults)

    assert.ok(before.length > 5, `helia's defaults have services: ${before.join(', ')}`)
    const services = config.services as Record<string, unknown>
    assert.deepEqual(Object.keys(services).sort(), [...before, 'bitswapCircuitBreaker'].sort())
    assert.equal(typeof services.bitswapCircuitBreaker, 'function')
    // the caller's config is not mutated
    assert.deepEqual(Object.keys(defaults.services ?? {}), before)
    assert.equal(typeof (addBitswapCircuitBreaker(defaults, {}, 'breaker').services as Record<string, unknown>).breaker, 'function')
  })

  it('runs in a real Helia node next to the other services', async () => {
    // the fixtures' offline config stands in for libp2pDefaults(), whose services dial out
    const helia = createHelia({ libp2p: addBitswapCircuitBreaker(libp2pConfig({})), http: { delegatedRouters: [], recursiveGateways: [] } })
    await helia.start()
    try {
      const services = helia.libp2p.services as Record<string, unknown>
      assert.ok(services.identify != null, 'identify kept')
      const breaker = services.bitswapCircuitBreaker as BitswapCircuitBreakerService
      assert.equal(breaker.getOverallStatus().upstreamMiddlewareWorkaround, 'applied')
    } finally {
      await helia.stop()
    }
  })
})
