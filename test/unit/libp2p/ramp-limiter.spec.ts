/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { setImmediate as turn } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { RampLimiter } from '../../../src/libp2p/ramp-limiter.ts'
import { rejection } from '../helpers.ts'
import type { DialTarget, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

const BITSWAP = '/ipfs/bitswap/1.2.0'
const OTHER_PROTOCOL = '/ipfs/id/1.0.0'

interface OpenCall {
  target: DialTarget
  protocols: string | string[]
  options: { signal?: AbortSignal } | undefined
  promise: Promise<Stream>
  resolve(stream: Stream): void
  reject(err: Error): void
}

/** libp2p's `openStream` is a prototype method; every call here waits until the test settles it */
class FakeConnectionManager {
  calls: OpenCall[] = []

  openStream (target: DialTarget, protocols: string | string[], options?: { signal?: AbortSignal }): Promise<Stream> {
    let resolve!: (stream: Stream) => void
    let reject!: (err: Error) => void
    const promise = new Promise<Stream>((res, rej) => { resolve = res; reject = rej })
    this.calls.push({ target, protocols, options, promise, resolve, reject })
    return promise
  }
}

const originalOpenStream = FakeConnectionManager.prototype.openStream

function fakeStream (name: string): Stream {
  return { id: name } as unknown as Stream
}

/** Lets every pending promise reaction run (no timers involved: nothing races) */
async function settle (): Promise<void> {
  await turn()
}

async function newPeer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

describe('RampLimiter', () => {
  let peer: PeerId
  let other: PeerId
  let cm: FakeConnectionManager
  let limits: Map<string, number>
  let limitReads: number
  let limiter: RampLimiter
  let restore: () => void

  before(async () => {
    [peer, other] = await Promise.all([newPeer(), newPeer()])
  })

  beforeEach(() => {
    cm = new FakeConnectionManager()
    limits = new Map()
    limitReads = 0
    limiter = new RampLimiter((p) => {
      limitReads++
      return limits.get(p.toString()) ?? Infinity
    })
    restore = limiter.wrap(cm as unknown as ConnectionManager, [BITSWAP])
  })

  afterEach(() => {
    restore()
  })

  function open (target: DialTarget, protocols: string | string[] = BITSWAP, options?: { signal?: AbortSignal }): Promise<Stream> {
    return (cm as unknown as ConnectionManager).openStream(target, protocols, options)
  }

  function targets (): string[] {
    return cm.calls.map(c => c.target.toString())
  }

  /** The limiter's per-peer bookkeeping, to prove nothing is left behind */
  function trackedPeers (): number {
    return (limiter as unknown as { peers: Map<string, unknown> }).peers.size
  }

  it('installs itself as an instance property and restore puts back the original', () => {
    assert.notEqual(cm.openStream, originalOpenStream)
    assert.equal(Object.hasOwn(cm, 'openStream'), true)
    restore()
    assert.equal(cm.openStream, originalOpenStream)
  })

  it('with no limit, calls straight through: the very promise of the original, arguments untouched', async () => {
    const signal = new AbortController().signal
    const options = { signal }
    const p = open(peer, BITSWAP, options)
    assert.equal(cm.calls.length, 1)
    assert.equal(p, cm.calls[0].promise)
    assert.equal(cm.calls[0].target, peer)
    assert.equal(cm.calls[0].protocols, BITSWAP)
    assert.equal(cm.calls[0].options, options)
    // a second one is not held back either
    const p2 = open(peer)
    assert.equal(cm.calls.length, 2)
    assert.equal(p2, cm.calls[1].promise)
    const s = fakeStream('a')
    cm.calls[0].resolve(s)
    assert.equal(await p, s)
    assert.equal(trackedPeers(), 0)
  })

  it('other protocols and non-PeerId targets pass through untouched, whatever the limit', () => {
    limits.set(peer.toString(), 1)
    const multiaddrLike = { getComponents: () => [], toString: () => '/memory/x' } as unknown as DialTarget
    const calls = [
      open(peer, OTHER_PROTOCOL),
      open(peer, [OTHER_PROTOCOL]),
      open(peer, OTHER_PROTOCOL),
      open(multiaddrLike, BITSWAP),
      open(multiaddrLike, BITSWAP)
    ]
    assert.equal(cm.calls.length, calls.length)
    calls.forEach((p, i) => { assert.equal(p, cm.calls[i].promise) })
    assert.equal(limitReads, 0, 'the limit is not even asked for')
    assert.equal(trackedPeers(), 0)
  })

  it('a protocol list matches when any of its protocols is ours', async () => {
    limits.set(peer.toString(), 1)
    const first = open(peer, [OTHER_PROTOCOL, BITSWAP])
    const second = open(peer, [BITSWAP])
    await settle()
    assert.equal(cm.calls.length, 1)
    cm.calls[0].resolve(fakeStream('a'))
    await first
    await settle()
    assert.equal(cm.calls.length, 2)
    cm.calls[1].resolve(fakeStream('b'))
    await second
  })

  it('with a limit of one, a second open waits until the first resolves, then proceeds', async () => {
    limits.set(peer.toString(), 1)
    const first = open(peer)
    const second = open(peer)
    await settle()
    assert.equal(cm.calls.length, 1, 'the second open is held back')

    const a = fakeStream('a')
    cm.calls[0].resolve(a)
    assert.equal(await first, a)
    await settle()
    assert.equal(cm.calls.length, 2, 'the second open proceeds once a slot is free')
    assert.equal(cm.calls[1].target, peer)

    const b = fakeStream('b')
    cm.calls[1].resolve(b)
    assert.equal(await second, b)
    assert.equal(trackedPeers(), 0)
  })

  it('a failed open frees its slot too, and its error reaches its caller', async () => {
    limits.set(peer.toString(), 1)
    const first = open(peer)
    const second = open(peer)
    await settle()
    assert.equal(cm.calls.length, 1)

    const err = new Error('boom')
    cm.calls[0].reject(err)
    assert.equal(await rejection(first), err)
    await settle()
    assert.equal(cm.calls.length, 2)
    cm.calls[1].resolve(fakeStream('b'))
    await second
    assert.equal(trackedPeers(), 0)
  })

  it('waiters proceed one at a time, in order', async () => {
    limits.set(peer.toString(), 1)
    const opens = [open(peer, BITSWAP, { signal: AbortSignal.abort() }), open(peer), open(peer)]
    // the first is not waiting, so its (aborted) signal is the original's business
    await settle()
    assert.equal(cm.calls.length, 1)
    for (let i = 0; i < 3; i++) {
      cm.calls[i].resolve(fakeStream(String(i)))
      await opens[i]
      await settle()
      assert.equal(cm.calls.length, Math.min(i + 2, 3))
    }
    assert.equal(trackedPeers(), 0)
  })

  it('re-reads the limit when a waiter wakes', async () => {
    limits.set(peer.toString(), 2)
    const first = open(peer)
    const second = open(peer)
    const third = open(peer)
    await settle()
    assert.equal(cm.calls.length, 2)

    // the ramp slowed down meanwhile: one slot free is not enough any more
    limits.set(peer.toString(), 1)
    cm.calls[0].resolve(fakeStream('a'))
    await first
    await settle()
    assert.equal(cm.calls.length, 2, 'the third waits again: the second still holds the only slot')

    cm.calls[1].resolve(fakeStream('b'))
    await second
    await settle()
    assert.equal(cm.calls.length, 3)
    cm.calls[2].resolve(fakeStream('c'))
    await third
  })

  it('an aborted caller stops waiting with the signal\'s reason and leaves no waiter behind', async () => {
    limits.set(peer.toString(), 1)
    const first = open(peer)
    const controller = new AbortController()
    const aborted = open(peer, BITSWAP, { signal: controller.signal })
    const third = open(peer)
    await settle()
    assert.equal(cm.calls.length, 1)
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1)

    const reason = new Error('caller gave up')
    controller.abort(reason)
    assert.equal(await rejection(aborted), reason)
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0)

    // the slot the first frees goes to the third: the aborted caller's waiter is gone
    cm.calls[0].resolve(fakeStream('a'))
    await first
    await settle()
    assert.equal(cm.calls.length, 2)
    assert.equal(cm.calls[1].options?.signal, undefined, 'the aborted caller never opened')
    cm.calls[1].resolve(fakeStream('c'))
    await third
    assert.equal(trackedPeers(), 0)
  })

  it('a caller whose signal is already aborted when it would wait is refused at once', async () => {
    limits.set(peer.toString(), 1)
    const first = open(peer)
    const reason = new Error('already gave up')
    const refused = open(peer, BITSWAP, { signal: AbortSignal.abort(reason) })
    assert.equal(await rejection(refused), reason)
    assert.equal(cm.calls.length, 1)
    cm.calls[0].resolve(fakeStream('a'))
    await first
    assert.equal(trackedPeers(), 0)
  })

  it('a woken waiter no longer listens to its signal', async () => {
    limits.set(peer.toString(), 1)
    const first = open(peer)
    const controller = new AbortController()
    const second = open(peer, BITSWAP, { signal: controller.signal })
    await settle()
    cm.calls[0].resolve(fakeStream('a'))
    await first
    await settle()
    assert.equal(cm.calls.length, 2)
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0)
    cm.calls[1].resolve(fakeStream('b'))
    await second
  })

  it('peers are limited independently', async () => {
    limits.set(peer.toString(), 1)
    limits.set(other.toString(), 1)
    const p1 = open(peer)
    const p2 = open(peer)
    const o1 = open(other)
    await settle()
    assert.deepEqual(targets(), [peer, other].map(String), 'the other peer is not held back by this one')

    const o2 = open(other)
    await settle()
    assert.equal(cm.calls.length, 2)
    // freeing the other peer's slot wakes the other peer's waiter, not this one's
    cm.calls[1].resolve(fakeStream('o1'))
    await o1
    await settle()
    assert.deepEqual(targets(), [peer, other, other].map(String))

    cm.calls[0].resolve(fakeStream('p1'))
    await p1
    await settle()
    assert.deepEqual(targets(), [peer, other, other, peer].map(String))
    cm.calls[2].resolve(fakeStream('o2'))
    cm.calls[3].resolve(fakeStream('p2'))
    await Promise.all([o2, p2])
    assert.equal(trackedPeers(), 0)
  })

  it('an unlimited peer with opens still counted goes through the books, not around them', async () => {
    limits.set(peer.toString(), 1)
    const first = open(peer)
    const second = open(peer)
    await settle()
    // the limit is lifted while an open is still in flight...
    limits.delete(peer.toString())
    const third = open(peer)
    await settle()
    assert.equal(cm.calls.length, 2, 'the new open is not limited')
    // ...and comes back (the ramp restarted): the third open must still count
    limits.set(peer.toString(), 1)
    cm.calls[0].resolve(fakeStream('a'))
    await first
    await settle()
    assert.equal(cm.calls.length, 2, 'the second waits for the third, which holds the slot')
    cm.calls[1].resolve(fakeStream('c'))
    await third
    await settle()
    assert.equal(cm.calls.length, 3)
    cm.calls[2].resolve(fakeStream('b'))
    await second
    assert.equal(trackedPeers(), 0)
  })

  it('restore puts back the original and wakes every waiter, which then proceed', async () => {
    limits.set(peer.toString(), 1)
    limits.set(other.toString(), 1)
    const first = open(peer)
    const waiters = [open(peer), open(peer), open(other), open(other)]
    await settle()
    assert.deepEqual(targets(), [peer, other].map(String))

    restore()
    assert.equal(cm.openStream, originalOpenStream)
    await settle()
    // nothing holds them back any more: the limiter is gone
    assert.deepEqual(targets(), [peer, other, peer, peer, other].map(String))
    cm.calls.forEach((call, i) => { call.resolve(fakeStream(String(i))) })
    await Promise.all([first, ...waiters])
    assert.equal(trackedPeers(), 0)
  })

  it('an open from before a restore does not disturb the books of a new wrap', async () => {
    limits.set(peer.toString(), 1)
    const old = open(peer)
    await settle()
    restore()

    restore = limiter.wrap(cm as unknown as ConnectionManager, [BITSWAP])
    const first = open(peer)
    const second = open(peer)
    await settle()
    assert.equal(cm.calls.length, 2, 'old + first; second waits')

    // the old open ends: it must not drop the new wrap's count for this peer
    cm.calls[0].resolve(fakeStream('old'))
    await old
    const third = open(peer)
    await settle()
    assert.equal(cm.calls.length, 2, 'the first still holds the only slot')

    cm.calls[1].resolve(fakeStream('first'))
    await first
    await settle()
    assert.equal(cm.calls.length, 3)
    cm.calls[2].resolve(fakeStream('second'))
    await second
    await settle()
    assert.equal(cm.calls.length, 4)
    cm.calls[3].resolve(fakeStream('third'))
    await third
    assert.equal(trackedPeers(), 0)
  })

  it('restore leaves alone an openStream someone else installed on top', () => {
    const theirs = async (): Promise<Stream> => fakeStream('theirs')
    ;(cm as unknown as { openStream: unknown }).openStream = theirs
    restore()
    assert.equal(cm.openStream, theirs)
  })
})
