import assert from 'node:assert/strict'
import { ConnectionDrops, DEFAULT_DROP_WINDOW, isConnectionError } from '../../../src/libp2p/connection-drops.ts'

describe('ConnectionDrops', () => {
  it('counts the first connection-wide failure of a drop, not the others that died with it', () => {
    const drops = new ConnectionDrops()
    assert.equal(drops.first('a', 1000), true)
    assert.equal(drops.first('a', 1001), false)
    assert.equal(drops.first('a', 1000 + DEFAULT_DROP_WINDOW - 1), false)
    // another peer's drop is its own
    assert.equal(drops.first('b', 1001), true)
    // the peer redialled and dropped again: a new event
    assert.equal(drops.first('a', 1000 + DEFAULT_DROP_WINDOW), true)
  })

  it('stays bounded under a mass drop', () => {
    const drops = new ConnectionDrops(100)
    for (let i = 0; i < 5000; i++) {
      drops.first(`peer-${i}`, 1000)
    }
    assert.equal(drops.first('peer-4999', 1050), false)
    assert.equal(drops.first('late', 5000), true)
  })

  it('knows the errors that say the connection went away, and not a remote stream reset', () => {
    const named = (name: string): Error => Object.assign(new Error(name), { name })
    assert.equal(isConnectionError(named('ConnectionClosedError')), true)
    assert.equal(isConnectionError(named('MuxerClosedError')), true)
    assert.equal(isConnectionError(named('StreamResetError')), false)
    assert.equal(isConnectionError(undefined), false)
  })
})
