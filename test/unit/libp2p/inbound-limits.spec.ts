import assert from 'node:assert/strict'
import { InboundLimits, PEER_SHARE_OF_BUFFERED } from '../../../src/libp2p/inbound-limits.ts'

describe('InboundLimits', () => {
  it('charges bytes only when they fit the bucket: bytes past it are refused, nothing charged', () => {
    const limits = new InboundLimits({ maxInboundBytesPerSecond: 1000 })
    const usage = limits.usage(0)
    assert.equal(limits.take(usage, 600, 0), true)
    assert.equal(limits.take(usage, 500, 0), false)
    assert.equal(usage.tokens, 400)
    assert.equal(limits.take(usage, 500, 100), true)
  })

  it('lets a chunk larger than the whole bucket into a full bucket only, leaving a debt', () => {
    const limits = new InboundLimits({ maxInboundBytesPerSecond: 1000 })
    const usage = limits.usage(0)
    assert.equal(limits.take(usage, 1500, 0), true)
    assert.equal(usage.tokens, -500)
    assert.equal(limits.take(usage, 1, 400), false)
  })

  it('budgets wantlist entries per peer: a burst of maxWantlistEntries, refilled at the rate', () => {
    const limits = new InboundLimits({ maxWantlistEntries: 100, maxWantlistEntriesPerSecond: 1000 })
    const usage = limits.usage(0)
    assert.equal(limits.takeEntries(usage, 100, 0), true)
    assert.equal(limits.takeEntries(usage, 1, 0), false)
    assert.equal(limits.takeEntries(usage, 0, 0), true)
    assert.equal(limits.takeEntries(usage, 50, 50), true)
  })

  it('holds partial frames in one budget for all peers, and a quarter of it for any one', () => {
    const limits = new InboundLimits({ maxInboundBufferedBytes: 1000 })
    const a = limits.usage(0)
    const b = limits.usage(0)
    assert.equal(limits.maxBufferedPerPeer, 1000 * PEER_SHARE_OF_BUFFERED)
    assert.equal(limits.hold(a, 250), true)
    assert.equal(limits.hold(a, 1), false, 'one peer past its share')
    limits.hold(a, -1)
    for (let i = 0; i < 3; i++) {
      limits.hold(limits.usage(0), 250)
    }
    assert.equal(limits.withinBuffered, true)
    assert.equal(limits.hold(b, 1), false, 'the total past the budget')
    assert.equal(limits.buffered, 1001)
    assert.equal(limits.idle(b, 0), false, 'a peer holding partial frames is not idle')
    limits.hold(b, -1)
    assert.equal(limits.idle(b, 0), true)
  })

  it('checks a peer\'s share against the bytes its frames announce, and the total against the bytes held', () => {
    const limits = new InboundLimits({ maxInboundBufferedBytes: 1000 })
    const a = limits.usage(0)
    assert.equal(limits.hold(a, 2, 200), true)
    assert.equal(limits.hold(a, 2, 200), false, 'two prefixes announce 400 bytes of a 250-byte share')
    assert.equal(limits.overShare(a), true)
    assert.equal(limits.buffered, 4, 'the total counts only the bytes held')
    assert.equal(limits.withinBuffered, true)
    assert.equal(limits.idle(a, 0), false)
    limits.hold(a, -4, -400)
    assert.equal(limits.overShare(a), false)
    assert.equal(limits.idle(a, 0), true)
  })
})
