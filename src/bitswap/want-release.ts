import { cidBytesFromKeys } from './dont-have.ts'
import type { WantVerdict } from './verdicts.ts'
import type { PeerWants, Want } from './wants.ts'

/**
 * When a want may be released: Bitswap's wait on a peer that will not answer ends with a DONT_HAVE
 * delivered on the peer's behalf (src/libp2p/release.ts). The rules, checked here and nowhere else:
 *
 * - only wants we saw going to that peer with `sendDontHave` (only then does Bitswap wait for a
 *   presence from that very peer: a session's `wantSessionBlock`/`wantSessionPresence`), that are
 *   still unanswered: OPEN, or LATE (missed, no answer since);
 * - never once the peer answered that CID: a block or DONT_HAVE ends the want (SETTLED), a HAVE to
 *   a want-block leaves it open for the block but marks it `haveSeen`, because Bitswap's wait on
 *   the peer ended with that HAVE;
 * - never for a want that ended otherwise (the block came from elsewhere, we cancelled it, a full
 *   wantlist dropped it): nothing waits on it any more;
 * - at most once per want (`released`); sending it again after it ended makes a new want.
 *
 * Why: `deadline` (the want missed the peer's deadline; it stays LATE, so a late answer still
 * teaches the EWMA), `circuit_open`, `disconnect` (the peer's last connection closed) and
 * `send_failed` (the stream carrying the want failed before the peer could answer). Except for
 * `deadline`, a release also ends the want neutral: the peer is not judged on a want it could
 * not answer, and the breaker has already counted whatever went wrong.
 */
export type ReleaseReason = 'deadline' | 'circuit_open' | 'disconnect' | 'send_failed'

/** Bitswap may still be waiting on the peer for this want, and we never released it */
export function releasable (want: Want): boolean {
  return want.sendDontHave && !want.haveSeen && !want.released && (want.state === 'open' || want.state === 'late')
}

/** The peer's releasable wants last sent in a `sentMessage` generation within [from, to] */
export function releasableWants (peer: PeerWants, from: number, to: number): Want[] {
  const wants: Want[] = []
  for (const want of peer.wants.values()) {
    if (want.generation >= from && want.generation <= to && releasable(want)) {
      wants.push(want)
    }
  }
  return wants
}

/** Marks a releasable want released; the verdict that carries its CID to the sink */
export function releaseVerdict (want: Want, reason: ReleaseReason): WantVerdict | undefined {
  want.released = true
  const cid = cidBytesFromKeys(want.key, want.prefix)
  return cid === undefined ? undefined : { type: 'released', peerKey: want.peer.key, cid, reason }
}
