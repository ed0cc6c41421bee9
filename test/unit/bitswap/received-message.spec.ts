import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { multihashKey, prefixKey } from '../../../src/bitswap/cid-key.ts'
import { PresenceType } from '../../../src/bitswap/message.ts'
import { ReceivedMessage } from '../../../src/bitswap/received-message.ts'
// The real codec and prefix encoding of @helia/bitswap 4.0.19 (not exported by the package)
import { BitswapMessage, BlockPresenceType } from '../../../node_modules/@helia/bitswap/dist/src/pb/message.js'
import { cidToPrefix } from '../../../node_modules/@helia/bitswap/dist/src/utils/cid-prefix.js'

function cid (n: number): CID {
  const digest = new Uint8Array(32)
  new DataView(digest.buffer).setUint32(0, n)
  return CID.createV1(raw.code, Digest.create(0x12, digest))
}

function message (presences: number, blocks: number): Uint8Array {
  return BitswapMessage.encode({
    blockPresences: Array.from({ length: presences }, (_, i) => ({ cid: cid(i).bytes, type: BlockPresenceType.DoNotHaveBlock })),
    blocks: Array.from({ length: blocks }, () => ({ prefix: cidToPrefix(cid(0)), data: new Uint8Array([1]) })),
    pendingBytes: 0
  })
}

describe('bitswap/received-message', () => {
  it('collects a message\'s presences (by multihash) and blocks (by prefix)', () => {
    const items = new ReceivedMessage()
    items.read(message(2, 3))
    assert.equal(items.presences, 2)
    assert.deepEqual(items.presenceKeys.slice(0, 2), [multihashKey(cid(0).bytes), multihashKey(cid(1).bytes)])
    assert.equal(items.presenceTypes[0], PresenceType.DontHave)
    assert.equal(items.blocks, 3)
    assert.equal(items.blockKeys[0], prefixKey(cidToPrefix(cid(0))))
  })

  it('a malformed message leaves nothing collected, even after a good one', () => {
    const items = new ReceivedMessage()
    items.read(message(1, 1))
    assert.throws(() => { items.read(new Uint8Array([0x0a, 0xff])) }, (err: Error) => err.name === 'InvalidMessageError')
    assert.equal(items.presences, 0)
    assert.equal(items.blocks, 0)
  })

  it('reset releases a huge message\'s keys and keeps a small one\'s storage', () => {
    const items = new ReceivedMessage()
    items.read(message(1100, 2))
    items.reset()
    assert.equal(items.presenceKeys.length, 0, 'over the limit: released')
    assert.equal(items.blockKeys.length, 2, 'under it: kept for reuse')
    assert.equal(items.presences + items.blocks, 0)
  })
})
