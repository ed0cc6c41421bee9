/// <reference types="node" />
/// <reference types="mocha" />
import assert from 'node:assert/strict'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { memory } from '@libp2p/memory'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createLibp2p } from 'libp2p'
import { wrapGater } from '../../../src/libp2p/gater.ts'
import type { ConnectionGater, Libp2p, MultiaddrConnection, PeerId } from '@libp2p/interface'

async function newPeer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

const maConn = {} as unknown as MultiaddrConnection

async function denied (gater: ConnectionGater, peer: PeerId): Promise<[boolean, boolean]> {
  return [
    (await gater.denyDialPeer?.(peer)) === true,
    (await gater.denyInboundEncryptedConnection?.(peer, maConn)) === true
  ]
}

describe('wrapGater', () => {
  let a: PeerId, b: PeerId, c: PeerId, d: PeerId

  before(async () => {
    [a, b, c, d] = await Promise.all([newPeer(), newPeer(), newPeer(), newPeer()])
  })

  it('denies a peer when our rule OR the user gater says so, sync and async', async () => {
    const seen: string[] = []
    const gater: ConnectionGater = {
      // sync deny of b, async deny of c; `this` must still be the gater
      denyDialPeer (this: ConnectionGater, peer) {
        assert.equal(this, gater)
        seen.push(peer.toString())
        return peer.equals(b)
      },
      async denyInboundEncryptedConnection (peer) {
        return peer.equals(c)
      }
    }
    const restore = wrapGater(gater, (peer) => peer.equals(a))

    assert.deepEqual(await denied(gater, a), [true, true])
    assert.deepEqual(await denied(gater, b), [true, false])
    assert.equal(gater.denyInboundEncryptedConnection?.(c, maConn) instanceof Promise, true)
    assert.deepEqual(await denied(gater, c), [false, true])
    assert.deepEqual(await denied(gater, d), [false, false])
    // our denial short-circuits: the user's method was not asked about a
    assert.equal(seen.includes(a.toString()), false)
    restore()
  })

  it('works on an empty gater (libp2p passes {} when none was configured)', async () => {
    const gater: ConnectionGater = {}
    const restore = wrapGater(gater, (peer) => peer.equals(a))
    assert.deepEqual(await denied(gater, a), [true, true])
    assert.deepEqual(await denied(gater, b), [false, false])
    restore()
    assert.deepEqual(Object.keys(gater), [])
  })

  it('restore puts back the exact previous state: own methods, missing methods, inherited methods', async () => {
    const ownDial = (peer: PeerId): boolean => peer.equals(b)
    class ClassGater implements ConnectionGater {
      denyInboundEncryptedConnection (peer: PeerId): boolean {
        return peer.equals(c)
      }
    }
    const gater = new ClassGater() as ConnectionGater
    gater.denyDialPeer = ownDial
    const inherited = gater.denyInboundEncryptedConnection

    const restore = wrapGater(gater, (peer) => peer.equals(a))
    assert.notEqual(gater.denyDialPeer, ownDial)
    assert.equal(Object.hasOwn(gater, 'denyInboundEncryptedConnection'), true)
    assert.deepEqual(await denied(gater, a), [true, true])
    assert.deepEqual(await denied(gater, c), [false, true])

    restore()
    assert.equal(gater.denyDialPeer, ownDial)
    assert.equal(Object.hasOwn(gater, 'denyInboundEncryptedConnection'), false)
    assert.equal(gater.denyInboundEncryptedConnection, inherited)
    assert.deepEqual(await denied(gater, a), [false, false])
    // restoring twice changes nothing
    restore()
    assert.equal(gater.denyDialPeer, ownDial)
  })

  for (const order of ['inner first', 'outer first'] as const) {
    it(`two wrappers on one gater unwrap cleanly, ${order}`, async () => {
      const userDial = (peer: PeerId): boolean => peer.equals(d)
      const gater: ConnectionGater = { denyDialPeer: userDial }
      const restoreInner = wrapGater(gater, (peer) => peer.equals(a))
      const restoreOuter = wrapGater(gater, (peer) => peer.equals(b))
      assert.deepEqual(await denied(gater, a), [true, true])
      assert.deepEqual(await denied(gater, b), [true, true])
      assert.deepEqual(await denied(gater, d), [true, false])

      if (order === 'inner first') {
        restoreInner()
        // the inner rule is gone, the outer one still applies, the user's still applies
        assert.deepEqual(await denied(gater, a), [false, false])
        assert.deepEqual(await denied(gater, b), [true, true])
        assert.deepEqual(await denied(gater, d), [true, false])
        restoreOuter()
      } else {
        restoreOuter()
        assert.deepEqual(await denied(gater, a), [true, true])
        assert.deepEqual(await denied(gater, b), [false, false])
        assert.deepEqual(await denied(gater, d), [true, false])
        restoreInner()
      }
      assert.equal(gater.denyDialPeer, userDial)
      assert.deepEqual(Object.keys(gater), ['denyDialPeer'])
      assert.deepEqual(await denied(gater, a), [false, false])
      assert.deepEqual(await denied(gater, d), [true, false])
    })
  }

  describe('on real nodes (memory transport)', function () {
    this.timeout(10_000)
    let nodeA: Libp2p, nodeB: Libp2p
    let gaterA: ConnectionGater

    beforeEach(async () => {
      const grab = (components: { connectionGater: ConnectionGater }): object => {
        gaterA = components.connectionGater
        return {}
      }
      const common = { transports: [memory()], connectionEncrypters: [noise()], streamMuxers: [yamux()] }
      nodeA = await createLibp2p({ ...common, addresses: { listen: ['/memory/gater-a'] }, services: { grab } })
      nodeB = await createLibp2p({ ...common, addresses: { listen: ['/memory/gater-b'] } })
    })

    afterEach(async () => {
      await Promise.all([nodeA?.stop(), nodeB?.stop()])
    })

    it('denies dials to and inbound connections from a denied peer, until restored', async () => {
      const restore = wrapGater(gaterA, (peer) => peer.equals(nodeB.peerId))

      await assert.rejects(nodeA.dial(nodeB.getMultiaddrs()[0]), { name: 'DialDeniedError' })
      await assert.rejects(nodeB.dial(nodeA.getMultiaddrs()[0]))
      assert.equal(nodeA.getConnections().length, 0)

      restore()
      const conn = await nodeA.dial(nodeB.getMultiaddrs()[0])
      assert.equal(conn.remotePeer.equals(nodeB.peerId), true)
    })
  })
})
