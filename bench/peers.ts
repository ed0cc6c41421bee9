/**
 * Many real Ed25519 PeerIds, fast: built from random public key bytes, no key generation. Their
 * string forms are computed (and cached by the PeerId) here, so the strings are the bench's, not
 * the engine's, when heap is measured.
 */

import { peerIdFromMultihash } from '@libp2p/peer-id'
import { identity } from 'multiformats/hashes/identity'
import type { PeerId } from '@libp2p/interface'

/** Protobuf header of an Ed25519 public key: field 1 (type) = 1, field 2 (data) of 32 bytes */
const ED25519_HEADER = [0x08, 0x01, 0x12, 0x20]

let made: PeerId[] = []

/** The first `n` of one shared, growing list of distinct peer ids */
export function peerIds (n: number): PeerId[] {
  while (made.length < n) {
    const bytes = new Uint8Array(36)
    bytes.set(ED25519_HEADER)
    crypto.getRandomValues(bytes.subarray(4))
    const id = peerIdFromMultihash(identity.digest(bytes))
    id.toString()
    made.push(id)
  }
  return made.slice(0, n)
}

/** Let the shared list go (for a clean heap before memory runs) */
export function forgetPeerIds (): void {
  made = []
}
