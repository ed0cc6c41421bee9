import assert from 'node:assert/strict'
import fc from 'fast-check'
import { FrameDecoder } from '../../../src/bitswap/frames.ts'
import { countWantlistEntries, lastPresenceCount, readMessage } from '../../../src/bitswap/message.ts'
// The real codec @helia/bitswap 4.0.19 uses on the wire (its package exports block this subpath)
import { BitswapMessage, BlockPresenceType, WantType } from '../../../node_modules/@helia/bitswap/dist/src/pb/message.js'
import { wantlistFloodFrame } from '../../../fixtures/abusers.ts'

function message (entries: number, presences: number): Uint8Array {
  const cid = Uint8Array.from([1, 0x55, 0x12, 4, 1, 2, 3, 4])
  return BitswapMessage.encode({
    wantlist: { full: false, entries: Array.from({ length: entries }, () => ({ cid, priority: 1, wantType: WantType.WantHave, cancel: false, sendDontHave: true })) },
    blockPresences: Array.from({ length: presences }, () => ({ cid, type: BlockPresenceType.DoNotHaveBlock })),
    pendingBytes: 7
  })
}

describe('countWantlistEntries', () => {
  it('counts what readMessage visits, below the limit', () => {
    fc.assert(fc.property(fc.nat(40), fc.nat(40), (entries, presences) => {
      const bytes = message(entries, presences)
      let visited = 0
      let present = 0
      readMessage(bytes, { wantlistEntry: () => { visited++ }, presence: () => { present++ } })
      assert.equal(countWantlistEntries(bytes, 100), visited)
      assert.equal(lastPresenceCount(), present)
      assert.equal(visited, entries)
    }))
  })

  it('stops just past the limit: the count of a hostile message is bounded by the limit, not its size', () => {
    const frame = wantlistFloodFrame(100_000)
    const decoder = new FrameDecoder()
    decoder.push(frame)
    const body = decoder.next() as Uint8Array
    assert.equal(countWantlistEntries(body, 1024), 1025)
    let visited = 0
    readMessage(body, { wantlistEntry: () => { visited++ } })
    assert.equal(visited, 100_000)
    assert.equal(countWantlistEntries(message(3, 2000), 1024), 3)
    assert.equal(lastPresenceCount(), 1025)
  })

  it('a message without a wantlist has no entries', () => {
    assert.equal(countWantlistEntries(new Uint8Array(0), 10), 0)
    assert.equal(countWantlistEntries(message(0, 0), 10), 0)
  })

  it('throws on malformed framing', () => {
    assert.throws(() => countWantlistEntries(Uint8Array.from([0x0a, 0x05, 0x0a]), 10), { name: 'InvalidMessageError' })
  })
})
