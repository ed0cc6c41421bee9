import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { BitswapCircuitBreaker, PEER_BREAKER_PREFIX } from '../../../src/breaker/per-peer.ts'
import { CircuitOpenError, InvalidConfigError } from '../../../src/errors.ts'
import { peerKey } from '../../../src/peers/peer-key.ts'
import { PeerTable } from '../../../src/peers/peer-table.ts'
import { FakeClock, rejection } from '../helpers.ts'
import type { PeerStateChangeEvent } from '../../../src/breaker/per-peer.ts'

const fail = async (): Promise<never> => { throw new Error('peer failed') }
const ok = async (): Promise<string> => 'ok'

describe('BitswapCircuitBreaker', () => {
  let clock: FakeClock

  beforeEach(() => {
    clock = new FakeClock()
  })

  it('ExecuteWithPeer: a peer trips after 2 consecutive failures; other peers are unaffected', async () => {
    const breaker = new BitswapCircuitBreaker({ readyToTrip: c => c.consecutiveFailures >= 2 }, { clock })
    await rejection(breaker.executeWithPeer('peer-a', fail))
    await rejection(breaker.executeWithPeer('peer-a', fail))
    assert.equal(breaker.getPeerState('peer-a'), 'OPEN')
    const err = await rejection(breaker.executeWithPeer('peer-a', ok))
    assert.ok(err instanceof CircuitOpenError)
    assert.equal(err.message, 'circuit breaker is open')
    assert.equal(await breaker.executeWithPeer('peer-b', ok), 'ok')
    assert.equal(breaker.getPeerState('peer-b'), 'CLOSED')
  })

  it('unknown peers read as CLOSED with zero counts and are not created', () => {
    const breaker = new BitswapCircuitBreaker({}, { clock })
    assert.equal(breaker.getPeerState('nobody'), 'CLOSED')
    assert.deepEqual(breaker.getPeerCounts('nobody'), {
      requests: 0, totalSuccesses: 0, totalFailures: 0, consecutiveSuccesses: 0, consecutiveFailures: 0
    })
    assert.equal(breaker.getPeerOpenUntil('nobody'), 0)
    assert.equal(breaker.size, 0)
  })

  it('counts per peer; getAllStates reports every tracked peer', async () => {
    const breaker = new BitswapCircuitBreaker({ readyToTrip: c => c.consecutiveFailures >= 1 }, { clock })
    for (const peer of ['a', 'b', 'c']) await breaker.executeWithPeer(peer, ok)
    await breaker.executeWithPeer('a', ok)
    assert.equal(breaker.getPeerCounts('a').totalSuccesses, 2)
    assert.equal(breaker.getPeerCounts('b').totalSuccesses, 1)
    assert.deepEqual(breaker.getAllStates(), new Map([['a', 'CLOSED'], ['b', 'CLOSED'], ['c', 'CLOSED']]))
    await rejection(breaker.executeWithPeer('b', fail))
    assert.deepEqual(breaker.getAllStates(), new Map([['a', 'CLOSED'], ['b', 'OPEN'], ['c', 'CLOSED']]))
    assert.equal(breaker.size, 3)
  })

  it('names each circuit "bitswap-peer-" + the whole key, even for empty and short ids (seed bug 14)', async () => {
    const names: string[] = []
    const breaker = new BitswapCircuitBreaker({ readyToTrip: () => true, onStateChange: name => names.push(name) }, { clock })
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    for (const peer of ['', 'Qm', peerId]) await rejection(breaker.executeWithPeer(peer, fail))
    assert.deepEqual(names, [PEER_BREAKER_PREFIX, 'bitswap-peer-Qm', `bitswap-peer-${peerId.toString()}`])
  })

  it('a PeerId and its string form share one circuit; events carry the peer as first given', async () => {
    const breaker = new BitswapCircuitBreaker({ readyToTrip: c => c.consecutiveFailures >= 2 }, { clock })
    const events: PeerStateChangeEvent[] = []
    breaker.onStateChange(e => events.push(e))
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    await rejection(breaker.executeWithPeer(peerId, fail))
    await rejection(breaker.executeWithPeer(peerId.toString(), fail))
    assert.equal(breaker.getPeerState(peerId), 'OPEN')
    assert.equal(breaker.size, 1)
    assert.equal(events.length, 1)
    assert.equal(events[0].peer, peerId)
    assert.equal(events[0].name, `bitswap-peer-${peerId.toString()}`)
    assert.equal(events[0].from, 'CLOSED')
    assert.equal(events[0].to, 'OPEN')
    assert.equal(events[0].reason, 'failures')
  })

  it('OPEN -> HALF_OPEN -> CLOSED per peer, on the injected clock', async () => {
    const breaker = new BitswapCircuitBreaker({ maxRequests: 2, timeout: 60, readyToTrip: () => true }, { clock })
    await rejection(breaker.executeWithPeer('p', fail))
    assert.equal(breaker.getPeerOpenUntil('p'), clock.time + 60)
    clock.time += 61
    assert.equal(breaker.getPeerState('p'), 'HALF_OPEN')
    await breaker.executeWithPeer('p', ok)
    await breaker.executeWithPeer('p', ok)
    assert.equal(breaker.getPeerState('p'), 'CLOSED')
  })

  it('removePeer forgets a peer whatever its state and reports the change', async () => {
    const breaker = new BitswapCircuitBreaker({ readyToTrip: () => true }, { clock })
    const events: string[] = []
    breaker.onStateChange(e => events.push(`${String(e.peer)}:${e.from}->${e.to}:${e.reason}`))
    await rejection(breaker.executeWithPeer('p', fail))
    assert.equal(breaker.removePeer('p'), true)
    assert.equal(breaker.removePeer('p'), false)
    assert.equal(breaker.size, 0)
    assert.equal(breaker.getPeerState('p'), 'CLOSED')
    assert.deepEqual(events, ['p:CLOSED->OPEN:failures', 'p:OPEN->CLOSED:reset'])
    assert.equal(await breaker.executeWithPeer('p', ok), 'ok')
  })

  it('tripPeer and isolatePeer', async () => {
    const breaker = new BitswapCircuitBreaker({ timeout: 10 }, { clock })
    assert.equal(breaker.tripPeer('slow', 'health: unhealthy'), true)
    assert.equal(breaker.getPeerState('slow'), 'OPEN')
    const hold = breaker.isolatePeer('banned')
    clock.time += 1_000_000
    assert.equal(breaker.getPeerState('banned'), 'OPEN')
    assert.equal(breaker.getPeerOpenUntil('banned'), Infinity)
    hold.dispose()
    hold.dispose()
    assert.equal(breaker.getPeerState('banned'), 'HALF_OPEN')
  })

  it('the population guard on core.canTrip can veto a peer\'s trip', async () => {
    const breaker = new BitswapCircuitBreaker({ readyToTrip: () => true }, { clock })
    const asked: string[] = []
    breaker.core.canTrip = (record) => { asked.push(peerKey(record.peer)); return false }
    await rejection(breaker.executeWithPeer('p', fail))
    assert.equal(breaker.getPeerState('p'), 'CLOSED')
    assert.deepEqual(asked, ['p'])
  })

  it('an already-aborted call does not create the peer', async () => {
    const breaker = new BitswapCircuitBreaker({}, { clock })
    const err = await rejection(breaker.executeWithPeer('p', ok, { signal: AbortSignal.abort() }))
    assert.equal(err.name, 'AbortError')
    assert.equal(breaker.size, 0)
  })

  it('uses a shared registry when given one (its limits apply)', async () => {
    const registry = new PeerTable({ maxPeers: 5, clock })
    const breaker = new BitswapCircuitBreaker({}, { registry, maxPeers: 1000 })
    assert.equal(breaker.registry, registry)
    for (let i = 0; i < 20; i++) await breaker.executeWithPeer(`p${i}`, ok)
    assert.equal(registry.size, 5)
    assert.equal(breaker.size, 5)
    assert.ok(breaker.core.stateOf(registry.find('p19')!, clock.time) !== 'OPEN')
  })

  it('validates its options', () => {
    assert.throws(() => new BitswapCircuitBreaker({}, { maxPeers: 0 }), InvalidConfigError)
    assert.throws(() => new BitswapCircuitBreaker({ maxRequests: -1 }), /^InvalidConfigError: maxRequests must be/)
  })

  describe('memory bound', () => {
    it('1 000 000 distinct peers keep size at the cap, and OPEN peers survive eviction', async function () {
      this.timeout(20_000)
      const maxPeers = 1000
      const breaker = new BitswapCircuitBreaker({ readyToTrip: c => c.consecutiveFailures >= 2 }, { clock, maxPeers, idleTimeout: 1000 })
      const bad: string[] = []
      for (let i = 0; i < 50; i++) {
        const peer = `bad-${i}`
        bad.push(peer)
        await rejection(breaker.executeWithPeer(peer, fail))
        await rejection(breaker.executeWithPeer(peer, fail))
      }
      let maxSize = 0
      const value = (): number => 1
      for (let i = 0; i < 1_000_000; i++) {
        await breaker.executeWithPeer(`peer-${i}`, value)
        if (breaker.size > maxSize) maxSize = breaker.size
        if ((i & 1023) === 0) clock.time += 1 // idle peers expire as time passes, within the open duration
      }
      assert.equal(maxSize, maxPeers)
      assert.equal(breaker.size, maxPeers)
      for (const peer of bad) {
        assert.notEqual(breaker.registry.find(peer), undefined, `${peer} was evicted`)
        assert.equal(breaker.getPeerState(peer), 'OPEN')
        assert.ok((await rejection(breaker.executeWithPeer(peer, ok))) instanceof CircuitOpenError)
      }
    })

    it('when every tracked peer is OPEN, a new peer runs unprotected instead of growing the registry', async () => {
      const breaker = new BitswapCircuitBreaker({ readyToTrip: () => true }, { clock, maxPeers: 3 })
      for (const peer of ['a', 'b', 'c']) await rejection(breaker.executeWithPeer(peer, fail))
      let calls = 0
      for (let i = 0; i < 10; i++) {
        // failures of an untracked peer are not held against it: it is never rejected
        await rejection(breaker.executeWithPeer('newcomer', async () => { calls++; throw new Error('x') }))
      }
      assert.equal(calls, 10)
      assert.equal(breaker.size, 3)
      assert.equal(breaker.getPeerState('newcomer'), 'CLOSED')
      assert.equal(breaker.tripPeer('newcomer'), false)
      breaker.isolatePeer('newcomer').dispose()
      for (const peer of ['a', 'b', 'c']) assert.equal(breaker.getPeerState(peer), 'OPEN')
    })

    it('clean idle peers are forgotten; tripped ones are kept until their backoff has decayed', async () => {
      const breaker = new BitswapCircuitBreaker({ readyToTrip: () => true, timeout: 100, maxRequests: 1, backoffDecay: 10_000 }, { clock, idleTimeout: 1000 })
      await breaker.executeWithPeer('clean', ok)
      await rejection(breaker.executeWithPeer('flaky', fail))
      clock.time += 101
      await breaker.executeWithPeer('flaky', ok)
      assert.equal(breaker.getPeerState('flaky'), 'CLOSED')
      clock.time += 2000
      assert.equal(breaker.registry.prune(), 1)
      assert.equal(breaker.registry.find('clean'), undefined)
      assert.notEqual(breaker.registry.find('flaky'), undefined, 'backoff level 1 pins it')
      clock.time += 10_000
      assert.equal(breaker.registry.prune(), 1)
      assert.equal(breaker.size, 0)
    })
  })
})
