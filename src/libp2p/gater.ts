import { patchMethod } from './patch.ts'
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'

/**
 * Adds a deny rule to the node's connection gater, in place.
 *
 * libp2p keeps no list of gaters: `components.connectionGater` is the very object the user passed
 * as `connectionGater` (or `{}`), and the dial queue and upgrader read its methods at call time.
 * So we replace two methods on that object:
 *
 * - `denyDialPeer`: our own dials (a redial of a peer whose circuit is open);
 * - `denyInboundEncryptedConnection`: the earliest inbound hook that knows the remote peer.
 *
 * A peer is denied when `deny(peer)` is true OR the method that was there before says so. The
 * previous method's result is returned as-is, so sync and async answers both keep working
 * (libp2p awaits whatever comes back). `deny` runs first and is synchronous, so a denied peer
 * never waits on the user's gater.
 *
 * The returned function restores the previous state exactly, also when wrappers stack (patch.ts).
 */

type Method = 'denyDialPeer' | 'denyInboundEncryptedConnection'
const METHODS: readonly Method[] = ['denyDialPeer', 'denyInboundEncryptedConnection']

type DenyFn = (this: unknown, peer: PeerId, maConn?: MultiaddrConnection) => boolean | Promise<boolean>

export function wrapGater (gater: ConnectionGater, deny: (peer: PeerId) => boolean): () => void {
  const target = gater as Record<Method, DenyFn | undefined>
  const patches = METHODS.map(method => patchMethod(target, method, (previous) => function (this: unknown, peer: PeerId, maConn?: MultiaddrConnection) {
    if (deny(peer)) {
      return true
    }
    // libp2p calls these as methods of the gater (`apply(gater, args)`): keep that `this`
    return previous == null ? false : previous.call(this, peer, maConn)
  }))
  return () => {
    for (const patch of patches) {
      patch.restore()
    }
  }
}
