/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TypedEventEmitter } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import sinon from 'sinon'
import { resolveServiceConfig } from '../../../src/libp2p/config.ts'
import { DeadlineScheduler } from '../../../src/libp2p/deadline-scheduler.ts'
import { ServiceMetrics } from '../../../src/libp2p/metrics.ts'
import { StreamGate } from '../../../src/libp2p/stream-gate.ts'
import { BitswapProtectionManager } from '../../../src/protection/protection-manager.ts'
import type { Clock } from '../../../src/clock.ts'
import type { OpenStreamGuardComponents } from '../../../src/libp2p/open-stream-init.ts'
import type { Connection, Libp2pEvents, PeerId, Stream } from '@libp2p/interface'

const STAMP = 1_700_000_000_000

function gateOver (clock: Clock | undefined): { gate: StreamGate, protection: BitswapProtectionManager } {
  const config = resolveServiceConfig({ observeMessages: false, clock })
  const protection = new BitswapProtectionManager(config.protection, { clock: config.clock })
  const components = {
    connectionManager: { getConnections: () => [] },
    events: new TypedEventEmitter<Libp2pEvents>(),
    logger: defaultLogger()
  } as unknown as OpenStreamGuardComponents
  const scheduler = new DeadlineScheduler({ clock: protection.clock })
  // without libp2p metrics the source is never read
  const metrics = new ServiceMetrics(undefined, {} as unknown as ConstructorParameters<typeof ServiceMetrics>[1])
  return { gate: new StreamGate(components, config, protection, scheduler, metrics, components.logger.forComponent('test')), protection }
}

function inboundStream (open: number | undefined): Stream {
  return {
    direction: 'inbound',
    status: 'open',
    timeline: open === undefined ? undefined : { open },
    addEventListener: () => {}
  } as unknown as Stream
}

describe('stream gate: the admission time of a stream', () => {
  let peer: PeerId

  before(async () => {
    peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  })

  afterEach(() => {
    sinon.restore()
  })

  it('on the system clock, admits at the stream\'s own timeline.open and reads no clock', () => {
    const { gate, protection } = gateOver(undefined)
    const admit = sinon.spy(protection, 'admit')
    const now = sinon.spy(protection.clock, 'now')
    const next = sinon.spy()
    gate.onStream(inboundStream(STAMP), { remotePeer: peer } as unknown as Connection, next)
    assert.equal(next.callCount, 1)
    assert.equal(admit.callCount, 1)
    assert.equal(admit.firstCall.args[2], STAMP)
    assert.equal(now.callCount, 0)
    protection.close()
  })

  it('on the system clock, a stream without a timeline is admitted at a clock read', () => {
    const { gate, protection } = gateOver(undefined)
    const admit = sinon.spy(protection, 'admit')
    const before = Date.now()
    gate.onStream(inboundStream(undefined), { remotePeer: peer } as unknown as Connection, () => {})
    const at = admit.firstCall.args[2]
    assert.ok(typeof at === 'number' && at >= before && at <= Date.now())
    protection.close()
  })

  it('with an injected clock, admits at that clock, not at the stream\'s stamp', () => {
    const clock = { now: () => 5_000_000 }
    const { gate, protection } = gateOver(clock)
    const admit = sinon.spy(protection, 'admit')
    gate.onStream(inboundStream(STAMP), { remotePeer: peer } as unknown as Connection, () => {})
    assert.equal(admit.firstCall.args[2], 5_000_000)
    protection.close()
  })
})
