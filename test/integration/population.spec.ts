/**
 * Population guards on real nodes: when every provider fails at once, the fault is most likely our
 * own network, and the breaker must not cut this node off from everyone.
 */

import assert from 'node:assert/strict'
import { CircuitState } from '../../src/index.ts'
import { maxOpenPeers } from '../../src/protection/population-guard.ts'
import { TestNet, addBlocks, connect, createConsumer, fetchAll, makeBlocks, once } from '../../fixtures/index.ts'
import type { LocalSuspicionChange } from '../../src/index.ts'
import type { FaultyProvider } from '../../fixtures/index.ts'

describe('population guards on real Helia nodes', function () {
  this.timeout(60_000)
  let net: TestNet

  beforeEach(() => {
    net = new TestNet()
  })

  afterEach(async () => {
    await net.stop()
  })

  it('when every provider fails at once, suspects our own network and opens no circuit beyond the guard', async () => {
    const blocks = await makeBlocks(40, 4096, { seed: 21 })
    const providers: FaultyProvider[] = []
    for (let i = 0; i < 4; i++) {
      providers.push(await net.provider({ blocks }))
    }
    const node = await createConsumer(net)
    const service = node.libp2p.services.breaker
    for (const provider of providers) {
      await connect(node, provider.helia)
    }
    // established providers: each has answered us before (a never-useful peer says nothing about our network)
    const warm = await makeBlocks(4, 1024, { seed: 22 })
    for (const [i, provider] of providers.entries()) {
      await addBlocks(provider.helia, [warm[i]])
      const result = await fetchAll(node, [warm[i]], { api: 'session', providers: [provider.helia] })
      assert.equal(result.received, 1)
    }
    const opened: string[] = []
    service.addEventListener('circuit:open', (evt) => { opened.push(evt.detail.peer.toString()) })
    const suspected = once<CustomEvent<LocalSuspicionChange>>(service, 'population:local-suspected', { timeout: 10_000 })
    const recovered = once<CustomEvent<LocalSuspicionChange>>(service, 'population:local-recovered', { timeout: 20_000 })

    // our side breaks: every provider's streams fail from now on
    for (const provider of providers) {
      provider.set('reset')
    }
    const brokeAt = Date.now()
    const fetching = fetchAll(node, blocks, { concurrency: 8, timeout: 3_000 })
    const evt = await suspected
    const detectedAfter = Date.now() - brokeAt
    const status = service.getOverallStatus()
    await fetching

    assert.ok(evt.detail.suspected)
    assert.ok(evt.detail.failing >= 3, `failing peers when suspected: ${evt.detail.failing}`)
    assert.ok(detectedAfter <= 1_000, `suspected after ${detectedAfter} ms`)
    assert.equal(status.localNetworkSuspected, true)
    // the cap bounds the open circuits whatever happened before the suspicion started
    assert.ok(opened.length <= maxOpenPeers(4, 0.5), `circuits opened: ${opened.length}`)
    assert.ok(status.circuitStates.open + status.circuitStates.halfOpen <= maxOpenPeers(4, 0.5))
    const closed = providers.filter(p => service.getPeerStatus(p.peerId).circuitState === CircuitState.CLOSED)
    assert.ok(closed.length >= 2, `providers still reachable: ${closed.length}`)

    // our network heals: the suspicion clears by itself (one shared timer re-checks it) and is announced
    for (const provider of providers) {
      provider.set('none')
    }
    assert.equal((await recovered).detail.suspected, false)
    assert.equal(service.getOverallStatus().localNetworkSuspected, false)
  })
})
