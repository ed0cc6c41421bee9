import assert from 'node:assert/strict'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { cidBytesFromKeys, dontHaveFrame } from '../../../src/bitswap/dont-have.ts'
import { multihashKey, prefixOfCid } from '../../../src/bitswap/cid-key.ts'
import { PresenceType, WantType } from '../../../src/bitswap/message.ts'
import { WantLedger } from '../../../src/bitswap/want-ledger.ts'
// The real codec and prefix encoding of @helia/bitswap 4.0.19 (not exported by the package)
import { BitswapMessage, BlockPresenceType, WantType as HeliaWantType } from '../../../node_modules/@helia/bitswap/dist/src/pb/message.js'
import { cidToPrefix } from '../../../node_modules/@helia/bitswap/dist/src/utils/cid-prefix.js'
import type { ReleaseReason } from '../../../src/bitswap/want-release.ts'
import type { AnswerKind, WantOutcomeSink } from '../../../src/bitswap/verdicts.ts'
import type { WantLedgerInit } from '../../../src/bitswap/want-ledger-init.ts'

interface Release { peer: string, cid: string, reason: ReleaseReason }

class Sink implements WantOutcomeSink {
  readonly releases: Release[] = []
  readonly misses: string[] = []
  answered (_peer: string, _kind: AnswerKind, _ms: number): void {}
  missed (peer: string): void { this.misses.push(peer) }
  unrequested (): void {}
  released (peer: string, cid: Uint8Array, reason: ReleaseReason): void {
    this.releases.push({ peer, cid: CID.decode(cid).toString(), reason })
  }
}

/** A CIDv1 with a made-up sha2-256 digest; a codec of its own makes its prefix unique (exact block matching) */
function cid (n: number, codec: number = raw.code): CID {
  const digest = new Uint8Array(32)
  new DataView(digest.buffer).setUint32(0, n)
  return CID.createV1(codec, Digest.create(0x12, digest))
}

function setup (init: WantLedgerInit = {}): { ledger: WantLedger, sink: Sink } {
  const sink = new Sink()
  return { ledger: new WantLedger({ minDeadline: 50, ...init }, sink), sink }
}

function want (ledger: WantLedger, peer: string, c: CID, now: number, wantType: WantType = WantType.Block, sendDontHave = true): void {
  ledger.sent(peer, c.bytes, wantType, sendDontHave, false, now)
}

function wantlist (cids: CID[], sendDontHave = true): Uint8Array {
  return BitswapMessage.encode({ wantlist: { full: false, entries: cids.map(c => ({ cid: c.bytes, priority: 1, wantType: HeliaWantType.WantBlock, sendDontHave, cancel: false })) } })
}

describe('bitswap/want-release', () => {
  describe('wire', () => {
    it('a DONT_HAVE frame decodes with helia\'s own codec, one presence per CID, in order', () => {
      const cids = [cid(1), cid(2, 0x70), CID.parse('QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB')]
      const frame = dontHaveFrame(cids.map(c => c.bytes))
      assert.equal(frame[0], frame.byteLength - 1, 'a one-byte length prefix covers the body')
      const message = BitswapMessage.decode(frame.subarray(1))
      assert.deepEqual(message.blockPresences.map(p => [CID.decode(p.cid).toString(), p.type]), cids.map(c => [c.toString(), BlockPresenceType.DoNotHaveBlock]))
      assert.equal(message.blocks.length, 0)
      assert.equal(message.wantlist, undefined)
    })

    it('rebuilds the CID bytes of a want from its keys (v1 with its codec, v0 as the bare multihash)', () => {
      for (const c of [cid(9), cid(10, 0x71), CID.parse('QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB')]) {
        const bytes = cidBytesFromKeys(multihashKey(c.bytes) as string, prefixOfCid(c.bytes) as string)
        assert.deepEqual(bytes, c.bytes)
      }
      assert.equal(cidBytesFromKeys('', '1/85/18/32'), undefined)
      assert.equal(cidBytesFromKeys('abc', 'nonsense'), undefined)
    })
  })

  describe('rules', () => {
    it('a want that misses its deadline is released once, by deadline, and stays late (a late answer still counts)', () => {
      const { ledger, sink } = setup({ coldDeadline: 1000, coldRttMultiplier: 0 })
      want(ledger, 'A', cid(1), 0)
      ledger.expire(999)
      assert.deepEqual(sink.releases, [])
      ledger.expire(1000)
      assert.deepEqual(sink.releases, [{ peer: 'A', cid: cid(1).toString(), reason: 'deadline' }])
      assert.equal(ledger.release('A', 'circuit_open', 1100), 0, 'nothing left to release')
      ledger.expire(10_000)
      assert.equal(sink.releases.length, 1)
    })

    it('never after the peer answered: block, HAVE to a want-block, or DONT_HAVE', () => {
      const { ledger, sink } = setup({ coldDeadline: 1000 })
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2, 0x71), 0)
      want(ledger, 'A', cid(3, 0x72), 0)
      ledger.blockReceived('A', cidToPrefix(cid(1)), 10)
      ledger.presenceReceived('A', cid(2, 0x71).bytes, PresenceType.Have, 10)
      ledger.presenceReceived('A', cid(3, 0x72).bytes, PresenceType.DontHave, 10)
      ledger.expire(5000)
      assert.equal(sink.misses.length, 1, 'the HAVE without its block still misses')
      assert.equal(ledger.release('A', 'disconnect', 6000), 0)
      assert.deepEqual(sink.releases, [])
    })

    it('never for a want sent without sendDontHave (helia\'s full wantlist on connect)', () => {
      const { ledger, sink } = setup({ coldDeadline: 1000 })
      want(ledger, 'A', cid(1), 0, WantType.Block, false)
      ledger.expire(5000)
      assert.equal(ledger.release('A', 'circuit_open', 6000), 0)
      assert.deepEqual(sink.releases, [])
    })

    it('never once the block came from another peer', () => {
      const { ledger, sink } = setup({ coldDeadline: 1000 })
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'B', cid(1), 0)
      ledger.blockReceived('B', cidToPrefix(cid(1)), 10)
      ledger.expire(5000)
      assert.equal(ledger.release('A', 'disconnect', 6000), 0)
      assert.deepEqual(sink.releases, [])
    })

    it('release(peer) frees every open want of that peer only, and they end neutral (no miss later)', () => {
      const { ledger, sink } = setup({ coldDeadline: 1000 })
      want(ledger, 'A', cid(1), 0)
      want(ledger, 'A', cid(2, 0x71), 0, WantType.Have)
      want(ledger, 'B', cid(3, 0x72), 0)
      assert.equal(ledger.release('A', 'circuit_open', 100), 2)
      assert.deepEqual(sink.releases.map(r => [r.peer, r.reason]), [['A', 'circuit_open'], ['A', 'circuit_open']])
      ledger.expire(999)
      assert.deepEqual(sink.misses, [])
      ledger.expire(5000)
      assert.deepEqual(sink.misses, ['B'], 'only B\'s want misses')
    })

    it('release(peer, from, to) frees only the wants of the messages of a failed stream', () => {
      const { ledger, sink } = setup({ coldDeadline: 1000 })
      const first = ledger.sentMessage('A', wantlist([cid(1)]), 0)
      const second = ledger.sentMessage('A', wantlist([cid(2, 0x71), cid(3, 0x72)]), 5)
      assert.equal(second, first + 1)
      assert.equal(ledger.release('A', 'send_failed', 10, second, second), 2)
      assert.deepEqual(sink.releases.map(r => r.cid), [cid(2, 0x71).toString(), cid(3, 0x72).toString()])
    })

    it('a want sent again after it ended is a new want, releasable once more', () => {
      const { ledger, sink } = setup({ coldDeadline: 1000 })
      want(ledger, 'A', cid(1), 0)
      ledger.expire(1000)
      want(ledger, 'A', cid(1), 2000)
      ledger.expire(3000)
      assert.deepEqual(sink.releases.map(r => r.reason), ['deadline', 'deadline'])
    })

    it('cold deadline is coldDeadline + coldRttMultiplier × the RTT given with the message (boxo)', () => {
      const { ledger, sink } = setup()
      ledger.sentMessage('A', wantlist([cid(1)]), 0, 40)
      assert.equal(ledger.peerDeadline('A'), 2000 + 3 * 40)
      ledger.expire(2119)
      assert.equal(sink.releases.length, 0)
      ledger.expire(2120)
      assert.equal(sink.releases.length, 1)
      assert.equal(new WantLedger({}, sink).peerDeadline('nobody'), 2000)
    })
  })

  it('property: a release names a want sent to that peer with sendDontHave, unanswered by it, not met elsewhere, at most once', () => {
    const N = 5
    const op = fc.oneof(
      fc.record({ t: fc.constant('want' as const), peer: fc.nat({ max: 2 }), n: fc.nat({ max: N - 1 }), type: fc.constantFrom(WantType.Block, WantType.Have), sdh: fc.boolean() }),
      fc.record({ t: fc.constant('block' as const), peer: fc.nat({ max: 2 }), n: fc.nat({ max: N - 1 }) }),
      fc.record({ t: fc.constant('presence' as const), peer: fc.nat({ max: 2 }), n: fc.nat({ max: N - 1 }), type: fc.constantFrom(PresenceType.Have, PresenceType.DontHave) }),
      fc.record({ t: fc.constant('release' as const), peer: fc.nat({ max: 2 }), reason: fc.constantFrom('circuit_open' as const, 'disconnect' as const, 'send_failed' as const) }),
      fc.record({ t: fc.constant('remove' as const), peer: fc.nat({ max: 2 }) })
    )
    // one fixed deadline keeps the model exact; a codec per CID makes block matching exact
    const DEADLINE = 1000
    fc.assert(fc.property(fc.array(fc.tuple(op, fc.nat({ max: 800 })), { maxLength: 80 }), (ops) => {
      const { ledger, sink } = setup({ minDeadline: DEADLINE, maxDeadline: DEADLINE, coldDeadline: DEADLINE, coldRttMultiplier: 0, settledRetention: 1e9 })
      const cids = Array.from({ length: N }, (_, i) => cid(i, 0x300 + i))
      interface Model { sdh: boolean, type: WantType, sentAt: number, answered: boolean, settled: boolean, late: boolean, released: boolean }
      const model = new Map<string, Model>()
      const key = (peer: string, n: number): string => `${peer}|${cids[n].toString()}`
      let seen = 0
      let expected = 0
      const check = (): void => {
        for (const r of sink.releases.slice(seen)) {
          const m = model.get(`${r.peer}|${r.cid}`)
          assert.ok(m != null, 'released a want never sent to that peer')
          assert.ok(m.sdh, 'released a want sent without sendDontHave')
          assert.ok(!m.answered, 'released a want the peer answered')
          assert.ok(!m.settled, 'released a want that had ended')
          assert.ok(!m.released, 'released a want twice')
          m.released = true
        }
        seen = sink.releases.length
      }
      let now = 0
      for (const [o, dt] of ops) {
        now += dt
        ledger.expire(now)
        for (const m of model.values()) {
          if (!m.settled && !m.late && m.sdh && now >= m.sentAt + DEADLINE) {
            m.late = true
            if (!m.answered && !m.released) {
              expected++
            }
          }
        }
        check()
        const peer = `P${o.peer}`
        switch (o.t) {
          case 'want': {
            const m = model.get(key(peer, o.n))
            const type = m?.type === WantType.Block ? WantType.Block : o.type
            if (m == null || m.settled || m.late) {
              model.set(key(peer, o.n), { sdh: o.sdh, type, sentAt: now, answered: false, settled: false, late: false, released: false })
            } else {
              Object.assign(m, { sdh: o.sdh, type, sentAt: now })
            }
            want(ledger, peer, cids[o.n], now, o.type, o.sdh)
            break
          }
          case 'block': {
            const m = model.get(key(peer, o.n))
            ledger.blockReceived(peer, cidToPrefix(cids[o.n]), now)
            check()
            if (m?.settled === true) {
              model.delete(key(peer, o.n)) // a duplicate uses the want up
            } else if (m != null) {
              m.answered = m.settled = true
              for (const [k, other] of model) {
                if (k.endsWith(`|${cids[o.n].toString()}`)) {
                  other.settled = true
                }
              }
            }
            break
          }
          case 'presence': {
            const m = model.get(key(peer, o.n))
            ledger.presenceReceived(peer, cids[o.n].bytes, o.type, now)
            check()
            if (m != null && !m.settled) {
              m.answered = true
              m.settled = o.type === PresenceType.DontHave || m.type === WantType.Have
            }
            break
          }
          case 'release': {
            for (const [k, m] of model) {
              if (k.startsWith(`${peer}|`) && m.sdh && !m.answered && !m.released && !m.settled) {
                expected++
              }
            }
            ledger.release(peer, o.reason, now)
            check()
            for (const [k, m] of model) {
              if (k.startsWith(`${peer}|`) && m.released) {
                m.settled = true
              }
            }
            break
          }
          case 'remove':
            ledger.removePeer(peer)
            for (const k of [...model.keys()]) {
              if (k.startsWith(`${peer}|`)) {
                model.delete(k)
              }
            }
        }
      }
      assert.equal(sink.releases.length, expected, 'every releasable want was released')
    }), { numRuns: 300 })
  })
})
