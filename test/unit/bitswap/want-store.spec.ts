import assert from 'node:assert/strict'
import { WantType } from '../../../src/bitswap/message.ts'
import { WantStore } from '../../../src/bitswap/want-store.ts'

describe('bitswap/want-store', () => {
  it('counts wants across peers and finds every peer\'s wants for a CID, oldest first', () => {
    const store = new WantStore(10)
    const a = store.addPeer('A')
    const b = store.addPeer('B')
    const first = store.addWant(a, 'k1', 'p', WantType.Block, true, 0)
    const second = store.addWant(b, 'k1', 'p', WantType.Have, false, 5)
    store.addWant(a, 'k2', 'p', WantType.Block, true, 0)
    assert.equal(store.size, 3)
    assert.equal(store.peerCount, 2)
    assert.deepEqual([...store.wantsFor('k1') ?? []], [first, second])
    assert.equal(a.wants.get('k1'), first)

    store.removeWant(first)
    assert.deepEqual([...store.wantsFor('k1') ?? []], [second])
    store.removeWant(second)
    assert.equal(store.wantsFor('k1'), undefined, 'a CID nobody wants any more is forgotten')
    assert.equal(store.size, 1)
    assert.equal(a.wants.has('k1'), false)
  })

  it('at the peer cap, the least recently active peer goes first, with its wants', () => {
    const store = new WantStore(2)
    const a = store.addPeer('A')
    const b = store.addPeer('B')
    store.addWant(a, 'k', 'p', WantType.Block, true, 0)
    store.addWant(b, 'k', 'p', WantType.Block, true, 0)
    store.touch(a)
    store.addPeer('C')
    assert.equal(store.peer('B'), undefined)
    assert.equal(b.removed, true)
    assert.equal(store.peer('A'), a)
    assert.equal(store.size, 1)
    assert.equal([...store.wantsFor('k') ?? []].length, 1)
  })

  it('setDue keeps the peer whose want misses first on top, and forgets peers that cannot miss', () => {
    const store = new WantStore(10)
    const a = store.addPeer('A')
    const b = store.addPeer('B')
    assert.equal(store.nextDue, undefined)
    store.setDue(a, 500)
    store.setDue(b, 300)
    assert.equal(store.nextDue, b)
    store.setDue(b, 900)
    assert.equal(store.nextDue, a)
    store.setDue(a, Infinity)
    assert.equal(store.nextDue, b)
    assert.equal(a.heapKey, Infinity)
    store.dropPeer(b)
    assert.equal(store.nextDue, undefined)
    assert.equal(b.heapKey, Infinity)
    store.setDue(b, 100)
    assert.equal(store.nextDue, undefined, 'a dropped peer is never scheduled again')
  })

  it('purgeEnded forgets wants that ended at or before the cutoff, in the order they ended', () => {
    const store = new WantStore(10)
    const a = store.addPeer('A')
    const wants = [0, 1, 2].map(i => store.addWant(a, `k${i}`, 'p', WantType.Block, true, 0))
    wants.forEach((want, i) => {
      want.state = 'settled'
      want.endedAt = 100 * (i + 1)
      a.attachEnded(want)
    })
    store.purgeEnded(a, 200)
    assert.deepEqual([...a.wants.keys()], ['k2'])
    assert.equal(store.size, 1)
  })

  it('clear forgets every peer and want, and marks the peers removed', () => {
    const store = new WantStore(10)
    const a = store.addPeer('A')
    store.addWant(a, 'k', 'p', WantType.Block, true, 0)
    store.setDue(a, 10)
    store.clear()
    assert.equal(store.size, 0)
    assert.equal(store.peerCount, 0)
    assert.equal(store.nextDue, undefined)
    assert.equal(store.wantsFor('k'), undefined)
    assert.equal(a.removed, true)
  })
})
