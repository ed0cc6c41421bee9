import type { PeerId } from '@libp2p/interface'

/** A peer as the engine accepts it: a libp2p `PeerId` or its string form */
export type PeerLike = PeerId | string

/**
 * The registry key of a peer. `PeerId#toString()` caches its base58 string in js-libp2p, so this
 * allocates nothing for a peer id that has been printed before.
 */
export function peerKey (peer: PeerLike): string {
  return typeof peer === 'string' ? peer : peer.toString()
}
